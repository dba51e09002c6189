"""Which server holds a key: ketama consistent hashing, as libmemcached computes it.

Each server is placed on a circle of 2**32 points 160 times, all servers weighing the
same: for ``i`` in 0..39, the MD5 of ``"host:port-i"`` (``"host-i"`` when the port is
11211, as libmemcached writes it) gives four points, its bytes 0-3, 4-7, 8-11 and 12-15
read as little-endian 32-bit numbers. A key's point is the first four bytes of its own
MD5, little-endian; its server is the one owning the first point at or after it, going
round past the top to the first. This is libmemcached's weighted ketama with equal weights
(pylibmc ``behaviors={"ketama": True}``): a client of it configured with the same servers,
in any order, places a key on the same server.

Taking a server out (its breaker open) leaves every other point where it is: only its own
keys move, each to the server owning the next point — about one key in ``n`` with ``n``
servers. When it comes back, they return to it.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Sequence
from typing import Final

__all__ = ["POINTS_PER_SERVER", "Ring", "key_point", "server_points"]

POINTS_PER_SERVER: Final = 160
_POINTS_PER_HASH: Final = 4
_DEFAULT_PORT: Final = 11211


def server_points(host: str, port: int) -> list[int]:
    """The 160 points of one server on the circle."""
    name = host if port == _DEFAULT_PORT else f"{host}:{port}"
    points: list[int] = []
    for index in range(POINTS_PER_SERVER // _POINTS_PER_HASH):
        digest = hashlib.md5(f"{name}-{index}".encode(), usedforsecurity=False).digest()
        points.extend(int.from_bytes(digest[at : at + 4], "little") for at in range(0, 16, 4))
    return points


def key_point(key: bytes) -> int:
    """A key's point on the circle."""
    return int.from_bytes(hashlib.md5(key, usedforsecurity=False).digest()[:4], "little")


class Ring:
    """The circle of several servers, given as ``(host, port)`` in any order."""

    def __init__(self, servers: Sequence[tuple[str, int]]) -> None:
        placed = sorted(
            (point, index)
            for index, (host, port) in enumerate(servers)
            for point in server_points(host, port)
        )
        self._points = [point for point, _ in placed]
        self._owners = [index for _, index in placed]
        self.size = len(servers)

    def owner(self, key: bytes) -> int:
        """The index of the server holding ``key`` with every server in."""
        return self._owners[self._first_at_or_after(key_point(key))]

    def place(self, key: bytes, available: Callable[[int], bool]) -> int | None:
        """The index of the first server at or after ``key``'s point that ``available``
        accepts, asking each server at most once; None when none does."""
        at = self._first_at_or_after(key_point(key))
        asked: set[int] = set()
        owners, count = self._owners, len(self._owners)
        for step in range(count):
            owner = owners[(at + step) % count]
            if owner in asked:
                continue
            if available(owner):
                return owner
            asked.add(owner)
            if len(asked) == self.size:
                break
        return None

    def _first_at_or_after(self, point: int) -> int:
        at = bisect.bisect_left(self._points, point)
        return 0 if at == len(self._points) else at

"""Ketama placement: what libmemcached computes, and only a lost server's keys move."""

from __future__ import annotations

import hashlib
import struct

import pytest

from traffik.backends.memcached.ring import Ring

# Where libmemcached 1.0.18 (through pylibmc 1.6.3, behaviors={"ketama_weighted": True})
# stored these keys, read back from three real memcached servers. On port 11211
# libmemcached hashes "host-i", on any other "host:port-i": both are pinned.
LIBMEMCACHED_DEFAULT_PORT = {
    "traffik:a": "127.0.0.4:11211", "user:42": "127.0.0.2:11211", "x": "127.0.0.4:11211",
    "key-0": "127.0.0.2:11211", "key-23": "127.0.0.2:11211", "key-46": "127.0.0.4:11211",
    "key-69": "127.0.0.2:11211", "key-92": "127.0.0.3:11211", "key-115": "127.0.0.3:11211",
    "key-138": "127.0.0.4:11211", "key-161": "127.0.0.4:11211", "key-184": "127.0.0.4:11211",
    "key-207": "127.0.0.2:11211", "key-230": "127.0.0.2:11211", "key-253": "127.0.0.4:11211",
    "key-276": "127.0.0.2:11211", "key-299": "127.0.0.4:11211",
}  # fmt: skip
LIBMEMCACHED_OTHER_PORTS = {
    "traffik:a": "127.0.0.1:23411", "user:42": "127.0.0.1:23413", "x": "127.0.0.1:23412",
    "key-0": "127.0.0.1:23411", "key-23": "127.0.0.1:23412", "key-46": "127.0.0.1:23413",
    "key-69": "127.0.0.1:23411", "key-92": "127.0.0.1:23412", "key-115": "127.0.0.1:23412",
    "key-138": "127.0.0.1:23413", "key-161": "127.0.0.1:23413", "key-184": "127.0.0.1:23411",
    "key-207": "127.0.0.1:23413", "key-230": "127.0.0.1:23411", "key-253": "127.0.0.1:23412",
    "key-276": "127.0.0.1:23412", "key-299": "127.0.0.1:23413",
}  # fmt: skip


def addresses(servers: list[str]) -> list[tuple[str, int]]:
    return [(server.rsplit(":", 1)[0], int(server.rsplit(":", 1)[1])) for server in servers]


@pytest.mark.parametrize("placed", [LIBMEMCACHED_DEFAULT_PORT, LIBMEMCACHED_OTHER_PORTS])
def test_keys_go_where_libmemcached_puts_them(placed: dict[str, str]) -> None:
    servers = sorted(set(placed.values()))
    for order in (servers, servers[::-1]):  # the order servers are given in does not matter
        ring = Ring(addresses(order))
        assert {key: order[ring.owner(key.encode())] for key in placed} == placed


def reference_owner(servers: list[str], key: bytes) -> str:
    """libmemcached's weighted ketama, written out plainly: every point in one sorted list,
    a linear walk to the first at or after the key's."""
    continuum: list[tuple[int, str]] = []
    for server in servers:
        host, port = server.rsplit(":", 1)
        name = host if port == "11211" else server
        for index in range(40):
            digest = hashlib.md5(f"{name}-{index}".encode()).digest()
            continuum.extend((value, server) for value in struct.unpack("<4I", digest))
    continuum.sort(key=lambda point: point[0])
    (point,) = struct.unpack("<I", hashlib.md5(key).digest()[:4])
    for value, server in continuum:
        if value >= point:
            return server
    return continuum[0][1]


def test_the_ring_agrees_with_a_plain_reference_on_many_keys() -> None:
    servers = ["10.0.0.1:11211", "10.0.0.2:11211", "cache-3.internal:11300"]
    ring = Ring(addresses(servers))
    for n in range(2000):
        key = f"traffik:0a1b2c:user-{n}".encode()
        assert servers[ring.owner(key)] == reference_owner(servers, key)


def test_losing_one_of_three_servers_moves_only_its_keys() -> None:
    servers = ["127.0.0.1:21001", "127.0.0.1:21002", "127.0.0.1:21003"]
    ring = Ring(addresses(servers))
    keys = [f"ns:api:{{client-{n}}}:fixed_window".encode() for n in range(30_000)]
    before = [ring.owner(key) for key in keys]
    lost = 1
    after = [ring.place(key, lambda index: index != lost) for key in keys]
    moved = [key for key, b, a in zip(keys, before, after, strict=True) if a != b]
    share = len(moved) / len(keys)
    print(f"\nkeys moved when 1 of 3 servers is lost: {share:.4f} ({len(moved)} of {len(keys)})")
    # Exactly the lost server's keys move, each to a survivor; no other key moves.
    assert all(b == lost for b, a in zip(before, after, strict=True) if a != b)
    assert all(a != lost for a in after)
    assert len(moved) == before.count(lost)
    assert 0.25 < share < 0.42  # about a third
    # Back in, every key returns to where it was.
    assert [ring.place(key, lambda index: True) for key in keys] == before


def test_no_server_available_places_nothing() -> None:
    ring = Ring(addresses(["127.0.0.1:21001", "127.0.0.1:21002"]))
    asked: list[int] = []

    def refuse(index: int) -> bool:
        asked.append(index)
        return False

    assert ring.place(b"k", refuse) is None
    assert sorted(asked) == [0, 1]  # each server asked once

"""What a stored value looks like: ``<written_at_ms>:<expires_at_ms>:<payload>``.

``payload`` is ``strategy.encode(state)``. The two times are on the key's own timeline:

* ``written_at_ms`` is the ``now`` the state was decided at. A reader decides at
  ``max(its own clock, written_at_ms)``, so time never runs backwards for a key, whatever
  the skew between the hosts that share it (see the README, "Clocks").
* ``expires_at_ms`` is ``written_at_ms + ttl_ms``: from then on the state reads as absent,
  exactly as the in-memory backend forgets it. Memcached's own expiry (whole seconds,
  rounded up, with slack) is only the cleanup. So the backend behaves the same on an
  injected `traffik.ManualClock` as on the wall clock.

An *empty* payload is a tombstone: memcached has no conditional delete, so "forget this
state, unless someone changed it meanwhile" is written as a compare-and-swap of one.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Envelope", "pack", "tombstone", "unpack"]


class Envelope(NamedTuple):
    written_at: int
    expires_at: int
    payload: bytes


def pack(written_at_ms: int, expires_at_ms: int, payload: bytes) -> bytes:
    return b"%d:%d:%b" % (written_at_ms, expires_at_ms, payload)


def tombstone(now_ms: int) -> bytes:
    """A value that reads as "no state", keeping the key's timeline at ``now_ms``."""
    return pack(now_ms, now_ms, b"")


def unpack(value: bytes) -> Envelope:
    """Split a stored value; ValueError when it is not one of ours."""
    parts = value.split(b":", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ValueError(f"not a traffik value: {value[:40]!r}")
    return Envelope(int(parts[0]), int(parts[1]), parts[2])

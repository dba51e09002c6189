"""What a stored value looks like: ``<expires_at_ms>:<strategy.encode(state)>``.

The value carries its own deadline, in the backend's clock: a state read after it is
treated as absent, exactly as the in-memory backend does. Memcached's own expiry (whole
seconds, rounded up) is only the cleanup; the deadline is what decides. So the backend
behaves the same on an injected `traffik.ManualClock` as on the wall clock.

An *empty* payload whose deadline has passed is a tombstone: memcached has no conditional
delete, so "forget this state, unless someone changed it meanwhile" is written as a
compare-and-swap of a tombstone.
"""

from __future__ import annotations

__all__ = ["pack", "tombstone", "unpack"]


def pack(expires_at_ms: int, payload: bytes) -> bytes:
    return b"%d:%b" % (expires_at_ms, payload)


def tombstone(now_ms: int) -> bytes:
    """A value that reads as "no state" from ``now_ms`` on."""
    return b"%d:" % now_ms


def unpack(value: bytes) -> tuple[int, bytes]:
    """``(expires_at_ms, payload)``; ValueError when ``value`` is not an envelope."""
    head, separator, payload = value.partition(b":")
    if not separator or not head.isdigit():
        raise ValueError(f"not a traffik value: {value[:40]!r}")
    return int(head), payload

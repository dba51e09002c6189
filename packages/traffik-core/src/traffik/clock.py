"""Clocks: where a backend that keeps time itself gets ``now``.

Strategies never read a clock; the backend passes them ``now`` in whole milliseconds.
The in-memory and memcached backends take it from a `Clock`, the Redis backend from the
server. Tests inject a `ManualClock` so that no test depends on when it runs.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "milliseconds", "system_clock"]


class Clock(Protocol):
    """A callable returning the current time in seconds since the epoch."""

    def __call__(self) -> float: ...


def system_clock() -> float:
    """The wall clock. Windows align to it, so it must be the same clock on every host."""
    return time.time()


def milliseconds(clock: Clock) -> int:
    """The clock's time in whole milliseconds, as strategies take it.

    Rounded to the nearest millisecond rather than truncated: a clock set to an exact
    millisecond (``1700000000.123``) is not exactly representable as a float and may read
    as ``...122.9999``; rounding reads it back as the millisecond it was set to.
    """
    return round(clock() * 1000)


class ManualClock:
    """A clock that moves only when told to.

    It counts whole nanoseconds, so any number of small advances adds up exactly.

    >>> clock = ManualClock(1_000.0)
    >>> clock.advance(0.5)
    >>> clock()
    1000.5
    """

    __slots__ = ("_ns",)

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._ns = _to_ns(start)

    def __call__(self) -> float:
        return self._ns / 1_000_000_000

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"A clock only moves forward; got advance({seconds!r})")
        self._ns += _to_ns(seconds)

    def set(self, now: float) -> None:
        self._ns = _to_ns(now)

    def __repr__(self) -> str:
        return f"ManualClock({self()!r})"


def _to_ns(seconds: float) -> int:
    return round(seconds * 1_000_000_000)

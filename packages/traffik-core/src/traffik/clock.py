"""Clocks: where a backend that keeps time itself gets ``now``.

Strategies never read a clock; the backend passes them ``now`` in whole milliseconds.
The in-memory and memcached backends take it from a `Clock`, the Redis backend from the
server. Tests inject a `ManualClock` so that no test depends on when it runs.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "system_clock"]


class Clock(Protocol):
    """A callable returning the current time in seconds since the epoch."""

    def __call__(self) -> float: ...


def system_clock() -> float:
    """The wall clock. Windows align to it, so it must be the same clock on every host."""
    return time.time()


class ManualClock:
    """A clock that moves only when told to.

    >>> clock = ManualClock(1_000.0)
    >>> clock.advance(0.5)
    >>> clock()
    1000.5
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"A clock only moves forward; got advance({seconds!r})")
        self._now += seconds

    def set(self, now: float) -> None:
        self._now = float(now)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"

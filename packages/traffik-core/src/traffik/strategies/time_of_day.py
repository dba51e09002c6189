"""Time of day: a fixed window whose limit is scaled by the hour of the day.

Rule: windows are aligned as for `FixedWindow`. The limit for a request is
``max(1, floor(limit * multiplier))``, where the multiplier belongs to the first of
``time_windows`` — ``(start_hour, end_hour, multiplier)``, start inclusive, end
exclusive — containing the current hour at ``timezone_offset`` hours from UTC, and is 1
for hours no window covers. With ``"100/hour"`` and the defaults (hours 0-8 times 2,
8-17 times 1, 17-24 times 1.5, UTC), a client gets 200 requests in the 03:00 hour, 100
at 10:00 and 150 at 20:00. The limit follows the clock within a window too (a window
spanning an hour boundary changes limit there). A refused request counts nothing; its
retry time is the first moment its cost fits: later in this window if the multiplier
rises, else at the next window or the first hour after it whose limit fits; never, if
no hour's does.

Integer algorithm (``P = period_ms``, ``L = limit``, ``H = 3_600_000``,
``off = timezone_offset * H`` in ms; multipliers as exact fractions ``n/d``; state
``(w, used)``, 2 integers)::

    limit_at(t) = max(1, L * n // d) for hour ((t + off) // H) mod 24
    next_hour(t) = ((t + off) // H + 1) * H - off            (the next hour boundary)
    window = now // P; if state.w > window: window = state.w; now = window * P
    used = state.used if state.w == window else 0;  end = (window + 1) * P
    reset = end - now;  limit = limit_at(now)
    cost == 0:             allowed, state unchanged
    used + cost <= limit:  store (window, used + cost), ttl = reset
                           allowed, remaining limit - used - cost
    otherwise:             refused, remaining max(0, limit - used); retry at the first of
        b = next_hour(now), next_hour(b), ... (at most 24) with b < end and
            used + cost <= limit_at(b);
        end, if cost <= limit_at(end);
        b = next_hour(end), ... (at most 24) with cost <= limit_at(b);
        retry_ms = that time - now, or inf when there is none
    refund(c): same window only, used = max(used - c, 0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import ClassVar, Final

from traffik.exceptions import ConfigurationError
from traffik.rates import Rate
from traffik.strategies._support import aligned_window, exact_ratio, scaled
from traffik.strategies.base import IntTupleCodec, Params, Step, require_exact
from traffik.strategies.fixed_window import WindowState, decide_window, refund_window

__all__ = ["DEFAULT_TIME_WINDOWS", "TimeOfDay"]

HOUR_MS: Final = 3_600_000

DEFAULT_TIME_WINDOWS: Final[tuple[tuple[int, int, float], ...]] = (
    (0, 8, 2.0),  # night
    (8, 17, 1.0),  # business hours
    (17, 24, 1.5),  # evening
)


@dataclass(frozen=True, slots=True)
class TimeOfDay(IntTupleCodec):
    """A fixed window whose limit is multiplied according to the hour of the day."""

    time_windows: Sequence[tuple[int, int, float | int | Fraction]] = DEFAULT_TIME_WINDOWS
    timezone_offset: float = 0
    _hours: tuple[Fraction, ...] = field(init=False, repr=False, compare=False)
    _offset_ms: int = field(init=False, repr=False, compare=False)

    name: ClassVar[str] = "time_of_day"
    state_fields: ClassVar[int] = 2

    def __post_init__(self) -> None:
        windows = self.time_windows
        if isinstance(windows, str | bytes) or not isinstance(windows, Sequence) or not windows:
            raise ConfigurationError(
                f"TimeOfDay time_windows must be a non-empty list of "
                f"(start_hour, end_hour, multiplier), got {windows!r}"
            )
        hours: list[Fraction | None] = [None] * 24
        for window in windows:
            if not isinstance(window, Sequence) or len(window) != 3:
                raise ConfigurationError(
                    f"TimeOfDay time window must be (start_hour, end_hour, multiplier), "
                    f"got {window!r}"
                )
            start, end, multiplier = window
            valid_hours = all(
                isinstance(hour, int) and not isinstance(hour, bool) for hour in (start, end)
            )
            if not valid_hours or not 0 <= start < end <= 24:
                raise ConfigurationError(
                    f"TimeOfDay time window {window!r} needs whole hours with "
                    "0 <= start_hour < end_hour <= 24"
                )
            ratio = exact_ratio(multiplier, f"TimeOfDay multiplier of {window!r}")
            for hour in range(start, end):
                if hours[hour] is None:  # the first window containing an hour wins
                    hours[hour] = ratio
        offset = exact_ratio(
            self.timezone_offset,
            "TimeOfDay timezone_offset",
            low=-12,
            low_inclusive=True,
            high=14,
        )
        offset_ms = offset * HOUR_MS
        if offset_ms.denominator != 1:
            raise ConfigurationError(
                f"TimeOfDay timezone_offset must be whole milliseconds of hours, "
                f"got {self.timezone_offset!r}"
            )
        object.__setattr__(self, "time_windows", tuple(tuple(w) for w in windows))
        object.__setattr__(
            self, "_hours", tuple(Fraction(1) if ratio is None else ratio for ratio in hours)
        )
        object.__setattr__(self, "_offset_ms", int(offset_ms))

    @property
    def offset_ms(self) -> int:
        """``timezone_offset`` in whole milliseconds."""
        return self._offset_ms

    def hourly_limits(self, rate: Rate) -> tuple[int, ...]:
        """The limit in force in each hour of the day (0-23, in the configured time zone)."""
        return tuple(scaled(rate.limit, ratio) for ratio in self._hours)

    def hour_of(self, now: int) -> int:
        """The hour of the day (0-23) at ``now``, in the configured time zone."""
        return (now + self._offset_ms) // HOUR_MS % 24

    def limit_at(self, now: int, rate: Rate) -> int:
        """The limit in force at ``now``."""
        return scaled(rate.limit, self._hours[self.hour_of(now)])

    def _next_hour(self, now: int) -> int:
        return ((now + self._offset_ms) // HOUR_MS + 1) * HOUR_MS - self._offset_ms

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this window cannot decide exactly (see `require_exact`)."""
        # The hourly limits are computed in Python; a retry may look a day past the window.
        require_exact(self, rate, max(self.hourly_limits(rate)), rate.period_ms + 25 * HOUR_MS)

    def decide(
        self, state: WindowState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[WindowState]:
        self.check_rate(rate)
        period = rate.period_ms
        window, now = aligned_window(now, period, None if state is None else state[0])
        new_state, decision, ttl = decide_window(state, now, period, self.limit_at(now, rate), cost)
        if decision.allowed:
            return new_state, decision, ttl
        # Refused: the limit may rise later in this window, or in a later one.
        used = state[1] if state is not None and state[0] == window else 0
        retry_ms = self._retry_ms(now, (window + 1) * period, used, cost, rate)
        retry_after = math.inf if retry_ms is None else retry_ms / 1000
        return new_state, decision._replace(retry_after=retry_after), ttl

    def _retry_ms(self, now: int, end: int, used: int, cost: int, rate: Rate) -> int | None:
        boundary = now
        for _ in range(24):
            boundary = self._next_hour(boundary)
            if boundary >= end:
                break
            if used + cost <= self.limit_at(boundary, rate):
                return boundary - now
        if cost <= self.limit_at(end, rate):
            return end - now
        boundary = end
        for _ in range(24):
            boundary = self._next_hour(boundary)
            if cost <= self.limit_at(boundary, rate):
                return boundary - now
        return None

    def refund(
        self, state: WindowState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[WindowState | None, int]:
        return refund_window(state, now, rate.period_ms, cost)

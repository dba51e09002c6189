"""Naive oracles for the window strategies: fixed window, sliding log, sliding counter.

See `traffik.testing.oracles.base` for the conventions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from traffik import Decision
from traffik.testing.oracles.base import Event, Oracle, Params, seconds

__all__ = ["FixedWindowOracle", "SlidingWindowCounterOracle", "SlidingWindowLogOracle"]


@dataclass
class FixedWindowOracle(Oracle):
    """Sum of the costs admitted in ``now``'s aligned window."""

    def limit_for(self, now: int, params: Params) -> int:
        return self.limit

    def retry_ms(self, now: int, used: int, cost: int, params: Params) -> int | None:
        """When a refused request could pass: the next window, unless it never fits."""
        window_end = (now // self.period + 1) * self.period
        return None if cost > self.limit_for(now, params) else window_end - now

    def decide(self, now: int, cost: int, params: Params) -> Decision:
        limit = self.limit_for(now, params)
        used = self.cost_in(self.in_window(now // self.period))
        reset = seconds((now // self.period + 1) * self.period - now)
        if cost == 0:
            return Decision(True, limit, max(limit - used, 0), reset, 0.0)
        if used + cost <= limit:
            return Decision(True, limit, limit - used - cost, reset, 0.0)
        retry = self.retry_ms(now, used, cost, params)
        retry_after = math.inf if retry is None else seconds(retry)
        return Decision(False, limit, max(limit - used, 0), reset, retry_after)


@dataclass
class SlidingWindowLogOracle(Oracle):
    """Sum of the costs admitted in ``(now - period, now]``."""

    def live(self, at: int) -> list[Event]:
        return [event for event in self.events if at - self.period < event.time <= at]

    def decide(self, now: int, cost: int, params: Params) -> Decision:
        limit, period = self.limit, self.period
        live = self.live(now)
        used = self.cost_in(live)
        if cost > 0 and used + cost <= limit:
            return Decision(True, limit, limit - used - cost, seconds(period), 0.0)
        reset = max(event.time for event in live) + period - now if live else 0
        if cost == 0:
            return Decision(True, limit, limit - used, seconds(reset), 0.0)
        retry_after = math.inf
        if cost <= limit:
            # Try each moment an entry leaves the window, earliest first.
            for leaves in sorted(event.time + period for event in live):
                if self.cost_in(self.live(leaves)) + cost <= limit:
                    retry_after = seconds(leaves - now)
                    break
        return Decision(False, limit, limit - used, seconds(reset), retry_after)


@dataclass
class SlidingWindowCounterOracle(Oracle):
    """``previous * (period - elapsed) / period + current``, as an exact fraction."""

    def estimate(self, at: int) -> tuple[Fraction, int, int]:
        window = at // self.period
        previous = self.cost_in(self.in_window(window - 1))
        current = self.cost_in(self.in_window(window))
        elapsed = at - window * self.period
        weighted = Fraction(previous * (self.period - elapsed), self.period)
        return weighted + current, previous, current

    def fits(self, at: int, cost: int) -> bool:
        return self.estimate(at)[0] + cost <= self.limit

    def first_fit(self, low: int, high: int, cost: int) -> int | None:
        """The first ms in ``[low, high]`` where ``cost`` fits; the estimate only falls
        within one window, so fitting is monotone there and a bisection finds it."""
        if low > high or not self.fits(high, cost):
            return None
        while low < high:
            middle = (low + high) // 2
            if self.fits(middle, cost):
                high = middle
            else:
                low = middle + 1
        return low

    def decide(self, now: int, cost: int, params: Params) -> Decision:
        limit, period = self.limit, self.period
        estimate, previous, current = self.estimate(now)
        allowed = cost == 0 or (cost <= limit and estimate + cost <= limit)
        if allowed:
            estimate += cost
            current += cost
        elapsed = now % period
        reset = 2 * period - elapsed if current else period - elapsed if previous else 0
        remaining = math.floor(limit - estimate)
        if allowed:
            return Decision(True, limit, remaining, seconds(reset), 0.0)
        retry_after = math.inf
        if cost <= limit:
            start = now - elapsed
            for low, high in (
                (now + 1, start + period - 1),
                (start + period, start + 2 * period - 1),
                (start + 2 * period, start + 2 * period),
            ):
                found = self.first_fit(low, high, cost)
                if found is not None:
                    retry_after = seconds(found - now)
                    break
        return Decision(False, limit, remaining, seconds(reset), retry_after)

"""Fixed window: a counter per window aligned to the clock.

Windows are ``[k * period, (k + 1) * period)`` on the epoch clock, so ``"2/s"`` admits
exactly 2 units per calendar second, and every instance sharing a clock agrees on where
windows start. A request is admitted when ``used + cost <= limit``; a refused request
consumes nothing, and its retry time is the real time left until the next window
(infinite when ``cost > limit``). A refund gives units back within the same window only.
The stored state is ``(window_index, used)``: two integers, kept until the window ends.

Aligned windows let a client spend a full budget at the end of one window and another at
the start of the next (up to ``2 * limit`` within one period); use a sliding or bucket
strategy where that matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from traffik.decision import Decision
from traffik.rates import Rate
from traffik.strategies.base import IntTupleCodec, Params, Step

__all__ = ["FixedWindow"]

WindowState = tuple[int, int]


@dataclass(frozen=True, slots=True)
class FixedWindow(IntTupleCodec):
    """Count per clock-aligned window. The default strategy."""

    name: ClassVar[str] = "fixed_window"

    def decide(
        self, state: WindowState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[WindowState]:
        period = rate.period_ms
        limit = rate.limit
        window = now // period
        used = state[1] if state is not None and state[0] == window else 0
        reset_ms = (window + 1) * period - now
        reset_after = reset_ms / 1000
        if used + cost <= limit:
            used += cost
            return (window, used), Decision(True, limit, limit - used, reset_after, 0.0), reset_ms
        retry_after = math.inf if cost > limit else reset_after
        return state, Decision(False, limit, limit - used, reset_after, retry_after), reset_ms

    def refund(
        self, state: WindowState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[WindowState | None, int]:
        window = now // rate.period_ms
        if state is None or state[0] != window:
            return state, 1  # that window has closed: nothing to give back
        return (window, max(state[1] - cost, 0)), (window + 1) * rate.period_ms - now

"""Fixed window: a counter per window aligned to the clock.

Rule: windows are ``[k * period, (k + 1) * period)`` on the epoch clock, so ``"2/s"``
admits exactly 2 units per calendar second (hits at 0.90 s, 0.95 s, 0.99 s: the third is
refused; at 1.00 s a new window opens), and every instance sharing a clock agrees on where
windows start. A request is admitted when ``used + cost <= limit``; a refused request
consumes nothing, and its retry time is the real time left until the next window
(infinite when ``cost > limit``). A refund gives units back within the same window only.

Aligned windows let a client spend a full budget at the end of one window and another at
the start of the next (up to ``2 * limit`` within one period); use a sliding or bucket
strategy where that matters.

Integer algorithm (``P = period_ms``, ``L = limit``; state ``(w, used)``, 2 integers)::

    window = now // P
    if state and state.w > window: window = state.w; now = window * P   # clock behind
    used  = state.used if state and state.w == window else 0
    reset = (window + 1) * P - now                                      # >= 1 ms
    cost == 0:        allowed, remaining L - used, state unchanged
    cost > L:         refused, retry_after = inf
    used + cost <= L: store (window, used + cost) with ttl = reset;
                      allowed, remaining L - used - cost, reset_after = reset
    otherwise:        refused, remaining L - used, retry_after = reset_after = reset
    refund(c):        same window only: used = max(used - c, 0), ttl = reset
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from traffik._aliases import Moved, forward
from traffik.decision import Decision, new_decision
from traffik.rates import Rate
from traffik.strategies._support import aligned_window
from traffik.strategies.base import (
    MAX_EXACT,
    MAX_SPAN_MS,
    IntTupleCodec,
    Params,
    Step,
    require_exact,
)

__all__ = ["FixedWindow", "decide_window", "refund_window"]

WindowState = tuple[int, int]


def decide_window(
    state: WindowState | None, now: int, period: int, limit: int, cost: int
) -> Step[WindowState]:
    """The fixed-window decision for a given (possibly scaled) limit."""
    # `aligned_window`, inlined: this runs on every check of the default strategy.
    window = now // period
    if state is None:
        used = 0
    else:
        stored = state[0]
        if stored == window:
            used = state[1]
        elif stored > window:  # written by a clock ahead of ours: decide in its window
            window = stored
            now = stored * period
            used = state[1]
        else:
            used = 0
    reset_ms = (window + 1) * period - now
    reset_after = reset_ms / 1000
    if used + cost <= limit:
        if cost == 0:
            return (
                state,
                new_decision(Decision, (True, limit, limit - used, reset_after, 0.0, 0.0)),
                reset_ms,
            )
        used += cost
        return (
            (window, used),
            new_decision(Decision, (True, limit, limit - used, reset_after, 0.0, 0.0)),
            reset_ms,
        )
    if cost == 0:  # over a limit lowered since (a scaled limit): nothing is left
        return state, new_decision(Decision, (True, limit, 0, reset_after, 0.0, 0.0)), reset_ms
    retry_after = math.inf if cost > limit else reset_after
    remaining = limit - used if used < limit else 0
    return (
        state,
        new_decision(Decision, (False, limit, remaining, reset_after, retry_after, 0.0)),
        reset_ms,
    )


def refund_window(
    state: WindowState | None, now: int, period: int, cost: int
) -> tuple[WindowState | None, int]:
    """Give units back within the same window only."""
    if state is None:
        return None, 1
    window, now = aligned_window(now, period, state[0])
    if state[0] != window:
        return state, 1  # that window has closed: nothing to give back
    return (window, max(state[1] - cost, 0)), (window + 1) * period - now


@dataclass(frozen=True, slots=True)
class FixedWindow(IntTupleCodec):
    """Count per clock-aligned window. The default strategy."""

    name: ClassVar[str] = "fixed_window"
    state_fields: ClassVar[int] = 2
    #: A refusal lasts, unchanged, until the window ends (see `traffik.refusals`).
    steady_refusals: ClassVar[bool] = True

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this window cannot decide exactly (see `require_exact`)."""
        require_exact(self, rate, rate.limit, rate.period_ms)

    def decide(
        self, state: WindowState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[WindowState]:
        limit = rate.limit
        if limit >= MAX_EXACT or rate.period_ms > MAX_SPAN_MS:
            self.check_rate(rate)
        # `decide_window`, inlined for the common case (a hit in the current window):
        # this is the default strategy's every check.
        if state is not None and cost > 0:
            period = rate.period_ms
            window = now // period
            if state[0] == window:
                used = state[1] + cost
                if used <= limit:
                    reset_ms = (window + 1) * period - now
                    decision = (True, limit, limit - used, reset_ms / 1000, 0.0, 0.0)
                    return (window, used), new_decision(Decision, decision), reset_ms
        return decide_window(state, now, rate.period_ms, limit, cost)

    def refund(
        self, state: WindowState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[WindowState | None, int]:
        return refund_window(state, now, rate.period_ms, cost)


# traffik 1.x's name (`traffik._aliases`): each use warns.
if TYPE_CHECKING:
    FixedWindowStrategy = FixedWindow
forward(
    __name__,
    globals(),
    {"FixedWindowStrategy": Moved("traffik.strategies", name="FixedWindow")},
    alias_module=False,
)

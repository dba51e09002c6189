"""Sliding window counter: the previous window's count, weighted by its overlap, plus ours.

Rule: windows are aligned as for `FixedWindow`. At ``elapsed`` ms into the current
window, the estimated usage of the last period is
``previous * (period - elapsed) / period + current``, and a request of cost ``c`` is
admitted when ``estimate + c <= limit`` — compared exactly, in integers. With ``"10/s"``,
10 units used in the previous second and none yet in this one: at 0.25 s the estimate is
7.5, so 2 more units pass; at 0.9 s it is 1, so 9 pass. A refused request counts nothing
(unlike traffik 1.x), and its retry time is the exact first millisecond at which the
same request would pass — perhaps later in this window as the previous one fades, perhaps
in the next one or the one after. A cost above the limit never passes (infinite).
``remaining`` is ``floor(limit - estimate)``; ``reset_after`` is the time until both
counts have faded (the end of the next window while the current one has usage).

Integer algorithm (``P = period_ms``, ``L = limit``; state ``(w, previous, current)``,
3 integers)::

    window = now // P; if state.w > window: window = state.w; now = window * P
    (prev, cur) = state.w == window     -> (state.previous, state.current)
                  state.w == window - 1 -> (state.current, 0)
                  otherwise / no state  -> (0, 0)
    elapsed = now - window * P;  weight = P - elapsed     (require L < 2**52 and P < 2**52)
    faded = ceil(prev * weight / P)     (the previous window's part of the estimate, rounded up)
    cost == 0:   allowed, state unchanged
    cost > L:    refused, retry_after = inf
    cur + cost + faded <= L   (prev * weight / P + cur + cost <= L, exactly):
                 cur += cost; store (window, prev, cur)
                 allowed, remaining = max(0, L - cur - faded)
    otherwise:   refused, remaining as above, retry_ms =
                   slack = L - cur - cost
                   if slack >= 0 and (e = P - slack * P // prev) < P: e - elapsed
                   else: e2 = 0 if cur == 0 else max(0, P - (L - cost) * P // cur)
                         (P - elapsed) + e2 if e2 < P else 2 * P - elapsed
    reset_ms = 2 * P - elapsed if cur > 0 else P - elapsed if prev > 0 else 0
    ttl = max(reset_ms, 1)
    refund(c): take c from cur, then from prev (in the current window's terms)

A count times a time (``prev * weight``, ``slack * P``) can pass 2**53 (10 million per
30 days: 2.6e16); Python computes it exactly, and the Redis script does too, in parts
(its ``muldiv``), so only the counts and times themselves must stay below 2**52.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from traffik.decision import Decision
from traffik.rates import Rate
from traffik.strategies._support import aligned_window
from traffik.strategies.base import IntTupleCodec, Params, Step, ceil_div, require_exact

__all__ = ["SlidingWindowCounter"]

CounterState = tuple[int, int, int]


def _counts(state: CounterState | None, now: int, period: int) -> tuple[int, int, int, int]:
    """``(window, now, previous, current)`` as seen from ``now``."""
    window, now = aligned_window(now, period, None if state is None else state[0])
    if state is None:
        return window, now, 0, 0
    if state[0] == window:
        return window, now, state[1], state[2]
    if state[0] == window - 1:
        return window, now, state[2], 0
    return window, now, 0, 0


def _reset_ms(previous: int, current: int, elapsed: int, period: int) -> int:
    if current > 0:
        return 2 * period - elapsed
    return period - elapsed if previous > 0 else 0


@dataclass(frozen=True, slots=True)
class SlidingWindowCounter(IntTupleCodec):
    """Weighted previous window plus the current one: smooth, with two counters."""

    name: ClassVar[str] = "sliding_window_counter"
    state_fields: ClassVar[int] = 3

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this counter cannot decide exactly (see `require_exact`)."""
        require_exact(self, rate, 2 * max(rate.limit, rate.period_ms), 2 * rate.period_ms)

    def decide(
        self, state: CounterState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[CounterState]:
        self.check_rate(rate)
        period, limit = rate.period_ms, rate.limit
        window, now, previous, current = _counts(state, now, period)
        elapsed = now - window * period
        faded = ceil_div(previous * (period - elapsed), period)
        fits = 0 < cost <= limit and current + cost + faded <= limit
        if fits:
            current += cost
            new_state: CounterState | None = (window, previous, current)
        else:
            new_state = state
        admitted = fits or cost == 0
        remaining = max(0, limit - current - faded)
        reset_ms = _reset_ms(previous, current, elapsed, period)
        if admitted:
            decision = Decision(True, limit, remaining, reset_ms / 1000, 0.0)
        else:
            retry_after = (
                math.inf
                if cost > limit
                else self._retry_ms(previous, current, cost, elapsed, limit, period) / 1000
            )
            decision = Decision(False, limit, remaining, reset_ms / 1000, retry_after)
        return new_state, decision, max(reset_ms, 1)

    @staticmethod
    def _retry_ms(
        previous: int, current: int, cost: int, elapsed: int, limit: int, period: int
    ) -> int:
        """The first millisecond at which ``cost`` would pass, from a refusal now."""
        slack = limit - current - cost
        if slack >= 0:  # passes later in this window, as the previous one fades?
            admitted_at = period - slack * period // previous
            if admitted_at < period:
                return admitted_at - elapsed
        # In the next window, ours becomes the previous one.
        admitted_at = 0 if current == 0 else max(0, period - (limit - cost) * period // current)
        if admitted_at < period:
            return period - elapsed + admitted_at
        return 2 * period - elapsed

    def refund(
        self, state: CounterState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[CounterState | None, int]:
        if state is None:
            return None, 1
        period = rate.period_ms
        window, now, previous, current = _counts(state, now, period)
        taken = min(cost, current)
        current -= taken
        previous = max(0, previous - (cost - taken))
        reset_ms = _reset_ms(previous, current, now - window * period, period)
        if reset_ms == 0:
            return None, 1
        return (window, previous, current), reset_ms

"""Quota with rollover: a fixed period's quota, plus part of what the last period left.

Rule: periods are aligned windows as for `FixedWindow`. A period's quota is
``limit + rollover``, where ``rollover = min(max_rollover, floor(unused *
rollover_percentage))`` and ``unused = max(0, limit - used)`` is what the client left of
the *base* limit in the period just before (rollover does not compound). A client that
made no request in the previous period carries nothing over, and a new client starts
with the plain limit. With ``"1000/30days"``, the defaults (0.5, 500): using 400 in one
month gives 1000 + 300 the next; using none for a whole month carries nothing into the
month after. A refused request counts nothing; it may retry next period when its cost
fits the next quota (computed from this period's usage), and never otherwise.

Integer algorithm (``P = period_ms``, ``L = limit``, ``M = max_rollover``, percentage
``pn/pd`` exactly; state ``(w, used, rollover)``, 3 integers)::

    carry(u) = min(M, max(0, L - u) * pn // pd)             (require L * pn < 2**53)
    window = now // P; if state.w > window: window = state.w; now = window * P
    (used, r) = (state.used, state.rollover)  if state.w == window
                (0, carry(state.used))        if state.w == window - 1
                (0, 0)                        otherwise / no state
    quota = L + r;  reset = (window + 1) * P - now
    cost == 0:             allowed, state unchanged
    used + cost <= quota:  store (window, used + cost, r) with ttl = reset + P
                           allowed, remaining quota - used - cost
    otherwise:             refused, remaining max(0, quota - used);
                           next = L + carry(used) if state.w == window else L
                           retry_ms = reset if cost <= next else inf
    refund(c): same period only, used = max(used - c, 0)

The state is kept one period past its own (``ttl = reset + P``): the next period's
rollover depends on it. After that it is equivalent to no state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import ClassVar

from traffik.decision import Decision
from traffik.rates import Rate
from traffik.strategies._support import aligned_window, exact_ratio, whole_number
from traffik.strategies.base import IntTupleCodec, Params, Step, require_exact

__all__ = ["QuotaWithRollover"]

QuotaState = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class QuotaWithRollover(IntTupleCodec):
    """Per-period quota where unused quota carries into the next period, capped."""

    rollover_percentage: float | Fraction = 0.5
    max_rollover: int = 500
    _percentage: Fraction = field(init=False, repr=False, compare=False)

    name: ClassVar[str] = "quota_with_rollover"
    state_fields: ClassVar[int] = 3
    #: A refusal lasts, unchanged, until the period ends (see `traffik.refusals`).
    steady_refusals: ClassVar[bool] = True

    def __post_init__(self) -> None:
        percentage = exact_ratio(
            self.rollover_percentage,
            "QuotaWithRollover rollover_percentage",
            low=0,
            low_inclusive=True,
            high=1,
        )
        object.__setattr__(self, "_percentage", percentage)
        whole_number(self.max_rollover, "QuotaWithRollover max_rollover", minimum=0)

    @property
    def exact_percentage(self) -> Fraction:
        """``rollover_percentage`` as an exact fraction (``0.5`` is exactly 1/2)."""
        return self._percentage

    def carry(self, used: int, rate: Rate) -> int:
        """What a period with ``used`` units carries into the next one."""
        unused = max(0, rate.limit - used)
        share = unused * self._percentage.numerator // self._percentage.denominator
        return min(self.max_rollover, share)

    def _standing(
        self, state: QuotaState | None, now: int, period: int, rate: Rate
    ) -> tuple[int, int, int, int]:
        window, now = aligned_window(now, period, None if state is None else state[0])
        if state is None:
            return window, now, 0, 0
        if state[0] == window:
            return window, now, state[1], state[2]
        if state[0] == window - 1:
            return window, now, 0, self.carry(state[1], rate)
        return window, now, 0, 0

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this quota cannot decide exactly (see `require_exact`)."""
        largest = max(rate.limit * self._percentage.numerator, rate.limit + self.max_rollover)
        require_exact(self, rate, largest, 2 * rate.period_ms)  # kept a period past its own

    def decide(
        self, state: QuotaState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[QuotaState]:
        self.check_rate(rate)
        period, limit = rate.period_ms, rate.limit
        window, now, used, rollover = self._standing(state, now, period, rate)
        quota = limit + rollover
        reset_ms = (window + 1) * period - now
        reset_after = reset_ms / 1000
        ttl = reset_ms + period
        if cost == 0 or used + cost <= quota:
            new_state = state if cost == 0 else (window, used + cost, rollover)
            remaining = max(0, quota - used - cost)
            return new_state, Decision(True, quota, remaining, reset_after, 0.0), ttl
        # Refusals write nothing: only a state of this period gives the next one a rollover.
        used_here = state is not None and state[0] == window
        following = limit + self.carry(used, rate) if used_here else limit
        retry_after = reset_after if cost <= following else math.inf
        decision = Decision(False, quota, max(0, quota - used), reset_after, retry_after)
        return state, decision, ttl

    def refund(
        self, state: QuotaState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[QuotaState | None, int]:
        if state is None:
            return None, 1
        window, now = aligned_window(now, rate.period_ms, state[0])
        if state[0] != window:
            return state, 1  # that period has closed: nothing to give back
        reset_ms = (window + 1) * rate.period_ms - now
        return (window, max(state[1] - cost, 0), state[2]), reset_ms + rate.period_ms

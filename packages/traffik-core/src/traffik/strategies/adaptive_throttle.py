"""Adaptive throttle: a fixed window whose limit shrinks under sustained load.

Rule: windows are aligned as for `FixedWindow`, and each has an effective limit, fixed
for the whole window (so it never collapses within one). A client starts at the full
limit. When a window ends, its load is ``used / effective``:

* above ``load_threshold``: the next window's limit is
  ``max(floor, floor(effective * reduction_factor))``;
* otherwise: it recovers by ``step`` towards the full limit;

where ``floor = max(1, floor(limit * min_limit_ratio))`` and
``step = max(1, floor(limit * recovery_rate))``. A window without requests recovers
too. With ``"100/min"`` and the defaults (0.8, 0.6, 0.1, 0.3), a client sending 200
requests a minute is admitted 100, 60, 36, 30, 30, 30 in six minutes; once it slows to
10 a minute, its limit climbs back by 10 a minute (30 → 40 → ... → 100). Refused
requests are not counted (the load is what the client was allowed to do). A refused
request's retry time is the first window whose limit fits its cost, assuming it sends
nothing before; a cost above the full limit is refused for ever.

Integer algorithm (``P = period_ms``, ``L = limit``; ratios as exact fractions
``tn/td`` (threshold), ``rn/rd`` (reduction); state ``(w, used, effective)``,
3 integers)::

    rollover(eff, used) = max(floor, eff * rn // rd) if used * td > eff * tn
                          else min(L, eff + step)
    window = now // P; if state.w > window: window = state.w; now = window * P
    no state:              used = 0, eff = L
    state.w == window:     used = state.used, eff = min(state.effective, L)
    state.w < window:      used = 0, k = window - state.w - 1 (idle windows)
                           eff = min(L, rollover(min(state.effective, L), state.used)
                                       + min(k, L) * step)
    reset = (window + 1) * P - now
    cost == 0:           allowed, state unchanged
    cost > L:            refused, retry_after = inf
    used + cost <= eff:  store (window, used + cost, eff); allowed, remaining eff - used - cost
    otherwise:           refused, remaining max(eff - used, 0); next = rollover(eff, used)
                         retry_ms = reset if cost <= next
                                    else reset + ceil((cost - next) / step) * P
    ttl = reset + ceil((L - rollover(eff, used)) / step) * P
          (after that the limit is whole again: the same as no state)
    refund(c): same window only, used = max(used - c, 0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import ClassVar

from traffik.decision import Decision
from traffik.rates import Rate
from traffik.strategies._support import aligned_window, exact_ratio, scaled
from traffik.strategies.base import IntTupleCodec, Params, Step, ceil_div, require_exact

__all__ = ["AdaptiveThrottle"]

AdaptiveState = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class AdaptiveThrottle(IntTupleCodec):
    """A fixed window whose limit adapts, once per window, to the client's load."""

    load_threshold: float | Fraction = 0.8
    reduction_factor: float | Fraction = 0.6
    recovery_rate: float | Fraction = 0.1
    min_limit_ratio: float | Fraction = 0.3
    _ratios: tuple[Fraction, Fraction, Fraction, Fraction] = field(
        init=False, repr=False, compare=False
    )

    name: ClassVar[str] = "adaptive_throttle"
    state_fields: ClassVar[int] = 3

    def __post_init__(self) -> None:
        ratios = (
            exact_ratio(self.load_threshold, "AdaptiveThrottle load_threshold", high=1),
            exact_ratio(
                self.reduction_factor,
                "AdaptiveThrottle reduction_factor",
                high=1,
                high_inclusive=False,
            ),
            exact_ratio(self.recovery_rate, "AdaptiveThrottle recovery_rate", high=1),
            exact_ratio(self.min_limit_ratio, "AdaptiveThrottle min_limit_ratio", high=1),
        )
        object.__setattr__(self, "_ratios", ratios)

    @property
    def exact_ratios(self) -> tuple[Fraction, Fraction, Fraction, Fraction]:
        """``(load_threshold, reduction_factor, recovery_rate, min_limit_ratio)``, exactly."""
        return self._ratios

    def floor_limit(self, rate: Rate) -> int:
        """The lowest the effective limit goes."""
        return scaled(rate.limit, self._ratios[3])

    def recovery_step(self, rate: Rate) -> int:
        """How much the effective limit recovers per window below the threshold."""
        return scaled(rate.limit, self._ratios[2])

    def _rollover(self, effective: int, used: int, rate: Rate) -> int:
        """The next window's limit after a window with ``used`` out of ``effective``."""
        threshold, reduction = self._ratios[0], self._ratios[1]
        if used * threshold.denominator > effective * threshold.numerator:
            reduced = effective * reduction.numerator // reduction.denominator
            return max(self.floor_limit(rate), reduced)
        return min(rate.limit, effective + self.recovery_step(rate))

    def _standing(
        self, state: AdaptiveState | None, now: int, rate: Rate
    ) -> tuple[int, int, int, int]:
        """``(window, now, used, effective)`` as seen from ``now``."""
        period, limit = rate.period_ms, rate.limit
        window, now = aligned_window(now, period, None if state is None else state[0])
        if state is None:
            return window, now, 0, limit
        effective = min(state[2], limit)
        if state[0] == window:
            return window, now, state[1], effective
        idle = min(window - state[0] - 1, limit)
        effective = self._rollover(effective, state[1], rate) + idle * self.recovery_step(rate)
        return window, now, 0, min(limit, effective)

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this window cannot decide exactly (see `require_exact`)."""
        limit, step = rate.limit, self.recovery_step(rate)
        threshold, reduction = self._ratios[0], self._ratios[1]
        # used * td, effective * tn, effective * rn. (Idle windows * step may pass 2**53:
        # the sum is then capped at the limit, below 2**53, however it rounds.)
        largest = limit * max(threshold.numerator, threshold.denominator, reduction.numerator)
        # The state is kept until the limit has recovered: ceil(L / step) more periods.
        require_exact(self, rate, largest, (2 + ceil_div(limit, step)) * rate.period_ms)

    def decide(
        self, state: AdaptiveState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[AdaptiveState]:
        self.check_rate(rate)
        period, limit = rate.period_ms, rate.limit
        window, now, used, effective = self._standing(state, now, rate)
        reset_ms = (window + 1) * period - now
        step = self.recovery_step(rate)
        if cost == 0 or (cost <= limit and used + cost <= effective):
            new_state = state if cost == 0 else (window, used + cost, effective)
            used += cost
            ttl = reset_ms + ceil_div(limit - self._rollover(effective, used, rate), step) * period
            decision = Decision(True, effective, max(effective - used, 0), reset_ms / 1000, 0.0)
            return new_state, decision, ttl
        following = self._rollover(effective, used, rate)
        if cost > limit:
            retry_after = math.inf
        elif cost <= following:
            retry_after = reset_ms / 1000
        else:
            retry_after = (reset_ms + ceil_div(cost - following, step) * period) / 1000
        ttl = reset_ms + ceil_div(limit - following, step) * period
        decision = Decision(
            False, effective, max(effective - used, 0), reset_ms / 1000, retry_after
        )
        return state, decision, ttl

    def refund(
        self, state: AdaptiveState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[AdaptiveState | None, int]:
        if state is None:
            return None, 1
        window, now, used, effective = self._standing(state, now, rate)
        if state[0] != window:
            return state, 1  # that window has closed: nothing to give back
        used = max(used - cost, 0)
        step = self.recovery_step(rate)
        reset_ms = (window + 1) * rate.period_ms - now
        following = self._rollover(effective, used, rate)
        return (window, used, effective), reset_ms + ceil_div(
            rate.limit - following, step
        ) * rate.period_ms

"""Cost-based token bucket: a token bucket that refills more slowly after costly requests.

Rule: a `TokenBucket` (capacity ``burst_size or limit``, starts full, a request of cost
``c`` needs ``c`` tokens) whose refill rate is ``limit`` per period times a multiplier
``max(min_refill_rate, 1 / average_cost)``, where ``average_cost`` is the average cost of
the client's recent admitted requests: the exact mean of the first ``cost_window`` of
them, then an exponential moving average with weight ``1 / cost_window``. The multiplier
is rounded down to thousandths, and is 1 while there is no history. The history is
forgotten when the bucket is full again (an idle client starts afresh). With
``"100/min"`` (capacity 100): cost-1 requests refill at 100 per minute; after requests
of cost 4 the refill slows to 50 a minute (the 0.5 floor), so a client spending 100
tokens in cost-4 requests waits 2 minutes, not 1, for a full bucket. Refused requests
change nothing (not even the average); a cost above the capacity is refused for ever.

Integer algorithm (``P = period_ms``, ``L = limit``, ``g = gcd(L, P)``, ``p = P / g``,
``l = L / g`` (the rate in lowest terms: ``l`` tokens per ``p`` ms), ``C`` capacity,
``N`` cost_window, ``floor_m = max(1, floor(1000 * min_refill_rate))``; state
``(level, last, average, count)``, 4 integers: ``level`` in ``1/(1000 p)`` tokens,
``average`` = mean cost * 1000 (floored), ``count`` = samples so far, at most N)::

    unit = p * 1000;  full = C * unit;  need = cost * unit  (require full + 1000 l < 2**53)
    multiplier(avg, n) = 1000 if n == 0 or avg <= 1000 else max(floor_m, 10**6 // avg)
    per_ms = l * multiplier(average, count)
    state is None:  level = full, last = now, average = count = 0
    otherwise:      if now > last:
                        if now - last >= ceil((full - level) / per_ms):
                            level = full; average = count = 0      # full: forget
                        else: level += (now - last) * per_ms
                        last = now
    cost == 0:        allowed, state unchanged
    cost > C:         refused, retry_after = inf
    level >= need:    level -= need; count = min(count + 1, N)
                      average += (cost * 1000 - average) // count      (floor division)
                      per_ms = l * multiplier(average, count); store the four
                      allowed, remaining = level // unit
    otherwise:        refused, remaining = level // unit,
                      retry_ms = ceil((need - level) / per_ms)
    reset_ms = ceil((full - level) / per_ms);  ttl = max(reset_ms + max(last - now, 0), 1)
    refund(c): level = min(full, refilled level + c * unit) (history kept unless full)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import ClassVar, Final

from traffik.decision import Decision
from traffik.rates import Rate
from traffik.strategies._bucket import keep_for, lowest_terms, refill
from traffik.strategies._support import exact_ratio, scaled, whole_number
from traffik.strategies.base import IntTupleCodec, Params, Step, ceil_div, require_exact

__all__ = ["CostBasedTokenBucket"]

SCALE: Final = 1000
"""Multipliers are in thousandths; average costs in thousandths of a unit."""

CostBucketState = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class CostBasedTokenBucket(IntTupleCodec):
    """Token bucket whose refill slows by the average cost of recent requests."""

    burst_size: int | None = None
    cost_window: int = 100
    min_refill_rate: float | Fraction = 0.5
    _floor: int = field(init=False, repr=False, compare=False)

    name: ClassVar[str] = "cost_based_token_bucket"
    state_fields: ClassVar[int] = 4

    def __post_init__(self) -> None:
        if self.burst_size is not None:
            whole_number(self.burst_size, "CostBasedTokenBucket burst_size", minimum=1)
        whole_number(self.cost_window, "CostBasedTokenBucket cost_window", minimum=1)
        ratio = exact_ratio(self.min_refill_rate, "CostBasedTokenBucket min_refill_rate", high=1)
        object.__setattr__(self, "_floor", scaled(SCALE, ratio))

    @property
    def floor_multiplier(self) -> int:
        """The lowest refill multiplier, in thousandths (``min_refill_rate`` 0.5 is 500)."""
        return self._floor

    def capacity(self, rate: Rate) -> int:
        return self.burst_size or rate.limit

    def multiplier(self, average: int, count: int) -> int:
        """The refill multiplier in thousandths for a history of ``count`` samples."""
        if count == 0 or average <= SCALE:
            return SCALE
        return max(self._floor, SCALE * SCALE // average)

    def _refilled(
        self, state: CostBucketState, now: int, tokens_per: int, full: int
    ) -> CostBucketState:
        level, last, average, count = state
        level, last = refill(level, last, now, tokens_per * self.multiplier(average, count), full)
        if level >= full:
            return full, last, 0, 0
        return level, last, average, count

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this bucket cannot decide exactly (see `require_exact`)."""
        tokens_per, period = lowest_terms(rate)
        largest = self.capacity(rate) * period * SCALE + tokens_per * SCALE
        # The slowest refill, from empty to full, at the floor multiplier.
        require_exact(self, rate, largest, ceil_div(largest, tokens_per * self._floor))

    def decide(
        self, state: CostBucketState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[CostBucketState]:
        self.check_rate(rate)
        tokens_per, period = lowest_terms(rate)
        capacity = self.capacity(rate)
        unit = period * SCALE
        full = capacity * unit
        if state is None:
            level, last, average, count = full, now, 0, 0
        else:
            level, last, average, count = self._refilled(state, now, tokens_per, full)
        per_ms = tokens_per * self.multiplier(average, count)
        if cost == 0 or (cost <= capacity and level >= cost * unit):
            new_state = state
            if cost > 0:
                level -= cost * unit
                count = min(count + 1, self.cost_window)
                average += (cost * SCALE - average) // count
                per_ms = tokens_per * self.multiplier(average, count)
                new_state = (level, last, average, count)
            reset_ms = ceil_div(full - level, per_ms)
            decision = Decision(True, capacity, level // unit, reset_ms / 1000, 0.0)
            return new_state, decision, keep_for(reset_ms, last, now)
        reset_ms = ceil_div(full - level, per_ms)
        retry_after = math.inf if cost > capacity else ceil_div(cost * unit - level, per_ms) / 1000
        decision = Decision(False, capacity, level // unit, reset_ms / 1000, retry_after)
        return state, decision, keep_for(reset_ms, last, now)

    def refund(
        self, state: CostBucketState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[CostBucketState | None, int]:
        if state is None:
            return None, 1
        tokens_per, period = lowest_terms(rate)
        unit = period * SCALE
        full = self.capacity(rate) * unit
        level, last, average, count = self._refilled(state, now, tokens_per, full)
        level = min(full, level + cost * unit)
        if level >= full:
            return None, 1  # full, history forgotten: the same as no state
        per_ms = tokens_per * self.multiplier(average, count)
        return (level, last, average, count), keep_for(ceil_div(full - level, per_ms), last, now)

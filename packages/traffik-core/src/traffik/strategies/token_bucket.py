"""Token buckets: a burst up to a capacity, refilled continuously at the rate.

`TokenBucket` rule: the bucket holds ``capacity = burst_size or limit`` tokens and starts
full. It refills at ``limit`` tokens per period, lazily, when a request arrives
(``"100/min"``: one token every 0.6 s; ``"10/s"`` with ``burst_size=1``: one request per
100 ms, never two in a row). A request of cost ``c`` is admitted when the bucket holds at
least ``c`` tokens, and takes them; a refused request takes nothing and may retry once
the missing tokens have dripped in. A cost above the capacity can never be met: its
retry time is infinite. A refund puts tokens back, never above the capacity.

`TokenBucketWithDebt` rule: the same, except that the bucket may go into debt down to
``-max_debt`` tokens: a request is admitted when ``tokens - c >= -max_debt``. With
``"10/s"``, ``burst_size=5`` and ``max_debt=5``, 10 requests pass at once, then one per
100 ms as each token drips in (the bucket stays in debt while it is spent as it comes;
a pause of 1 s repays the debt, 1.5 s refills it). Its decisions report ``limit = capacity +
max_debt`` (the most a full bucket can spend at once) and ``remaining = tokens +
max_debt``; a cost above ``capacity + max_debt`` is refused for ever.

Integer algorithm (the rate in lowest terms, ``L`` tokens per ``P`` ms, see
`traffik.strategies._bucket`; ``C`` capacity, ``D`` max_debt, 0 for `TokenBucket`; state
``(level, last)``, 2 integers, ``level`` in ``1/P`` tokens, so one ms of refill adds
exactly ``L`` units)::

    full = C * P;  floor = -D * P;  need = cost * P        (require (C + D) * P + L < 2**53)
    state is None:  level = full, last = now
    otherwise:      if now > last:
                        if now - last >= ceil((full - level) / L): level = full
                        else: level += (now - last) * L
                        last = now
    cost == 0:                 allowed, state unchanged
    cost > C + D:              refused, retry_after = inf
    level - need >= floor:     level -= need; store (level, last)
                               allowed, remaining = (level - floor) // P
    otherwise:                 refused, remaining = (level - floor) // P,
                               retry_ms = ceil((need + floor - level) / L)
    reset_ms = ceil((full - level) / L)  (time until full)
    ttl = max(reset_ms + max(last - now, 0), 1)
    refund(c): level = min(full, refilled level + c * P)

After ``ttl`` the bucket is full again, which is what a missing state means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from traffik._aliases import Moved, forward
from traffik.decision import Decision
from traffik.rates import Rate
from traffik.strategies._bucket import keep_for, lowest_terms, refill
from traffik.strategies._support import whole_number
from traffik.strategies.base import IntTupleCodec, Params, Step, ceil_div, require_exact

__all__ = ["TokenBucket", "TokenBucketWithDebt"]

BucketState = tuple[int, int]


def _check(strategy: object, rate: Rate, capacity: int, debt: int) -> None:
    limit, period = lowest_terms(rate)
    # From empty to full: the longest wait, ceil(((C + D) * P) / L) ms.
    largest = (capacity + debt) * period + limit
    require_exact(strategy, rate, largest, ceil_div(largest, limit))


def _decide(
    state: BucketState | None,
    now: int,
    rate: Rate,
    cost: int,
    capacity: int,
    debt: int,
) -> Step[BucketState]:
    limit, period = lowest_terms(rate)
    full = capacity * period
    floor = -debt * period
    if state is None:
        level, last = full, now
    else:
        level, last = refill(state[0], state[1], now, limit, full)
    reset_ms = ceil_div(full - level, limit)
    spendable = capacity + debt
    if cost == 0:
        decision = Decision(True, spendable, (level - floor) // period, reset_ms / 1000, 0.0)
        return state, decision, keep_for(reset_ms, last, now)
    need = cost * period
    if cost <= spendable and level - need >= floor:
        level -= need
        reset_ms = ceil_div(full - level, limit)
        decision = Decision(True, spendable, (level - floor) // period, reset_ms / 1000, 0.0)
        return (level, last), decision, keep_for(reset_ms, last, now)
    retry_after = math.inf if cost > spendable else ceil_div(need + floor - level, limit) / 1000
    decision = Decision(False, spendable, (level - floor) // period, reset_ms / 1000, retry_after)
    return state, decision, keep_for(reset_ms, last, now)


def _refund(
    state: BucketState | None, now: int, rate: Rate, cost: int, capacity: int
) -> tuple[BucketState | None, int]:
    if state is None:
        return None, 1  # a missing bucket is already full
    limit, period = lowest_terms(rate)
    full = capacity * period
    level, last = refill(state[0], state[1], now, limit, full)
    level = min(full, level + cost * period)
    return (level, last), keep_for(ceil_div(full - level, limit), last, now)


@dataclass(frozen=True, slots=True)
class TokenBucket(IntTupleCodec):
    """Token bucket with an optional ``burst_size`` (the capacity; defaults to the limit)."""

    burst_size: int | None = None

    name: ClassVar[str] = "token_bucket"
    state_fields: ClassVar[int] = 2

    def __post_init__(self) -> None:
        if self.burst_size is not None:
            whole_number(self.burst_size, "TokenBucket burst_size", minimum=1)

    def capacity(self, rate: Rate) -> int:
        return self.burst_size or rate.limit

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this bucket cannot decide exactly (see `require_exact`)."""
        _check(self, rate, self.capacity(rate), 0)

    def decide(
        self, state: BucketState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[BucketState]:
        self.check_rate(rate)
        return _decide(state, now, rate, cost, self.capacity(rate), 0)

    def refund(
        self, state: BucketState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[BucketState | None, int]:
        return _refund(state, now, rate, cost, self.capacity(rate))


@dataclass(frozen=True, slots=True)
class TokenBucketWithDebt(IntTupleCodec):
    """Token bucket whose tokens may go negative, down to ``-max_debt``."""

    burst_size: int | None = None
    max_debt: int = 0

    name: ClassVar[str] = "token_bucket_with_debt"
    state_fields: ClassVar[int] = 2

    def __post_init__(self) -> None:
        if self.burst_size is not None:
            whole_number(self.burst_size, "TokenBucketWithDebt burst_size", minimum=1)
        whole_number(self.max_debt, "TokenBucketWithDebt max_debt", minimum=0)

    def capacity(self, rate: Rate) -> int:
        return self.burst_size or rate.limit

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this bucket cannot decide exactly (see `require_exact`)."""
        _check(self, rate, self.capacity(rate), self.max_debt)

    def decide(
        self, state: BucketState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[BucketState]:
        self.check_rate(rate)
        return _decide(state, now, rate, cost, self.capacity(rate), self.max_debt)

    def refund(
        self, state: BucketState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[BucketState | None, int]:
        return _refund(state, now, rate, cost, self.capacity(rate))


# traffik 1.x's names (`traffik._aliases`): each use warns.
if TYPE_CHECKING:
    TokenBucketStrategy = TokenBucket
    TokenBucketWithDebtStrategy = TokenBucketWithDebt
forward(
    __name__,
    globals(),
    {
        "TokenBucketStrategy": Moved("traffik.strategies", name="TokenBucket"),
        "TokenBucketWithDebtStrategy": Moved("traffik.strategies", name="TokenBucketWithDebt"),
    },
    alias_module=False,
)

"""Token bucket: a burst up to a capacity, refilled continuously at the rate.

The bucket holds ``capacity = burst_size or limit`` tokens and starts full. It refills at
``limit`` tokens per period (``"100/min"``: one token every 0.6 s), lazily, when a request
arrives. A request of cost ``c`` is admitted when the bucket holds at least ``c`` tokens,
and takes them; a refused request takes nothing and may retry once the missing tokens
have dripped in. A cost above the capacity can never be met: its retry time is infinite.
A refund puts tokens back, never above the capacity.

To stay exact, the level is counted in ``1/period_ms`` fractions of a token, so a refill
of ``elapsed_ms * limit`` units is an integer. The stored state is
``(level, last_refill_ms)``, kept until the bucket would be full again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from traffik.decision import Decision
from traffik.rates import Rate
from traffik.strategies.base import IntTupleCodec, Params, Step, ceil_div

__all__ = ["TokenBucket"]

BucketState = tuple[int, int]


@dataclass(frozen=True, slots=True)
class TokenBucket(IntTupleCodec):
    """Token bucket with an optional ``burst_size`` (the capacity; defaults to the limit)."""

    burst_size: int | None = None

    name: ClassVar[str] = "token_bucket"

    def __post_init__(self) -> None:
        size = self.burst_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"TokenBucket burst_size must be a whole number >= 1, got {size!r}")

    def capacity(self, rate: Rate) -> int:
        return self.burst_size or rate.limit

    def decide(
        self, state: BucketState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[BucketState]:
        period = rate.period_ms
        limit = rate.limit
        capacity = self.capacity(rate)
        full = capacity * period
        if state is None:
            level, last = full, now
        else:
            level, last = state
            if now > last:
                level = min(full, level + (now - last) * limit)
                last = now
        need = cost * period
        if level >= need:
            level -= need
            reset_ms = ceil_div(full - level, limit)
            decision = Decision(True, capacity, level // period, reset_ms / 1000, 0.0)
            return (level, last), decision, max(reset_ms, 1)
        reset_ms = ceil_div(full - level, limit)
        retry_after = math.inf if cost > capacity else ceil_div(need - level, limit) / 1000
        decision = Decision(False, capacity, level // period, reset_ms / 1000, retry_after)
        return state, decision, max(reset_ms, 1)

    def refund(
        self, state: BucketState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[BucketState | None, int]:
        if state is None:
            return None, 1  # a missing bucket is already full
        full = self.capacity(rate) * rate.period_ms
        level, last = state
        if now > last:
            level, last = min(full, level + (now - last) * rate.limit), now
        level = min(full, level + cost * rate.period_ms)
        return (level, last), max(ceil_div(full - level, rate.limit), 1)

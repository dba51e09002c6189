"""Deliberately naive oracles, one per built-in strategy.

Each keeps the plain list of admitted requests and recomputes every decision from scratch
(see `traffik.testing.oracles.base` for the conventions). Subclass `Oracle` to check a
strategy of your own with the same machinery.
"""

from traffik.testing.oracles.base import Event, Oracle, Params, ceil_ms, ratio, seconds
from traffik.testing.oracles.buckets import (
    CostBasedTokenBucketOracle,
    GCRAOracle,
    LeakyBucketOracle,
    TokenBucketOracle,
)
from traffik.testing.oracles.scaled import (
    AdaptiveThrottleOracle,
    PriorityQueueOracle,
    QuotaWithRolloverOracle,
    TieredRateOracle,
    TimeOfDayOracle,
)
from traffik.testing.oracles.windows import (
    FixedWindowOracle,
    SlidingWindowCounterOracle,
    SlidingWindowLogOracle,
)

__all__ = [
    "AdaptiveThrottleOracle",
    "CostBasedTokenBucketOracle",
    "Event",
    "FixedWindowOracle",
    "GCRAOracle",
    "LeakyBucketOracle",
    "Oracle",
    "Params",
    "PriorityQueueOracle",
    "QuotaWithRolloverOracle",
    "SlidingWindowCounterOracle",
    "SlidingWindowLogOracle",
    "TieredRateOracle",
    "TimeOfDayOracle",
    "TokenBucketOracle",
    "ceil_ms",
    "ratio",
    "seconds",
]

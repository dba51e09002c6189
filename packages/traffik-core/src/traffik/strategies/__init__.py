"""Rate-limiting strategies: pure decisions over a small stored state.

Each strategy family lives in a module of its own, whose docstring states its exact rule
and its integer algorithm; see `traffik.strategies.base` for the contract every one of
them follows.
"""

from typing import TYPE_CHECKING

from traffik._aliases import Gone, Moved, forward
from traffik.strategies.adaptive_throttle import AdaptiveThrottle
from traffik.strategies.base import NO_PARAMS, Params, Step, Strategy
from traffik.strategies.concurrency import Concurrency
from traffik.strategies.cost_based_token_bucket import CostBasedTokenBucket
from traffik.strategies.fixed_window import FixedWindow
from traffik.strategies.gcra import GCRA
from traffik.strategies.leaky_bucket import LeakyBucket, LeakyBucketWithQueue
from traffik.strategies.priority_queue import Priority, PriorityQueue
from traffik.strategies.quota_with_rollover import QuotaWithRollover
from traffik.strategies.sliding_window_counter import SlidingWindowCounter
from traffik.strategies.sliding_window_log import SlidingWindowLog
from traffik.strategies.tiered_rate import TieredRate
from traffik.strategies.time_of_day import TimeOfDay
from traffik.strategies.token_bucket import TokenBucket, TokenBucketWithDebt

DEFAULT_STRATEGY = FixedWindow()

_STRATEGIES_1X = (
    "FixedWindow",
    "SlidingWindowLog",
    "SlidingWindowCounter",
    "TokenBucket",
    "TokenBucketWithDebt",
    "LeakyBucket",
    "LeakyBucketWithQueue",
    "GCRA",
    "TieredRate",
    "AdaptiveThrottle",
    "PriorityQueue",
    "QuotaWithRollover",
    "TimeOfDay",
    "CostBasedTokenBucket",
)
"""The strategies 1.x had, by their 2.x names; 1.x also spelt each with a ``Strategy`` suffix."""

forward(
    __name__,
    globals(),
    {
        **{f"{name}Strategy": Moved(__name__, name=name) for name in _STRATEGIES_1X},
        **dict.fromkeys(
            (f"{name}StatMetadata" for name in _STRATEGIES_1X),
            Gone(
                "throttle.stat(connection) returns a traffik.ThrottleStat, the same fields "
                "for every strategy (its strategy field names the strategy)"
            ),
        ),
    },
    alias_module=False,
)

if TYPE_CHECKING:  # traffik 1.x's names (`traffik._aliases`): each use warns
    FixedWindowStrategy = FixedWindow
    SlidingWindowLogStrategy = SlidingWindowLog
    SlidingWindowCounterStrategy = SlidingWindowCounter
    TokenBucketStrategy = TokenBucket
    TokenBucketWithDebtStrategy = TokenBucketWithDebt
    LeakyBucketStrategy = LeakyBucket
    LeakyBucketWithQueueStrategy = LeakyBucketWithQueue
    GCRAStrategy = GCRA
    TieredRateStrategy = TieredRate
    AdaptiveThrottleStrategy = AdaptiveThrottle
    PriorityQueueStrategy = PriorityQueue
    QuotaWithRolloverStrategy = QuotaWithRollover
    TimeOfDayStrategy = TimeOfDay
    CostBasedTokenBucketStrategy = CostBasedTokenBucket

__all__ = [
    "DEFAULT_STRATEGY",
    "GCRA",
    "NO_PARAMS",
    "AdaptiveThrottle",
    "Concurrency",
    "CostBasedTokenBucket",
    "FixedWindow",
    "LeakyBucket",
    "LeakyBucketWithQueue",
    "Params",
    "Priority",
    "PriorityQueue",
    "QuotaWithRollover",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "Step",
    "Strategy",
    "TieredRate",
    "TimeOfDay",
    "TokenBucket",
    "TokenBucketWithDebt",
]

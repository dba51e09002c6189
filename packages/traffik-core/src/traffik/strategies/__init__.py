"""Rate-limiting strategies: pure decisions over a small stored state.

Each strategy family lives in a module of its own, whose docstring states its exact rule
and its integer algorithm; see `traffik.strategies.base` for the contract every one of
them follows.
"""

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

"""traffik 1.x's ``traffik.strategies.custom``, kept as an alias (`traffik._aliases`).

Each strategy has a module of its own in traffik 2; import them from `traffik.strategies`.
"""

from typing import TYPE_CHECKING

from traffik._aliases import Moved, forward

if TYPE_CHECKING:
    from traffik.strategies import GCRA as GCRA
    from traffik.strategies import AdaptiveThrottle as AdaptiveThrottle
    from traffik.strategies import CostBasedTokenBucket as CostBasedTokenBucket
    from traffik.strategies import Priority as Priority
    from traffik.strategies import PriorityQueue as PriorityQueue
    from traffik.strategies import QuotaWithRollover as QuotaWithRollover
    from traffik.strategies import TieredRate as TieredRate
    from traffik.strategies import TimeOfDay as TimeOfDay

    GCRAStrategy = GCRA
    AdaptiveThrottleStrategy = AdaptiveThrottle
    CostBasedTokenBucketStrategy = CostBasedTokenBucket
    PriorityQueueStrategy = PriorityQueue
    QuotaWithRolloverStrategy = QuotaWithRollover
    TieredRateStrategy = TieredRate
    TimeOfDayStrategy = TimeOfDay

_STRATEGIES = (
    "GCRA",
    "TieredRate",
    "AdaptiveThrottle",
    "PriorityQueue",
    "QuotaWithRollover",
    "TimeOfDay",
    "CostBasedTokenBucket",
)

forward(
    __name__,
    globals(),
    {
        "Priority": Moved("traffik.strategies"),
        **{name: Moved("traffik.strategies") for name in _STRATEGIES},
        **{f"{name}Strategy": Moved("traffik.strategies", name=name) for name in _STRATEGIES},
    },
)

"""The strategies every backend section measures, each at a rate that never refuses.

Every check of a run is admitted and so writes (a refusal writes nothing and would flatter
the figures). `Concurrency` is measured as a slot taken and given back (``apply`` then
``refund``): a slot never given back would grow its state for the whole run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from traffik.backends.base import ThrottleBackend
from traffik.rates import Rate
from traffik.strategies import (
    GCRA,
    NO_PARAMS,
    AdaptiveThrottle,
    Concurrency,
    CostBasedTokenBucket,
    FixedWindow,
    LeakyBucket,
    LeakyBucketWithQueue,
    PriorityQueue,
    QuotaWithRollover,
    SlidingWindowCounter,
    SlidingWindowLog,
    Strategy,
    TieredRate,
    TimeOfDay,
    TokenBucket,
    TokenBucketWithDebt,
)

__all__ = [
    "CALLS_PER_CHECK",
    "PLENTY",
    "QUICK_STRATEGIES",
    "SHORT_PLENTY",
    "STRATEGIES",
    "check_call",
]

PLENTY: Final = Rate.parse("1000000000/hour")
"""A rate no run comes near: every check is admitted."""

SHORT_PLENTY: Final = Rate.parse("1000000000/second")
"""For `SlidingWindowLog`, whose state keeps every admitted millisecond of its window:
a one-second window keeps at most 1,000 entries, as a log of "1000/s" would."""

STRATEGIES: Final[dict[str, Strategy[Any]]] = {
    "FixedWindow": FixedWindow(),
    "SlidingWindowCounter": SlidingWindowCounter(),
    "SlidingWindowLog": SlidingWindowLog(),
    "TokenBucket": TokenBucket(),
    "TokenBucketWithDebt": TokenBucketWithDebt(max_debt=10),
    "LeakyBucket": LeakyBucket(),
    "LeakyBucketWithQueue": LeakyBucketWithQueue(),
    "GCRA": GCRA(),
    "TieredRate": TieredRate(),
    "AdaptiveThrottle": AdaptiveThrottle(),
    "PriorityQueue": PriorityQueue(max_queue_size=10**12),
    "QuotaWithRollover": QuotaWithRollover(),
    "TimeOfDay": TimeOfDay(),
    "CostBasedTokenBucket": CostBasedTokenBucket(),
    "Concurrency": Concurrency(),
}

QUICK_STRATEGIES: Final = ("FixedWindow", "TokenBucket", "SlidingWindowLog", "GCRA", "Concurrency")
"""What ``--quick`` measures on the network backends (every strategy runs in memory)."""


CALLS_PER_CHECK: Final = {"Concurrency": 2}
"""The backend calls one `check_call` check makes, where it is more than one: a
concurrency slot is taken, then given back."""


def check_call(
    backend: ThrottleBackend, name: str, key: str
) -> tuple[Callable[..., Awaitable[object]], tuple[object, ...]]:
    """``(call, args)`` for one admitted check of strategy ``name`` on ``key``."""
    strategy = STRATEGIES[name]
    rate = SHORT_PLENTY if name == "SlidingWindowLog" else PLENTY
    if name == "Concurrency":

        async def take_and_give_back() -> None:
            await backend.apply(key, strategy, PLENTY, 1, NO_PARAMS)
            await backend.refund(key, strategy, PLENTY, 1, NO_PARAMS)

        return take_and_give_back, ()
    return backend.apply, (key, strategy, rate, 1, NO_PARAMS)

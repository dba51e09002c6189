"""Every strategy the conformance suite checks: the strategy, its oracle, its inputs.

One `Case` per configuration worth exercising. The rates are small (limits up to 8) so
that random programs reach every branch — full buckets, refusals, window rollovers —
within a few dozen steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

from traffik import Rate
from traffik.strategies import (
    GCRA,
    AdaptiveThrottle,
    CostBasedTokenBucket,
    FixedWindow,
    LeakyBucket,
    LeakyBucketWithQueue,
    Priority,
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
from traffik.testing.oracles import (
    AdaptiveThrottleOracle,
    CostBasedTokenBucketOracle,
    FixedWindowOracle,
    GCRAOracle,
    LeakyBucketOracle,
    Oracle,
    PriorityQueueOracle,
    QuotaWithRolloverOracle,
    SlidingWindowCounterOracle,
    SlidingWindowLogOracle,
    TieredRateOracle,
    TimeOfDayOracle,
    TokenBucketOracle,
)

__all__ = ["CASES", "Case", "rates"]

HOUR = 3_600_000
PERIODS = [1, 3, 10, 250, 1000, 7000, 60_000]


def rates(
    periods: list[int] = PERIODS, limits: tuple[int, int] = (1, 8)
) -> st.SearchStrategy[Rate]:
    """Rates with a limit drawn from ``limits`` and a period (ms) from ``periods``."""
    return st.builds(
        lambda limit, period: Rate(limit=limit, milliseconds=period),
        st.integers(*limits),
        st.sampled_from(periods),
    )


NO_PARAMS: st.SearchStrategy[Mapping[str, object]] = st.just({})


@dataclass(frozen=True)
class Case:
    """A strategy, how to build its oracle for a rate, and what to feed it.

    ``oracle(rate)`` builds a fresh, independent model of the strategy for one client (see
    `traffik.testing.oracles`); ``rates`` and ``params`` are hypothesis strategies drawing
    the rate of each example and the params of each request.
    """

    id: str
    strategy: Strategy[Any]
    oracle: Callable[[Rate], Oracle]
    rates: st.SearchStrategy[Rate] = field(default_factory=rates)
    params: st.SearchStrategy[Mapping[str, object]] = NO_PARAMS


TIERS: dict[str, float | int | Fraction] = {
    "free": 1,
    "premium": 2.5,
    "enterprise": Fraction(10, 3),
}
TIME_WINDOWS: tuple[tuple[int, int, float | int | Fraction], ...] = (
    (0, 6, 0.5),
    (6, 12, 1),
    (9, 13, 3.0),  # overlaps the one before: the first containing an hour wins
    (12, 18, 2.5),
    (20, 23, Fraction(4, 3)),
)  # hours 18, 19 and 23 are not covered: multiplier 1

CASES = [
    Case("fixed_window", FixedWindow(), FixedWindowOracle),
    Case("sliding_window_log", SlidingWindowLog(), SlidingWindowLogOracle),
    Case("sliding_window_counter", SlidingWindowCounter(), SlidingWindowCounterOracle),
    Case("token_bucket", TokenBucket(), TokenBucketOracle),
    Case(
        "token_bucket_burst_3",
        TokenBucket(burst_size=3),
        lambda rate: TokenBucketOracle(rate, burst_size=3),
    ),
    Case(
        "token_bucket_with_debt",
        TokenBucketWithDebt(burst_size=2, max_debt=3),
        lambda rate: TokenBucketOracle(rate, burst_size=2, debt=3),
    ),
    Case("leaky_bucket", LeakyBucket(), LeakyBucketOracle),
    Case(
        "leaky_bucket_with_queue",
        LeakyBucketWithQueue(),
        lambda rate: LeakyBucketOracle(rate, queue=True),
    ),
    Case(
        "leaky_bucket_with_queue_of_4",
        LeakyBucketWithQueue(queue_size=4),
        lambda rate: LeakyBucketOracle(rate, queue_size=4, queue=True),
    ),
    Case("gcra", GCRA(), GCRAOracle),
    Case(
        "gcra_tolerance_250ms",
        GCRA(burst_tolerance_ms=250),
        lambda rate: GCRAOracle(rate, tolerance_ms=250),
    ),
    Case(
        "tiered_rate",
        TieredRate(tier_multipliers=TIERS),
        lambda rate: TieredRateOracle(rate, multipliers=dict(TIERS)),
        params=st.fixed_dictionaries(
            {"tier": st.sampled_from(["free", "premium", "enterprise", "platinum", None])}
        ),
    ),
    Case(
        "adaptive_throttle",
        AdaptiveThrottle(),
        AdaptiveThrottleOracle,
        rates=rates(limits=(1, 30)),
    ),
    Case(
        "adaptive_throttle_steep",
        AdaptiveThrottle(load_threshold=0.5, reduction_factor=0.5, recovery_rate=0.25),
        lambda rate: AdaptiveThrottleOracle(
            rate, load_threshold=0.5, reduction_factor=0.5, recovery_rate=0.25
        ),
        rates=rates(limits=(1, 30)),
    ),
    Case(
        "priority_queue",
        PriorityQueue(max_queue_size=6),  # below some limits, above others
        lambda rate: PriorityQueueOracle(rate, max_queue_size=6),
        params=st.fixed_dictionaries(
            {"priority": st.sampled_from([*Priority, 1, 4, "high", "Critical", "urgent", 0, None])}
        ),
    ),
    Case(
        "quota_with_rollover",
        QuotaWithRollover(rollover_percentage=0.75, max_rollover=3),
        lambda rate: QuotaWithRolloverOracle(rate, percentage=0.75, max_rollover=3),
    ),
    Case(
        "time_of_day",
        TimeOfDay(time_windows=TIME_WINDOWS, timezone_offset=-5),
        lambda rate: TimeOfDayOracle(rate, windows=TIME_WINDOWS, offset_hours=-5),
        rates=rates(periods=[250, 60_000, 2_700_000, HOUR, 7 * HOUR]),
    ),
    Case("cost_based_token_bucket", CostBasedTokenBucket(), CostBasedTokenBucketOracle),
    Case(
        "cost_based_token_bucket_short_memory",
        CostBasedTokenBucket(burst_size=6, cost_window=3, min_refill_rate=0.3),
        lambda rate: CostBasedTokenBucketOracle(
            rate, burst_size=6, cost_window=3, min_refill_rate=0.3
        ),
    ),
]

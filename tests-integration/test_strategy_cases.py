"""Named numeric cases for the strategies, on every backend, on a manual clock.

Each case states its numbers: what is admitted, when, and what the client is told. The
scripted loads write down the exact count admitted per window.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from traffik import (
    GCRA,
    AdaptiveThrottle,
    CostBasedTokenBucket,
    Decision,
    FixedWindow,
    LeakyBucket,
    LeakyBucketWithQueue,
    Limiter,
    ManualClock,
    Priority,
    PriorityQueue,
    QuotaWithRollover,
    SlidingWindowCounter,
    SlidingWindowLog,
    Strategy,
    TokenBucket,
)

MINUTE = 60_000
T0 = 1_800_000_000_000 - 1_800_000_000_000 % (24 * 3_600_000)  # midnight UTC, a whole day


class Client:
    """One client of one limiter, with the clock in whole milliseconds from ``T0``."""

    def __init__(self, limiter: Limiter, clock: ManualClock) -> None:
        self.limiter = limiter
        self.clock = clock

    async def hit(
        self, at_ms: int, cost: int = 1, params: Mapping[str, object] | None = None
    ) -> Decision:
        self.clock.set((T0 + at_ms) / 1000)
        return await self.limiter.decide("client", cost=cost, params=params)

    async def allowed(self, times_ms: Sequence[int], cost: int = 1) -> list[bool]:
        return [(await self.hit(at, cost)).allowed for at in times_ms]

    async def admitted(
        self, at_ms: int, count: int, cost: int = 1, params: Mapping[str, object] | None = None
    ) -> int:
        """Send ``count`` requests at one instant; how many pass."""
        return sum([(await self.hit(at_ms, cost, params)).allowed for _ in range(count)])


@pytest.fixture
def client_for(make_backend: Any) -> Any:
    """Builds a client on a fresh backend (and a limiter uid of its own: backends of one
    test may share a namespace)."""
    uids = itertools.count()

    async def build(rate: str, strategy: Strategy[Any]) -> Client:
        clock = ManualClock(T0 / 1000)
        backend = await make_backend(clock)
        limiter = Limiter(f"cases-{next(uids)}", rate=rate, strategy=strategy, backend=backend)
        return Client(limiter, clock)

    return build


async def test_two_per_second_admits_exactly_two_per_aligned_second(client_for: Any) -> None:
    client = await client_for("2/s", FixedWindow())
    assert await client.allowed([900, 950, 990, 1000, 1500, 1999, 2000]) == [
        True, True, False, True, True, False, True,
    ]  # fmt: skip
    # A hit every 100 ms for three seconds: exactly 2 in each aligned second.
    client = await client_for("2/s", FixedWindow())
    flags = await client.allowed(range(10_000, 13_000, 100))
    assert [sum(flags[i : i + 10]) for i in range(0, 30, 10)] == [2, 2, 2]


async def test_window_rollover(client_for: Any) -> None:
    fixed = await client_for("5/10s", FixedWindow())
    assert await fixed.admitted(9_999, 6) == 5
    refused = await fixed.hit(9_999)
    assert (refused.retry_after, refused.reset_after) == (0.001, 0.001)
    assert await fixed.admitted(10_000, 6) == 5

    # The sliding counter weighs the previous window: 5 used in [0, 10 s); at 12.5 s the
    # estimate is 5 * 0.75 = 3.75, so 1 more passes; at 14 s (3.0) 2 pass in all.
    counter = await client_for("5/10s", SlidingWindowCounter())
    assert await counter.admitted(9_999, 6) == 5
    assert await counter.admitted(12_500, 3) == 1
    refused = await counter.hit(12_500)
    assert refused.retry_after == 1.5  # at 14 s: 5 * 0.6 + 1 + 1 = 5
    assert await counter.admitted(14_000, 3) == 1

    # The log is exact: the 5 hits at 9.999 s leave at 19.999 s, not at a window edge.
    log = await client_for("5/10s", SlidingWindowLog())
    assert await log.admitted(9_999, 6) == 5
    assert await log.admitted(19_998, 1) == 0
    assert (await log.hit(19_998)).retry_after == 0.001
    assert await log.admitted(19_999, 6) == 5


async def test_gcra_tolerance_and_cost(client_for: Any) -> None:
    # "10/s" is one unit per 100 ms; 400 ms of tolerance admits a burst of 5.
    gcra = await client_for("10/s", GCRA(burst_tolerance_ms=400))
    first = await gcra.hit(0)
    assert (first.limit, first.remaining) == (5, 4)
    assert await gcra.admitted(0, 5) == 4
    refused = await gcra.hit(0)
    assert (refused.allowed, refused.retry_after) == (False, 0.1)
    # Cost is honoured: at 250 ms, 2.5 units have drained; 3 fit, 4 do not.
    assert not (await gcra.hit(250, cost=3)).allowed
    assert (await gcra.hit(300, cost=3)).allowed
    too_big = await gcra.hit(10_000, cost=6)  # more than the burst: never
    assert (too_big.allowed, too_big.retry_after) == (False, math.inf)
    # Without tolerance, a cost of 2 never fits either (1 + 0 / 100 = 1 unit at most).
    strict = await client_for("10/s", GCRA())
    assert math.isinf((await strict.hit(0, cost=2)).retry_after)


async def test_token_bucket_refills_to_exactly_its_capacity(client_for: Any) -> None:
    bucket = await client_for("10/s", TokenBucket(burst_size=5))
    assert await bucket.admitted(0, 6) == 5
    after_an_hour = await bucket.hit(3_600_000)
    assert (after_an_hour.limit, after_an_hour.remaining) == (5, 4)
    assert await bucket.admitted(3_600_000, 5) == 4


async def test_ten_per_second_with_burst_one(client_for: Any) -> None:
    bucket = await client_for("10/s", TokenBucket(burst_size=1))
    flags = await bucket.allowed(range(0, 1000, 25))  # a hit every 25 ms for a second
    assert sum(flags) == 10
    assert flags[:8] == [True, False, False, False, True, False, False, False]


async def test_adaptive_throttle_at_100_per_minute(client_for: Any) -> None:
    adaptive = await client_for("100/min", AdaptiveThrottle())
    load = [200] * 6 + [10, 10, 10, 200]
    admitted = [await adaptive.admitted(i * MINUTE, count) for i, count in enumerate(load)]
    # 100 → 60 → 36 → floor 30 under load; then +10 a minute once it eases.
    assert admitted == [100, 60, 36, 30, 30, 30, 10, 10, 10, 60]


async def test_priority_queue_sheds_lower_priorities_first(client_for: Any) -> None:
    queue = await client_for("100/min", PriorityQueue())
    low = await queue.admitted(0, 150, params={"priority": Priority.LOW})
    critical = await queue.admitted(0, 50, params={"priority": Priority.CRITICAL})
    assert (low, critical) == (100, 50)

    # Round-robin in the next minute: LOW stops at 25, NORMAL at 34, HIGH at 50.
    admitted = dict.fromkeys(Priority, 0)
    for _ in range(60):
        for priority in Priority:
            decision = await queue.hit(MINUTE, params={"priority": priority})
            admitted[priority] += decision.allowed
    assert list(admitted.values()) == [25, 34, 50, 60]

    # max_queue_size caps the window's total over all priorities.
    capped = await client_for("100/min", PriorityQueue(max_queue_size=120))
    admitted = dict.fromkeys(Priority, 0)
    for _ in range(60):
        for priority in Priority:
            decision = await capped.hit(0, params={"priority": priority.name.lower()})
            admitted[priority] += decision.allowed
    assert list(admitted.values()) == [25, 32, 32, 31]


async def test_quota_with_rollover(client_for: Any) -> None:
    quota = await client_for("100/min", QuotaWithRollover())
    load = [40, 200, 200, 0, 200]
    admitted = [await quota.admitted(i * MINUTE, count) for i, count in enumerate(load)]
    # 60 unused carry 30; a minute without requests carries nothing into the next.
    assert admitted == [40, 130, 100, 0, 100]
    assert (await quota.hit(MINUTE * 5)).limit == 100

    capped = await client_for("100/min", QuotaWithRollover(rollover_percentage=1, max_rollover=20))
    assert [await capped.admitted(i * MINUTE, n) for i, n in enumerate([0, 1, 200])] == [0, 1, 120]


async def test_leaky_bucket_with_queue_spaces_requests(client_for: Any) -> None:
    queue = await client_for("10/s", LeakyBucketWithQueue())
    decisions = [await queue.hit(0) for _ in range(12)]
    assert [d.delay for d in decisions if d.allowed] == [i / 10 for i in range(10)]
    assert [(d.allowed, d.retry_after) for d in decisions[10:]] == [(False, 0.1)] * 2

    # 4 requests every 100 ms for 3 s (40/s against 10/s): the queue fills in the first
    # second, then one request passes per 100 ms, each waiting at most 0.9 s.
    steady = await client_for("10/s", LeakyBucketWithQueue())
    admitted = [0, 0, 0]
    longest = 0.0
    for tick in range(30):
        for _ in range(4):
            decision = await steady.hit(5_000 + tick * 100)
            admitted[tick // 10] += decision.allowed
            longest = max(longest, decision.delay)
    assert admitted == [19, 10, 10]
    assert longest == 0.9

    small = await client_for("10/s", LeakyBucketWithQueue(queue_size=3))
    assert [d.delay for d in [await small.hit(0) for _ in range(3)]] == [0.0, 0.1, 0.2]
    assert not (await small.hit(0)).allowed


async def test_leaky_bucket_meter_admits_a_burst_then_the_rate(client_for: Any) -> None:
    meter = await client_for("10/s", LeakyBucket())
    assert await meter.admitted(0, 15) == 10
    assert sum(await meter.allowed(range(50, 1050, 50))) == 10  # one per 100 ms


async def test_cost_based_token_bucket_slows_after_costly_requests(client_for: Any) -> None:
    costly = await client_for("100/min", CostBasedTokenBucket())
    per_minute = [await costly.admitted(i * MINUTE, 30, cost=4) for i in range(4)]
    # Cost 4 halves the refill (the 0.5 floor): 50 tokens a minute, 12 or 13 requests.
    assert per_minute == [25, 12, 13, 12]

    plain = await client_for("100/min", TokenBucket())
    assert [await plain.admitted(i * MINUTE, 30, cost=4) for i in range(4)] == [25] * 4

    # Cheap requests keep the full refill rate.
    cheap = await client_for("100/min", CostBasedTokenBucket())
    assert [await cheap.admitted(i * MINUTE, 120) for i in range(3)] == [100, 100, 100]

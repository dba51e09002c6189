"""Several limits on one request: consumed in order, refunded when a later one refuses."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from traffik import Limiter, ManualClock, Rate, hit_all
from traffik.backends.base import Hit
from traffik.strategies import NO_PARAMS, FixedWindow, TokenBucket

if TYPE_CHECKING:
    from conftest import BackendFactory

WINDOW = FixedWindow()
PER_MINUTE = Hit("client:per-minute", WINDOW, Rate.parse("5/min"), 1, NO_PARAMS)
PER_HOUR = Hit("client:per-hour", WINDOW, Rate.parse("2/h"), 1, NO_PARAMS)
BUCKET = Hit("client:bucket", TokenBucket(), Rate.parse("4/min"), 1, NO_PARAMS)


async def remaining(backend_hit: Hit, backends: BackendFactory) -> int:
    backend = await backends()
    decision = await backend.peek(*backend_hit)
    return decision.remaining + 1 if decision.allowed else decision.remaining


async def test_all_allowed_consumes_every_limit(backends: BackendFactory) -> None:
    backend = await backends()
    decisions = await backend.apply_many([PER_MINUTE, PER_HOUR, BUCKET])
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining for d in decisions] == [4, 1, 3]


async def test_a_refusal_refunds_the_limits_consumed_before_it(backends: BackendFactory) -> None:
    backend = await backends()
    for _ in range(2):
        assert all(d.allowed for d in await backend.apply_many([PER_MINUTE, BUCKET, PER_HOUR]))
    # The hourly limit is spent: the next request consumes the first two, then refunds them.
    decisions = await backend.apply_many([PER_MINUTE, BUCKET, PER_HOUR])
    assert [d.allowed for d in decisions] == [True, True, False]
    assert await remaining(PER_MINUTE, backends) == 3
    assert await remaining(BUCKET, backends) == 2
    assert await remaining(PER_HOUR, backends) == 0


async def test_limits_after_the_refusing_one_are_only_peeked(backends: BackendFactory) -> None:
    backend = await backends()
    for _ in range(2):
        await backend.apply(*PER_HOUR)
    decisions = await backend.apply_many([PER_HOUR, PER_MINUTE, BUCKET])
    assert [d.allowed for d in decisions] == [False, True, True]
    assert [d.remaining for d in decisions] == [0, 4, 3]  # what they would leave...
    assert await remaining(PER_MINUTE, backends) == 5  # ...but nothing was taken
    assert await remaining(BUCKET, backends) == 4


async def test_the_same_key_twice_sees_its_own_first_hit(backends: BackendFactory) -> None:
    backend = await backends()
    for _ in range(4):
        await backend.apply(*PER_MINUTE)
    # One unit left: the first use takes it, the second refuses, the first is refunded.
    decisions = await backend.apply_many([PER_MINUTE, PER_MINUTE])
    assert [d.allowed for d in decisions] == [True, False]
    assert await remaining(PER_MINUTE, backends) == 1


async def test_concurrent_multi_limit_requests_never_overrun_any_limit(
    backends: BackendFactory,
) -> None:
    # Requests meet a 10/min and then a 5/h limit. Whatever interleaves, exactly 5 pass
    # (only the last limit admits), and every refusal's units come back to the first.
    instances = [await backends() for _ in range(4)]
    first = Hit("burst:first", WINDOW, Rate.parse("10/min"), 1, NO_PARAMS)
    last = Hit("burst:last", WINDOW, Rate.parse("5/h"), 1, NO_PARAMS)
    results = await asyncio.gather(*(instances[i % 4].apply_many([first, last]) for i in range(60)))
    admitted = sum(all(d.allowed for d in decisions) for decisions in results)
    assert admitted == 5
    assert await remaining(first, backends) == 10 - 5
    assert await remaining(last, backends) == 0


async def test_hit_all_on_memcached_is_all_or_nothing(backends: BackendFactory) -> None:
    backend = await backends()
    burst = Limiter("burst", rate="3/min", backend=backend)
    daily = Limiter("daily", rate="1/d", backend=backend)
    first = await hit_all([(burst, "alice"), (daily, "alice")])
    second = await hit_all([(burst, "alice"), (daily, "alice")])
    assert [d.allowed for d in first] == [True, True]
    assert [d.allowed for d in second] == [True, False]
    stat = await burst.stat("alice")
    assert stat is not None
    assert stat.remaining == 2  # the refused request's unit came back


async def test_a_refund_across_a_window_boundary_goes_back_to_its_own_window(
    backends: BackendFactory, clock: ManualClock
) -> None:
    # The per-minute limit is consumed 1 ms before a minute ends; the hourly one refuses
    # 1 ms after. The unit goes back to the minute it was counted in: the next minute's
    # count (3, from another client of the key) must not lose it.
    boundary = (int(clock() * 1000) // 60_000 + 1) * 60_000
    after = ManualClock((boundary + 1) / 1000)
    other = await backends(clock=after)
    for _ in range(3):
        assert (await other.apply(*PER_MINUTE)).allowed
    for _ in range(2):
        assert (await other.apply(*PER_HOUR)).allowed  # spent for this hour

    reads = iter([boundary - 1])  # the clock's first read, then 1 ms past the boundary

    def stepping() -> float:
        return next(reads, boundary + 1) / 1000

    backend = await backends(clock=stepping)
    decisions = await backend.apply_many([PER_MINUTE, PER_HOUR])
    assert [d.allowed for d in decisions] == [True, False]
    assert (await other.peek(*PER_MINUTE)).remaining == 5 - 3 - 1  # untouched: 3 used
    before = ManualClock((boundary - 1) / 1000)
    assert (await (await backends(clock=before)).peek(*PER_MINUTE)).remaining == 4  # given back

"""Decisions on Redis: the same as the in-memory backend's, atomic, on the server's clock."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import redis.asyncio as redis

from traffik import (
    Decision,
    FixedWindow,
    InMemoryBackend,
    Limiter,
    ManualClock,
    Rate,
    TokenBucket,
    hit_all,
)
from traffik.backends.base import Hit
from traffik.backends.redis import RedisBackend
from traffik.strategies import NO_PARAMS
from traffik.strategies.base import IntTupleCodec, Params, Step

BackendFactory = Callable[..., Awaitable[RedisBackend]]

HOUR = Rate.parse("100/hour")
START = 1_700_000_000.0 + 1_800  # half-way through an hour


class CostlyFixedWindow(FixedWindow):
    """A user's subclass overriding decide: it must not run the native FixedWindow script."""

    def decide(
        self, state: tuple[int, int] | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[tuple[int, int]]:
        return super().decide(state, now, rate, cost * 2, params)


@dataclass(frozen=True)
class CountForever(IntTupleCodec):
    """A user's own strategy: at most ``limit`` units, ever (well, for a day)."""

    name: ClassVar[str] = "count_forever"

    def decide(
        self, state: tuple[int, ...] | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[tuple[int, ...]]:
        used = state[0] if state else 0
        if used + cost > rate.limit:
            return state, Decision(False, rate.limit, rate.limit - used, 86_400, math.inf), 1
        used += cost
        return (used,), Decision(True, rate.limit, rate.limit - used, 86_400, 0.0), 86_400_000

    def refund(
        self, state: tuple[int, ...] | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[tuple[int, ...] | None, int]:
        if state is None:
            return None, 1
        return (max(state[0] - cost, 0),), 86_400_000


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_operation_decides_exactly_as_in_memory(
    make_redis_backend: BackendFactory, seed: int
) -> None:
    """A random mix of apply, peek, refund and apply_many, on native and generic paths."""
    rng = random.Random(seed)
    clock = ManualClock(START)
    memory = InMemoryBackend(clock=clock)
    backend = await make_redis_backend(clock=clock)
    strategies: list[Any] = [
        FixedWindow(),
        TokenBucket(),
        TokenBucket(burst_size=3),
        CostlyFixedWindow(),
        CountForever(),
    ]
    rates = [Rate.parse("5/s"), Rate.parse("3/2s"), Rate.parse("10/min"), Rate.parse("7/1500ms")]

    def random_hit() -> Hit:
        strategy_index, rate_index = rng.randrange(len(strategies)), rng.randrange(len(rates))
        # One key per (strategy, rate): a key's TTL is its strategy's and rate's.
        key = f"{rng.choice('ab')}:{strategy_index}:{rate_index}"
        cost = rng.choice([1, 1, 1, 2, 4, 12])
        return Hit(key, strategies[strategy_index], rates[rate_index], cost, NO_PARAMS)

    for step in range(400):
        roll = rng.random()
        if roll < 0.5:
            hit = random_hit()
            expected: object = await memory.apply(*hit)
            actual: object = await backend.apply(*hit)
        elif roll < 0.65:
            hit = random_hit()
            expected, actual = await memory.peek(*hit), await backend.peek(*hit)
        elif roll < 0.75:
            hit = random_hit()
            await memory.refund(*hit)
            await backend.refund(*hit)
            expected = actual = None
        else:
            hits = [random_hit() for _ in range(rng.randint(1, 3))]
            expected, actual = await memory.apply_many(hits), await backend.apply_many(hits)
        assert actual == expected, f"step {step}"
        clock.advance(rng.choice([0.0, 0.0, 0.001, 0.05, 0.3, 1.7]))


async def test_without_a_clock_windows_follow_the_server_time(
    make_redis_backend: BackendFactory, raw_redis: redis.Redis
) -> None:
    backend = await make_redis_backend()
    day = Rate.parse("10/d")
    seconds, micros = await raw_redis.time()
    before = seconds * 1000 + micros // 1000
    decision = await backend.apply("k", FixedWindow(), day, 1, NO_PARAMS)
    seconds, micros = await raw_redis.time()
    after = seconds * 1000 + micros // 1000
    ends = {(now // day.period_ms + 1) * day.period_ms for now in (before, after)}
    # reset_after = (end of the server's current window - server now) / 1000
    assert any(
        (end - after) / 1000 <= decision.reset_after <= (end - before) / 1000 for end in ends
    )


async def test_an_injected_clock_is_used_instead(make_redis_backend: BackendFactory) -> None:
    clock = ManualClock(1_000.25)  # 1970: far from the server's time
    backend = await make_redis_backend(clock=clock)
    decision = await backend.apply("k", FixedWindow(), Rate.parse("10/s"), 1, NO_PARAMS)
    assert decision.reset_after == 0.75


async def test_several_limits_refused_by_the_tighter_one_consume_none_of_the_looser(
    make_redis_backend: BackendFactory,
) -> None:
    backend = await make_redis_backend(clock=ManualClock(START))
    tight = Limiter("tight", rate="2/min", backend=backend)
    loose = Limiter("loose", rate="10/min", backend=backend, strategy=TokenBucket())
    for _ in range(2):
        assert all(d.allowed for d in await hit_all([(tight, "alice"), (loose, "alice")]))
    refused = await hit_all([(tight, "alice"), (loose, "alice")])
    assert [d.allowed for d in refused] == [False, True]
    stat = await loose.stat("alice")
    assert stat is not None
    assert stat.remaining == 8


async def test_a_key_listed_twice_is_decided_against_its_own_pending_state(
    make_redis_backend: BackendFactory,
) -> None:
    backend = await make_redis_backend(clock=ManualClock(START))
    rate = Rate.parse("3/min")
    hits = [
        Hit("k", FixedWindow(), rate, 2, NO_PARAMS),
        Hit("k", FixedWindow(), rate, 2, NO_PARAMS),
    ]
    assert [d.allowed for d in await backend.apply_many(hits)] == [True, False]
    assert (await backend.peek("k", FixedWindow(), rate, 1, NO_PARAMS)).remaining == 2


async def test_a_subclass_overriding_decide_is_not_run_as_the_builtin(
    make_redis_backend: BackendFactory,
) -> None:
    backend = await make_redis_backend(clock=ManualClock(START))
    decisions = [
        await backend.apply("k", CostlyFixedWindow(), HOUR, 1, NO_PARAMS) for _ in range(51)
    ]
    assert sum(d.allowed for d in decisions) == 50  # each hit costs 2 in the override


async def test_a_strategy_of_its_own_is_exact_under_concurrency(
    make_redis_backend: BackendFactory,
) -> None:
    backend = await make_redis_backend()
    rate = Rate.parse("40/d")
    decisions = await asyncio.gather(
        *(backend.apply("k", CountForever(), rate, 1, NO_PARAMS) for _ in range(400))
    )
    assert sum(d.allowed for d in decisions) == 40


async def test_peek_stores_nothing_and_delete_forgets(
    make_redis_backend: BackendFactory, raw_redis: redis.Redis, namespace: str
) -> None:
    backend = await make_redis_backend(clock=ManualClock(START))
    for strategy in (FixedWindow(), CountForever()):
        assert (await backend.peek("p", strategy, HOUR, 1, NO_PARAMS)).remaining == 99
    assert await raw_redis.exists(f"{namespace}:p") == 0
    await backend.apply("k", FixedWindow(), HOUR, 5, NO_PARAMS)
    assert await raw_redis.get(f"{namespace}:k") == FixedWindow().encode((472_222, 5))
    await backend.delete("k")
    assert (await backend.peek("k", FixedWindow(), HOUR, 1, NO_PARAMS)).remaining == 99


async def test_refund_gives_cost_back(make_redis_backend: BackendFactory) -> None:
    backend = await make_redis_backend(clock=ManualClock(START))
    for strategy in (FixedWindow(), TokenBucket(), CountForever()):
        key = strategy.name
        await backend.apply(key, strategy, HOUR, 10, NO_PARAMS)
        await backend.refund(key, strategy, HOUR, 4, NO_PARAMS)
        assert (await backend.peek(key, strategy, HOUR, 1, NO_PARAMS)).remaining == 93, key


async def test_an_unlimited_rate_stores_nothing(
    make_redis_backend: BackendFactory, raw_redis: redis.Redis, namespace: str
) -> None:
    backend = await make_redis_backend()
    decision = await backend.apply("k", FixedWindow(), Rate(), 1, NO_PARAMS)
    assert decision.allowed
    assert not decision.limited
    assert await raw_redis.exists(f"{namespace}:k") == 0


async def test_every_key_written_expires(
    make_redis_backend: BackendFactory, raw_redis: redis.Redis, namespace: str
) -> None:
    for clock in (None, ManualClock(START)):
        backend = await make_redis_backend(clock=clock, namespace=f"{namespace}-{clock is None}")
        tight = Rate.parse("3/2s")
        strategies = (
            FixedWindow(),
            TokenBucket(),
            TokenBucket(burst_size=1),
            CostlyFixedWindow(),
            CountForever(),
        )
        for strategy in strategies:
            for rate in (HOUR, tight, Rate.parse("1/ms")):
                key = f"{strategy.name}:{type(strategy).__name__}:{rate}"
                for _ in range(4):
                    await backend.apply(key, strategy, rate, 1, NO_PARAMS)
                await backend.refund(key, strategy, rate, 1, NO_PARAMS)
                await backend.apply_many(
                    [
                        Hit(key, strategy, rate, 1, NO_PARAMS),
                        Hit(key + "+", strategy, rate, 1, NO_PARAMS),
                    ]
                )
    keys = [key async for key in raw_redis.scan_iter(match=f"{namespace}-*", count=1000)]
    assert len(keys) >= 20
    ttls = [await raw_redis.pttl(key) for key in keys]
    # A key whose 1 ms TTL ran out between the scan and PTTL is gone (-2): fine. -1 is not.
    assert all(ttl > 0 or ttl == -2 for ttl in ttls), dict(zip(keys, ttls, strict=True))
    assert sum(ttl > 0 for ttl in ttls) >= 20


async def test_clear_deletes_its_namespace_only(
    make_redis_backend: BackendFactory, raw_redis: redis.Redis, namespace: str
) -> None:
    mine = await make_redis_backend(namespace=f"{namespace}*[x]")  # glob characters are literal
    other = await make_redis_backend(namespace=f"{namespace}")
    for index in range(1_200):  # several SCAN batches
        await mine.apply(f"k{index}", FixedWindow(), HOUR, 1, NO_PARAMS)
    await other.apply("k", FixedWindow(), HOUR, 1, NO_PARAMS)
    await mine.clear()
    assert [key async for key in raw_redis.scan_iter(match=f"{namespace}*")] == [
        f"{namespace}:k".encode()
    ]


async def test_closing_keeps_the_counters(make_redis_backend: BackendFactory) -> None:
    first = await make_redis_backend(clock=ManualClock(START))
    await first.apply("k", FixedWindow(), HOUR, 30, NO_PARAMS)
    await first.close()
    second = await make_redis_backend(clock=ManualClock(START))
    assert (await second.peek("k", FixedWindow(), HOUR, 1, NO_PARAMS)).remaining == 69

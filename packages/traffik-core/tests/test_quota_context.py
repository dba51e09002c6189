"""Quota contexts (`traffik.quota_context`) on core throttles: queueing, aggregation,
when a context applies, nesting, and the all-or-nothing apply (beyond 1.x).

The 1.x patterns on HTTP throttles, written from the 1.x docs, are in traffik-fastapi's
test_quota_1x.py; on Redis, in tests-integration/test_quota_contexts.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from traffik import (
    BackendError,
    ConfigurationError,
    Decision,
    InMemoryBackend,
    Limiter,
    ManualClock,
    Rate,
    RateLimitExceeded,
)
from traffik.backends.base import Hit
from traffik.exceptions import QuotaAppliedError, QuotaCancelledError, QuotaError
from traffik.pipeline import decide
from traffik.quota_context import QuotaContext
from traffik.strategies import Params, Strategy


class CountingBackend(InMemoryBackend):
    """The real in-memory backend, recording which calls it gets."""

    def __init__(self, namespace: str, clock: ManualClock) -> None:
        super().__init__(namespace, clock=clock)
        self.calls: list[str] = []

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        self.calls.append("apply")
        return await super().apply(key, strategy, rate, cost, params)

    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        self.calls.append(f"apply_many {len(hits)}")
        return await super().apply_many(hits)


class FlakyBackend(InMemoryBackend):
    """The real in-memory backend, whose first ``failures`` decisions raise."""

    def __init__(self, namespace: str, clock: ManualClock, failures: int) -> None:
        super().__init__(namespace, clock=clock, on_error="raise")
        self.failures = failures

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        if self.failures:
            self.failures -= 1
            raise BackendError("store down")
        return await super().apply(key, strategy, rate, cost, params)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000.0)


@pytest.fixture
def backend(clock: ManualClock) -> CountingBackend:
    return CountingBackend("quota", clock)


async def remaining(limiter: Limiter, key: str = "user") -> int:
    stat = await limiter.stat(key)
    assert stat is not None
    return stat.remaining


async def test_bound_context_consumes_the_aggregated_cost_on_exit(
    backend: CountingBackend,
) -> None:
    limiter = Limiter("reports", "50/hour", backend=backend)
    async with limiter.quota("user") as quota:
        await quota(cost=10)
        await quota(cost=5)
        assert repr(quota).startswith("<QuotaContext owner='reports' queued=1 state=active")
        assert (quota.queued_cost, quota.applied_cost, quota.active) == (15, 0, True)
        assert await remaining(limiter) == 50  # queued, not consumed
    assert (quota.applied_cost, quota.consumed, quota.active) == (15, True, False)
    assert await remaining(limiter) == 35
    assert backend.calls == ["apply"]  # one entry, one backend call


async def test_aggregation_follows_the_1x_rule(backend: CountingBackend) -> None:
    throttle = Limiter("a", "100/min", backend=backend)
    other = Limiter("b", "100/min", backend=backend)
    async with throttle.quota("user") as quota:
        await quota(cost=2)  # entry 1
        await quota(cost=3)  # entry 1: 5
        await quota()  # entry 1: 6 (the throttle's own cost)
        await quota(other)  # entry 2
        await quota(cost=1)  # entry 3: other broke the streak
        await quota(cost=1, context={"x": 1})  # entry 4: another context
        await quota(cost=0)  # nothing queued
        assert "queued=4" in repr(quota)
        assert quota.queued_cost == 9
    assert (await remaining(throttle), await remaining(other)) == (92, 99)


async def test_a_block_that_raises_consumes_nothing_by_default(
    backend: CountingBackend,
) -> None:
    limiter = Limiter("jobs", "10/min", backend=backend)
    quota = limiter.quota("user")

    async def block() -> None:
        async with quota:
            await quota(cost=5)
            raise RuntimeError("the work failed")

    with pytest.raises(RuntimeError):
        await block()
    assert (quota.consumed, quota.applied_cost) == (False, 0)
    assert await remaining(limiter) == 10
    assert backend.calls == []


@pytest.mark.parametrize(
    ("apply_on_error", "raised", "consumed"),
    [
        (True, RuntimeError, 5),
        ((ValueError,), ValueError, 5),
        ((ValueError,), RuntimeError, 0),
        (KeyError, KeyError, 5),
    ],
)
async def test_apply_on_error(
    backend: CountingBackend, apply_on_error: Any, raised: type[Exception], consumed: int
) -> None:
    limiter = Limiter("jobs", "10/min", backend=backend)
    quota = limiter.quota("user", apply_on_error=apply_on_error)

    async def block() -> None:
        async with quota:
            await quota(cost=5)
            raise raised("the work failed")

    with pytest.raises(raised):
        await block()
    assert await remaining(limiter) == 10 - consumed
    assert quota.applied_cost == consumed


async def test_apply_on_exit_false_consumes_only_on_apply(backend: CountingBackend) -> None:
    limiter = Limiter("jobs", "10/min", backend=backend)
    async with limiter.quota("user", apply_on_exit=False) as quota:
        await quota(cost=5)
    assert (quota.active, await remaining(limiter)) == (True, 10)
    await quota.apply()
    await quota.apply()  # idempotent
    assert (quota.consumed, await remaining(limiter)) == (True, 5)
    with pytest.raises(QuotaAppliedError):
        await quota(cost=1)
    with pytest.raises(QuotaAppliedError):
        await quota.cancel()

    async with limiter.quota("user", apply_on_exit=False) as cancelled:
        await cancelled(cost=5)
        await cancelled.cancel()
        await cancelled.cancel()  # idempotent
    assert (cancelled.cancelled, cancelled.active, await remaining(limiter)) == (True, False, 5)
    with pytest.raises(QuotaCancelledError):
        await cancelled(cost=1)
    with pytest.raises(QuotaCancelledError):
        await cancelled.apply()


async def test_nested_contexts_merge_into_the_parent(backend: CountingBackend) -> None:
    limiter = Limiter("jobs", "10/min", backend=backend)
    async with limiter.quota("user") as parent:
        await parent(cost=2)
        async with parent.nested() as child:
            await child(cost=1)
            assert (child.is_nested, child.depth, child.is_bound) == (True, 1, True)
            assert parent.queued_cost == 3  # the child's entries count already
            async with child.quota() as grandchild:  # `quota` is 1.x's alias of `nested`
                await grandchild(cost=1)
                assert grandchild.depth == 2
        assert (child.consumed, await remaining(limiter)) == (True, 10)
        await parent(cost=1)

        async def failing_part() -> None:
            async with parent.nested() as failed:
                await failed(cost=5)
                raise RuntimeError("this part failed")

        with pytest.raises(RuntimeError):
            await failing_part()
        assert parent.queued_cost == 5  # the failed child added nothing
    assert (parent.applied_cost, await remaining(limiter)) == (5, 5)


async def test_merge_and_a_child_left_unapplied(backend: CountingBackend) -> None:
    limiter = Limiter("jobs", "10/min", backend=backend)
    async with limiter.quota("user") as parent:
        child = parent.nested(apply_on_exit=False)
        async with child:
            await child(cost=2)
        assert child.active  # not merged on exit: the parent's apply takes it
        other = parent.nested()
        await other(cost=1)
        other.merge()
        assert (other.consumed, parent.queued_cost) == (True, 3)
        with pytest.raises(QuotaAppliedError):
            other.merge()
    assert await remaining(limiter) == 7
    with pytest.raises(QuotaError, match="Only a nested context"):
        parent.merge()
    with pytest.raises(QuotaAppliedError):
        parent.nested()  # its entries would have nowhere to go


async def test_one_refusal_consumes_none_of_the_throttles(backend: CountingBackend) -> None:
    burst = Limiter("burst", "20/min", backend=backend)
    daily = Limiter("daily", "500/day", backend=backend)
    for _ in range(4):
        async with QuotaContext("user") as quota:
            await quota(burst, cost=5)
            await quota(daily, cost=5)
    assert backend.calls == ["apply_many 2"] * 4  # both limits in one atomic step
    quota = QuotaContext("user")

    async def block() -> None:
        async with quota:
            await quota(daily, cost=5)
            await quota(burst, cost=5)

    with pytest.raises(RateLimitExceeded) as refused:
        await block()
    assert refused.value.retry_after > 0
    assert (await remaining(burst), await remaining(daily)) == (0, 480)  # daily untouched
    assert (quota.consumed, quota.applied_cost) == (False, 0)
    assert [d.allowed for d in quota.decisions] == [True, False]


async def test_throttles_on_two_backends_are_given_back(clock: ManualClock) -> None:
    first = CountingBackend("first", clock)
    second = CountingBackend("second", clock)
    loose = Limiter("loose", "10/min", backend=first)
    tight = Limiter("tight", "1/min", backend=second)
    async with QuotaContext("user") as quota:
        await quota(loose)
        await quota(tight)

    async def block() -> None:
        async with QuotaContext("user") as quota:
            await quota(loose)
            await quota(tight)

    with pytest.raises(RateLimitExceeded):
        await block()
    assert (await remaining(loose), await remaining(tight)) == (9, 0)


async def test_thousands_of_concurrent_contexts_consume_exactly_the_limit(
    backend: CountingBackend,
) -> None:
    wide = Limiter("wide", "100/min", backend=backend)
    narrow = Limiter("narrow", "50/min", backend=backend)

    async def request() -> bool:
        try:
            async with QuotaContext("user") as quota:
                await quota(wide)
                await quota(narrow)
                await asyncio.sleep(0)  # the work: other contexts run meanwhile
        except RateLimitExceeded:
            return False
        return True

    results = await asyncio.gather(*(request() for _ in range(2000)))
    assert results.count(True) == 50
    # All-or-nothing: the 1950 refused requests consumed nothing of `wide`.
    assert (await remaining(wide), await remaining(narrow)) == (50, 0)


async def test_skip_handler_refuses_quietly(backend: CountingBackend) -> None:
    limiter = Limiter("jobs", "3/min", backend=backend)
    async with limiter.quota("user") as quota:
        await quota(cost=5, skip_handler=True)
    assert quota.consumed  # applied: the limit refused, nothing was consumed
    assert (quota.applied_cost, quota.decisions[0].allowed) == (0, False)
    assert await remaining(limiter) == 3


async def test_lock_settings_are_refused_naming_the_2x_way() -> None:
    limiter = Limiter("jobs", "3/min")
    for kwargs in ({"lock": True}, {"lock": "user:123:api_calls"}, {"lock_config": {"ttl": 30}}):
        with pytest.raises(ConfigurationError, match="traffik 2 takes no locks"):
            limiter.quota("user", **kwargs)
    parent = limiter.quota("user", lock=False)  # no lock: 1.x's meaning kept
    with pytest.raises(ConfigurationError, match="no locks"):
        parent.nested(lock="other_resource")
    assert parent.nested(lock=None, reentrant_lock=False).is_nested


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"apply_on_error": "yes"}, "apply_on_error must be"),
        ({"apply_on_error": ()}, "apply_on_error must be"),
        ({"apply_on_exit": 1}, "apply_on_exit must be"),
        ({"context": ["a"]}, "must be a mapping"),
    ],
)
def test_bad_settings_are_refused_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        QuotaContext("user", **kwargs)


async def test_bad_entries_are_refused(backend: CountingBackend) -> None:
    limiter = Limiter("jobs", "3/min", backend=backend)
    quota = QuotaContext("user")
    with pytest.raises(QuotaError, match="No throttle given"):
        await quota(cost=1)
    with pytest.raises(ConfigurationError, match="cost must be"):
        await quota(limiter, cost=-1)
    with pytest.raises(ConfigurationError, match="retry must be"):
        await quota(limiter, retry=-1)
    with pytest.raises(ConfigurationError, match="first argument is its throttle"):
        await quota(5)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="retry_on must be"):
        await quota(limiter, retry=1, retry_on=("TimeoutError",))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="backoff must be"):
        await quota(limiter, backoff=2.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="owner must be"):
        QuotaContext("user", owner="jobs")  # type: ignore[arg-type]


async def test_a_cost_function_is_resolved_at_apply(backend: CountingBackend) -> None:
    async def cost(key: str) -> int:
        return 4

    limiter = Limiter("jobs", "10/min", backend=backend, cost=cost)
    async with limiter.quota("user") as quota:
        await quota()
        await quota()  # a cost function: never aggregated
        assert ("queued=2" in repr(quota), quota.queued_cost) == (True, 2)  # an estimate
    assert (quota.applied_cost, await remaining(limiter)) == (8, 2)


async def test_check_and_stat(backend: CountingBackend) -> None:
    limiter = Limiter("jobs", "10/min", backend=backend)
    other = Limiter("other", "2/min", backend=backend)
    async with limiter.quota("user") as quota:
        await quota(cost=8)
        assert await quota.check(cost=10)
        assert not await quota.check(cost=11)
        stat = await quota.stat()
        assert stat is not None
        assert stat.remaining == 10
        await quota(other, cost=2)
    # Unbound, with no throttle: each queued entry.
    unbound = QuotaContext("user")
    await unbound(limiter, cost=2)
    assert await unbound.check()
    await unbound(other, cost=3)
    assert not await unbound.check()
    with pytest.raises(QuotaError):
        await unbound.stat()
    await unbound.cancel()


async def test_retry_decides_every_entry_again(clock: ManualClock) -> None:
    flaky = FlakyBackend("flaky", clock, failures=2)
    limiter = Limiter("jobs", "10/min", backend=flaky)
    attempts: list[int] = []

    def only_store_errors(info: Any) -> bool:
        attempts.append(info["attempt"])
        return isinstance(info["exception"], BackendError)

    async with limiter.quota("user") as quota:
        await quota(cost=3, retry=2, retry_on=only_store_errors, base_delay=0.0)
    assert (attempts, quota.applied_cost, await remaining(limiter)) == ([1, 2], 3, 7)

    flaky.failures = 1
    with pytest.raises(BackendError):
        async with limiter.quota("user") as quota:
            await quota(cost=3, retry=1, retry_on=(TimeoutError,), base_delay=0.0)
    assert await remaining(limiter) == 7


async def test_a_backend_raising_gives_back_what_another_consumed(clock: ManualClock) -> None:
    good = CountingBackend("good", clock)
    flaky = FlakyBackend("flaky", clock, failures=1)
    first = Limiter("first", "10/min", backend=good)
    second = Limiter("second", "10/min", backend=flaky)
    with pytest.raises(BackendError):
        await decide([(first, "user", None, None), (second, "user", None, None)])
    assert await remaining(first) == 10

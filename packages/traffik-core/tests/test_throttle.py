from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import Any

import pytest

from traffik import (
    EXEMPTED,
    NOT_LIMITED,
    BackendError,
    ConfigurationError,
    Decision,
    ErrorContext,
    ExemptedType,
    InMemoryBackend,
    LeakyBucketWithQueue,
    Limiter,
    ManualClock,
    Rate,
    RateLimitExceeded,
    Throttle,
    TokenBucket,
    hit_all,
)
from traffik.backends.base import Hit
from traffik.strategies import Params, Strategy


class CountingBackend(InMemoryBackend):
    """The real in-memory backend, counting how often it is asked."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls = 0

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        self.calls += 1
        return await super().apply(key, strategy, rate, cost, params)

    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        self.calls += 1
        return await super().apply_many(hits)


class BrokenBackend(InMemoryBackend):
    """A backend whose store is down."""

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        raise ConnectionError("store unreachable")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000.0)


async def test_limiter_hits_per_key(clock: ManualClock) -> None:
    limiter = Limiter("emails", rate="3/min", backend=InMemoryBackend(clock=clock))
    assert [(await limiter.decide("alice")).allowed for _ in range(4)] == [True, True, True, False]
    assert (await limiter.decide("bob")).allowed
    decision = await limiter.decide("alice")
    assert decision.retry_after == 20.0  # 1000 s is 40 s into its minute
    clock.advance(20.0)
    assert (await limiter.decide("alice")).allowed


async def test_limiter_acquire_raises_when_refused(clock: ManualClock) -> None:
    limiter = Limiter("jobs", rate="1/s", backend=InMemoryBackend(clock=clock))
    await limiter.acquire("q")
    with pytest.raises(RateLimitExceeded) as info:
        await limiter.acquire("q")
    assert info.value.retry_after == 1.0


async def test_peek_check_and_stat_consume_nothing(clock: ManualClock) -> None:
    limiter = Limiter("api", rate="5/min", backend=InMemoryBackend(clock=clock))
    await limiter.decide("k", cost=2)
    for _ in range(3):
        assert await limiter.check("k", cost=3)
        assert not await limiter.check("k", cost=4)
        stat = await limiter.stat("k")
        assert stat is not None
        assert (stat.limit, stat.remaining, stat.strategy) == (5, 3, "fixed_window")
        assert stat.key == "api:{k}:fixed_window"


async def test_short_circuits_never_touch_the_backend(clock: ManualClock) -> None:
    backend = CountingBackend(clock=clock)

    async def exempt(key: str) -> str | ExemptedType:
        return EXEMPTED if key == "admin" else key

    limited = Limiter("a", rate="1/s", backend=backend, identifier=exempt)
    unlimited = Limiter("b", rate=Rate(), backend=backend)

    assert await limited.decide("admin") is NOT_LIMITED
    assert await limited.decide("user", cost=0) is NOT_LIMITED
    assert await unlimited.decide("user") is NOT_LIMITED
    limited.disable()
    assert limited.is_disabled
    assert await limited.decide("user") is NOT_LIMITED
    assert await limited.peek("user") is NOT_LIMITED
    assert backend.calls == 0

    limited.enable()
    await limited.decide("user")
    assert backend.calls == 1


async def test_rate_cost_and_params_functions(clock: ManualClock) -> None:
    seen_params: list[Params] = []

    class Recording(TokenBucket):
        def decide(self, state: Any, now: int, rate: Rate, cost: int, params: Params) -> Any:
            seen_params.append(params)
            return super().decide(state, now, rate, cost, params)

    async def rate_for(key: str) -> str:
        return "10/s" if key.startswith("vip") else "2/s"

    async def cost_for(key: str) -> int:
        return 2

    async def params_for(key: str) -> Params:
        return {"tier": "vip" if key.startswith("vip") else "free"}

    limiter = Limiter(
        "api",
        rate=rate_for,
        cost=cost_for,
        params=params_for,
        strategy=Recording(),
        backend=InMemoryBackend(clock=clock),
    )
    assert [(await limiter.decide("free-1")).allowed for _ in range(2)] == [True, False]
    assert [(await limiter.decide("vip-1")).allowed for _ in range(6)] == [True] * 5 + [False]
    assert seen_params[0] == {"tier": "free"}
    assert seen_params[-1] == {"tier": "vip"}
    stat = await limiter.stat("vip-1")
    assert stat is not None
    assert stat.limit == 10


async def test_a_rate_function_returning_garbage_is_a_clear_error(clock: ManualClock) -> None:
    async def garbage(key: str) -> Any:
        return 42

    limiter = Limiter("api", rate=garbage, backend=InMemoryBackend(clock=clock))
    with pytest.raises(ConfigurationError, match="returned 42"):
        await limiter.decide("k")


async def test_negative_cost_is_refused(clock: ManualClock) -> None:
    with pytest.raises(ConfigurationError, match="-1"):
        Limiter("api", rate="1/s", cost=-1)
    limiter = Limiter("api", rate="1/s", backend=InMemoryBackend(clock=clock))
    with pytest.raises(ConfigurationError, match="-3"):
        await limiter.decide("k", cost=-3)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"rate": "5/w"}, "'5/w'"),
        ({"rate": 10}, "10"),
        ({"uid": ""}, "uid"),
        ({"uid": "a{b"}, "a{b"),
        ({"cost": 1.5}, "1.5"),
        ({"on_error": "ignore"}, "'ignore'"),
        ({"strategy": "fixed"}, "'fixed'"),
        ({"backend": "redis://"}, "redis://"),
    ],
)
def test_bad_configuration_fails_at_construction(kwargs: dict[str, Any], fragment: str) -> None:
    arguments: dict[str, Any] = {"uid": "api", "rate": "1/s", **kwargs}
    with pytest.raises(ConfigurationError) as info:
        Limiter(arguments.pop("uid"), **arguments)
    assert fragment in str(info.value)


def test_a_throttle_without_an_identifier_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="needs an identifier"):
        Throttle("api", rate="1/s")


async def test_no_backend_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="has no backend"):
        await Limiter("api", rate="1/s").decide("k")


async def test_the_running_backend_is_found(clock: ManualClock) -> None:
    backend = InMemoryBackend(clock=clock)
    limiter = Limiter("api", rate="1/s")
    async with backend:
        assert (await limiter.decide("k")).allowed
        assert not (await limiter.decide("k")).allowed


async def test_on_error_allow_is_the_default(caplog: pytest.LogCaptureFixture) -> None:
    limiter = Limiter("api", rate="1/s", backend=BrokenBackend())
    with caplog.at_level(logging.WARNING, logger="traffik"):
        decisions = [await limiter.decide("k") for _ in range(50)]
    assert all(d == NOT_LIMITED for d in decisions)
    # One warning, not one per request.
    assert len([r for r in caplog.records if r.name == "traffik"]) == 1
    assert "store unreachable" in caplog.records[0].getMessage()


async def test_on_error_throttle_refuses() -> None:
    limiter = Limiter("api", rate="5/s", backend=BrokenBackend(), on_error="throttle")
    decision = await limiter.decide("k")
    assert not decision.allowed
    assert decision.retry_after == 1.0
    assert decision.limit == 5


async def test_on_error_raise_wraps_the_cause() -> None:
    limiter = Limiter("api", rate="5/s", backend=BrokenBackend(), on_error="raise")
    with pytest.raises(BackendError) as info:
        await limiter.decide("k")
    assert isinstance(info.value.cause, ConnectionError)


async def test_the_throttle_setting_overrides_the_backend_setting() -> None:
    backend = BrokenBackend(on_error="raise")
    assert (await Limiter("a", rate="5/s", backend=backend, on_error="allow").decide("k")).allowed
    with pytest.raises(BackendError):
        await Limiter("b", rate="5/s", backend=backend).decide("k")


async def test_on_error_handler_receives_the_full_context() -> None:
    contexts: list[ErrorContext] = []

    async def handler(context: ErrorContext) -> float:
        contexts.append(context)
        return 7.5

    backend = BrokenBackend()
    limiter = Limiter("api", rate="5/s", backend=backend, on_error=handler)
    decision = await limiter.decide("client", cost=2)
    assert not decision.allowed
    assert decision.retry_after == 7.5
    (context,) = contexts
    assert isinstance(context.exception, ConnectionError)
    assert context.connection == "client"
    assert context.key == "api:{client}:fixed_window"
    assert context.cost == 2
    assert context.rate == Rate.parse("5/s")
    assert context.backend is backend
    assert context.throttle is limiter


async def test_identifier_failures_follow_on_error(clock: ManualClock) -> None:
    async def broken(key: str) -> str:
        raise LookupError("no such user")

    limiter = Limiter("api", rate="1/s", identifier=broken, backend=InMemoryBackend(clock=clock))
    assert (await limiter.decide("k")) == NOT_LIMITED
    strict = Limiter(
        "api", rate="1/s", identifier=broken, backend=InMemoryBackend(clock=clock), on_error="raise"
    )
    with pytest.raises(LookupError):
        await strict.decide("k")


async def test_an_identifier_returning_a_non_string_is_a_clear_error(clock: ManualClock) -> None:
    async def numeric(key: str) -> Any:
        return 42

    limiter = Limiter("api", rate="1/s", identifier=numeric, backend=InMemoryBackend(clock=clock))
    with pytest.raises(ConfigurationError, match="returned 42"):
        await limiter.decide("k")


async def test_identities_with_braces_stay_distinct(clock: ManualClock) -> None:
    limiter = Limiter("api", rate="1/min", backend=InMemoryBackend(clock=clock))
    for identity in ("a{b}", "a%7Bb}", "a", "{a}", "%"):
        assert (await limiter.decide(identity)).allowed, identity
    stat = await limiter.stat("a{b}")
    assert stat is not None
    assert stat.key == "api:{a%7Bb%7D}:fixed_window"


async def test_hit_all_is_all_or_nothing(clock: ManualClock) -> None:
    backend = CountingBackend(clock=clock)
    per_second = Limiter("per-second", rate="10/s", backend=backend)
    per_day = Limiter("per-day", rate="3/d", backend=backend)
    for _ in range(3):
        decisions = await hit_all([(per_second, "k"), (per_day, "k")])
        assert all(d.allowed for d in decisions)
    decisions = await hit_all([(per_second, "k"), (per_day, "k")])
    assert [d.allowed for d in decisions] == [True, False]
    stat = await per_second.stat("k")
    assert stat is not None
    assert stat.remaining == 7
    assert backend.calls == 4  # one atomic step per request


async def test_concurrent_hits_through_a_limiter_are_exact(clock: ManualClock) -> None:
    limiter = Limiter("api", rate="100/hour", backend=InMemoryBackend(clock=clock))
    decisions = await asyncio.gather(*(limiter.decide("k") for _ in range(5000)))
    assert sum(d.allowed for d in decisions) == 100
    assert all(math.isfinite(d.retry_after) for d in decisions)


async def test_refund_gives_back_what_was_consumed(clock: ManualClock) -> None:
    for strategy in (None, TokenBucket()):
        limiter = Limiter(
            "api", rate="3/min", strategy=strategy, backend=InMemoryBackend(clock=clock)
        )
        await limiter.decide("k", cost=3)
        assert not await limiter.check("k")
        await limiter.refund("k", cost=2)
        assert [(await limiter.decide("k")).allowed for _ in range(3)] == [True, True, False]
        await limiter.refund("k", cost=50)  # never above the limit
        stat = await limiter.stat("k")
        assert stat is not None
        assert stat.remaining == 3


async def test_acquire_waits_for_a_queued_slot(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def record(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr("traffik.limiter.asyncio.sleep", record)
    limiter = Limiter(
        "jobs", rate="10/s", strategy=LeakyBucketWithQueue(), backend=InMemoryBackend(clock=clock)
    )
    decisions = [await limiter.acquire("q") for _ in range(3)]
    assert [d.delay for d in decisions] == [0.0, 0.1, 0.2]
    assert slept == [0.1, 0.2]  # no sleep for a request that need not wait
    assert (await limiter.decide("q")).delay == 0.3  # decide reports the delay, never sleeps
    assert slept == [0.1, 0.2]


async def test_shadow_mode_decides_but_never_refuses(clock: ManualClock) -> None:
    limiter = Limiter("trial", rate="2/min", backend=InMemoryBackend(clock=clock), shadow=True)
    decisions = [await limiter.acquire("k") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]  # what the limit says
    assert decisions[-1].retry_after == 20.0
    with pytest.raises(ConfigurationError, match="'yes'"):
        Limiter("trial", rate="2/min", shadow="yes")  # type: ignore[arg-type]

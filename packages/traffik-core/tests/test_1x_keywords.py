"""traffik 1.x keywords and methods of throttles and backends (traffik-core's part).

Kept ones keep their 1.x meaning and units; refused ones fail when the object is built or
the method called, naming the 2.x way (`traffik._legacy_keywords`).
"""

from __future__ import annotations

import pytest

from traffik import ConfigurationError, InMemoryBackend, Limiter, ManualClock, Throttle
from traffik._legacy_keywords import BACKEND_KEYWORDS, LEGACY_METHODS, LegacyError


def limiter(backend: InMemoryBackend, **kwargs: object) -> Limiter:
    return Limiter("legacy:limiter", rate="2/s", backend=backend, **kwargs)  # type: ignore[arg-type]


async def test_min_wait_period_is_a_floor_in_milliseconds_on_refusals_only() -> None:
    clock = ManualClock(1_000.0)
    backend = InMemoryBackend(clock=clock)
    throttle = limiter(backend, min_wait_period=5000)  # 1.x: milliseconds
    first, second, third = [await throttle.decide("client") for _ in range(3)]
    # Admitted requests are untouched: no wait for them.
    assert (first.allowed, first.retry_after) == (True, 0.0)
    assert (second.allowed, second.retry_after) == (True, 0.0)
    # The window ends in 1 s, but the refusal reports at least 5000 ms.
    assert not third.allowed
    assert third.retry_after == 5.0
    # The floor only changes what is reported: after the real window, it admits again.
    clock.advance(1.0)
    assert (await throttle.decide("client")).allowed


async def test_min_wait_period_below_the_real_wait_changes_nothing() -> None:
    clock = ManualClock(1_000.0)
    plain = limiter(InMemoryBackend(clock=clock))
    floored = Limiter(
        "legacy:floored", rate="2/s", backend=InMemoryBackend(clock=clock), min_wait_period=10
    )
    waits = []
    for throttle in (plain, floored):
        decisions = [await throttle.decide("client") for _ in range(3)]
        waits.append(decisions[-1].retry_after)
    assert waits[0] == waits[1] == 1.0


@pytest.mark.parametrize("value", [-1, "5s", True, float("inf")])
def test_min_wait_period_must_be_milliseconds(value: object) -> None:
    with pytest.raises(ConfigurationError, match="min_wait_period is a number of milliseconds"):
        limiter(InMemoryBackend(), min_wait_period=value)


async def test_update_min_wait_period_as_in_1x() -> None:
    throttle = limiter(InMemoryBackend(clock=ManualClock(1_000.0)))
    await throttle.update_min_wait_period(3000)
    decisions = [await throttle.decide("client") for _ in range(3)]
    assert decisions[-1].retry_after == 3.0
    await throttle.update_min_wait_period(None)
    assert throttle.min_wait_period is None


async def test_disable_can_be_awaited_as_in_1x() -> None:
    backend = InMemoryBackend(clock=ManualClock(1_000.0))
    throttle = limiter(backend)
    await throttle.disable()  # 1.x: a coroutine
    assert throttle.is_disabled
    assert all([(await throttle.decide("client")).allowed for _ in range(5)])
    await throttle.enable()
    assert not throttle.is_disabled
    throttle.disable()  # 2.x: synchronous; nothing left un-awaited
    assert throttle.is_disabled


async def test_persistent_false_clears_the_namespace_when_the_lifespan_ends() -> None:
    backend = InMemoryBackend(clock=ManualClock(1_000.0), persistent=False)
    throttle = limiter(backend)
    async with backend:
        assert [(await throttle.decide("client")).allowed for _ in range(3)] == [True, True, False]
        async with backend:  # nested: not the end of the lifespan
            pass
        assert not (await throttle.decide("client")).allowed
    async with backend:  # the counters were cleared on exit
        assert (await throttle.decide("client")).allowed


@pytest.mark.parametrize("persistent", [None, True])
async def test_by_default_and_when_persistent_nothing_is_cleared(persistent: bool | None) -> None:
    backend = InMemoryBackend(clock=ManualClock(1_000.0), persistent=persistent)
    throttle = limiter(backend)
    async with backend:
        assert [(await throttle.decide("client")).allowed for _ in range(3)] == [True, True, False]
    async with backend:
        assert not (await throttle.decide("client")).allowed


def test_persistent_must_be_a_bool() -> None:
    with pytest.raises(ConfigurationError, match="persistent must be True, False or None"):
        InMemoryBackend(persistent="no")  # type: ignore[arg-type]


async def test_get_backend_and_update_backend_as_in_1x() -> None:
    first, second = InMemoryBackend(), InMemoryBackend()
    throttle = limiter(first)
    assert throttle.get_backend() is first
    assert throttle.get_backend("client") is first
    await throttle.update_backend(second)
    assert throttle.get_backend() is second
    with pytest.raises(ConfigurationError, match="backend must be a ThrottleBackend"):
        await throttle.update_backend("redis://")  # type: ignore[arg-type]


async def test_get_backend_without_one_says_how_to_give_one() -> None:
    throttle = Limiter("legacy:none", rate="2/s")
    with pytest.raises(ConfigurationError, match="has no backend"):
        throttle.get_backend()
    backend = InMemoryBackend()
    async with backend:
        assert throttle.get_backend() is backend


async def test_get_connection_id_is_the_identity() -> None:
    throttle = limiter(InMemoryBackend())
    assert await throttle.get_connection_id("client-7") == "client-7"


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("update_rate", ("5/min",)),
        ("update_cost", (2,)),
        ("update_strategy", (None,)),
        ("update_identifier", (None,)),
        ("update_headers", (None,)),
        ("update_error_handler", (None,)),
    ],
)
async def test_refused_update_methods_name_the_2x_way(method: str, args: tuple[object]) -> None:
    throttle = limiter(InMemoryBackend())
    with pytest.raises(LegacyError) as caught:
        await getattr(throttle, method)(*args)
    assert str(caught.value) == f"Limiter.{method}() is traffik 1.x: {LEGACY_METHODS[method]}"
    assert isinstance(caught.value, ConfigurationError)


def test_refused_key_methods_name_the_2x_way() -> None:
    throttle = limiter(InMemoryBackend())
    with pytest.raises(LegacyError, match=r"throttle\.stat\(connection\)\)\.key"):
        throttle.get_scoped_key("client")
    with pytest.raises(LegacyError, match=r"Limiter\.get_namespaced_key\(\) is traffik 1\.x"):
        throttle.get_namespaced_key("client", "client")


def test_update_rate_message() -> None:
    throttle = limiter(InMemoryBackend())
    coroutine = throttle.update_rate("5/min")
    with pytest.raises(LegacyError, match="pass rate= an async function of the connection"):
        coroutine.send(None)
    assert issubclass(Limiter, Throttle)


@pytest.mark.parametrize("keyword", sorted(BACKEND_KEYWORDS))
def test_1x_backend_keywords_are_refused_naming_the_2x_way(keyword: str) -> None:
    with pytest.raises(LegacyError) as caught:
        InMemoryBackend(namespace="inmemory", **{keyword: None})  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"InMemoryBackend({keyword}=...) is traffik 1.x: {BACKEND_KEYWORDS[keyword]}"
    )


def test_other_unknown_backend_keywords_stay_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'shards'"):
        InMemoryBackend(shards=3)  # type: ignore[call-arg]


@pytest.mark.parametrize("keyword", ["lock_config", "lock_ttl"])
def test_lock_config_on_a_strategy_is_refused_naming_why(keyword: str) -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling"):
        from traffik.strategies import GCRAStrategy, TokenBucketStrategy
    from traffik.strategies import SlidingWindowLog

    for strategy in (TokenBucketStrategy, GCRAStrategy, SlidingWindowLog):
        with pytest.raises(LegacyError) as caught:
            strategy(**{keyword: {"ttl": 5.0}})  # type: ignore[arg-type]
        assert str(caught.value) == (
            f"{strategy.__name__}({keyword}=...) is traffik 1.x: traffik 2 takes no locks: each "
            "backend applies a decision in one atomic step, so there is nothing to configure"
        )
    assert TokenBucketStrategy(burst_size=5).burst_size == 5

"""Refusals answered locally (`traffik.refusals`): no backend call while a lasting refusal
is in force, and the same decisions as without the cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traffik import (
    ConfigurationError,
    Decision,
    FixedWindow,
    InMemoryBackend,
    Limiter,
    ManualClock,
    QuotaWithRollover,
    Rate,
    TokenBucket,
    hit_all,
)
from traffik.backends.base import Hit
from traffik.observability import DecisionEvent, observing
from traffik.refusals import RefusalCache, steady_refusals
from traffik.strategies import NO_PARAMS, Params, Strategy


class CountingBackend(InMemoryBackend):
    """The real in-memory backend, counting the decisions it is asked for."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.applied = 0

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        self.applied += 1
        return await super().apply(key, strategy, rate, cost, params)


def pair(
    clock: ManualClock, strategy: Strategy[Any] | None = None, rate: str = "3/min"
) -> tuple[Limiter, CountingBackend, Limiter, CountingBackend]:
    """Two identical limiters on two backends sharing ``clock``: cached, and not."""
    cached_backend = CountingBackend(clock=clock, cache_refusals=True)
    plain_backend = CountingBackend(clock=clock)
    cached = Limiter("api", rate=rate, backend=cached_backend, strategy=strategy)
    plain = Limiter("api", rate=rate, backend=plain_backend, strategy=strategy)
    return cached, cached_backend, plain, plain_backend


async def test_a_key_over_its_limit_is_refused_without_the_backend_until_its_retry_time() -> None:
    clock = ManualClock(1_700_000_000.0)  # 20 s into a minute window
    cached, backend, _, _ = pair(clock)
    for _ in range(3):
        assert (await cached.decide("alice")).allowed
    first = await cached.decide("alice")
    assert not first.allowed
    assert first.retry_after == 40.0
    assert backend.applied == 4

    clock.advance(10.0)
    for _ in range(100):
        refused = await cached.decide("alice")
        assert not refused.allowed
    assert backend.applied == 4  # none of those asked the backend
    assert refused == first._replace(retry_after=30.0, reset_after=30.0)
    assert backend.refusals().served == 100

    clock.advance(29.999)
    assert not (await cached.decide("alice")).allowed
    assert backend.applied == 4
    clock.advance(0.001)  # the window ends: the backend decides again
    assert (await cached.decide("alice")).allowed
    assert backend.applied == 5


async def test_other_keys_and_other_costs_still_ask_the_backend() -> None:
    clock = ManualClock(1_700_000_000.0)
    backend = CountingBackend(clock=clock, cache_refusals=True)
    limiter = Limiter("api", rate="3/min", backend=backend)
    assert (await limiter.decide("alice", cost=2)).allowed
    assert not (await limiter.decide("alice", cost=2)).allowed  # 1 unit left: refused, cached
    calls = backend.applied
    assert not (await limiter.decide("alice", cost=2)).allowed
    assert backend.applied == calls
    assert (await limiter.decide("alice", cost=1)).allowed  # a smaller cost fits: asked
    assert (await limiter.decide("bob")).allowed
    assert backend.applied == calls + 2
    # The admitted cost-1 hit replaced what was remembered of alice: asked again.
    assert not (await limiter.decide("alice", cost=2)).allowed
    assert backend.applied == calls + 3


async def test_a_refund_a_reset_and_a_clear_end_a_remembered_refusal() -> None:
    clock = ManualClock(1_700_000_000.0)
    backend = CountingBackend(clock=clock, cache_refusals=True)
    limiter = Limiter("api", rate="1/min", backend=backend)
    assert (await limiter.decide("alice")).allowed
    assert not (await limiter.decide("alice")).allowed
    await limiter.refund("alice")
    assert (await limiter.decide("alice")).allowed  # not refused from the cache
    assert not (await limiter.decide("alice")).allowed
    await limiter.reset("alice")
    assert (await limiter.decide("alice")).allowed
    assert not (await limiter.decide("alice")).allowed
    await backend.clear()
    assert len(backend.refusals()) == 0
    assert (await limiter.decide("alice")).allowed


async def test_refusals_that_waiting_cannot_end_are_not_remembered() -> None:
    backend = CountingBackend(clock=ManualClock(1_700_000_000.0), cache_refusals=True)
    limiter = Limiter("api", rate="2/min", backend=backend)
    for _ in range(3):
        assert not (await limiter.decide("alice", cost=3)).allowed  # cost above the limit
    assert backend.applied == 3
    assert len(backend.refusals()) == 0


async def test_strategies_whose_refusals_wear_off_are_never_answered_locally() -> None:
    clock = ManualClock(1_700_000_000.0)
    backend = CountingBackend(clock=clock, cache_refusals=True)
    limiter = Limiter("api", rate="2/min", backend=backend, strategy=TokenBucket())
    for _ in range(5):
        await limiter.decide("alice")
    assert backend.applied == 5
    assert backend.refusals().served == 0
    assert steady_refusals(FixedWindow())
    assert steady_refusals(QuotaWithRollover())
    assert not steady_refusals(TokenBucket())


async def test_a_throttle_setting_overrides_its_backend() -> None:
    clock = ManualClock(1_700_000_000.0)
    on = CountingBackend(clock=clock, cache_refusals=True)
    off = CountingBackend(clock=clock)
    opted_out = Limiter("out", rate="1/min", backend=on, cache_refusals=False)
    opted_in = Limiter("in", rate="1/min", backend=off, cache_refusals=True)
    for limiter, backend in ((opted_out, on), (opted_in, off)):
        for _ in range(5):
            await limiter.decide("alice")
        assert backend.applied == (5 if limiter is opted_out else 2)
    assert off.cache_refusals is False  # the throttle's cache did not switch the backend's on
    assert off.refusal_cache is None


async def test_several_limits_at_once_always_ask_and_refresh_the_cache() -> None:
    clock = ManualClock(1_700_000_000.0)
    backend = CountingBackend(clock=clock, cache_refusals=True)
    minute = Limiter("minute", rate="1/min", backend=backend)
    hour = Limiter("hour", rate="10/h", backend=backend)
    assert (await minute.decide("alice")).allowed
    assert not (await minute.decide("alice")).allowed  # remembered
    assert len(backend.refusals()) == 1
    decisions = await hit_all([(minute, "alice"), (hour, "alice")])
    assert [decision.allowed for decision in decisions] == [False, True]
    assert len(backend.refusals()) == 0  # apply_many decided those keys afresh
    hit = Hit("k", FixedWindow(), Rate.parse("1/min"), 1, NO_PARAMS)
    assert [d.allowed for d in await backend.apply_many([hit, hit])] == [True, False]


async def test_observers_hear_of_refusals_answered_locally_without_latency() -> None:
    backend = CountingBackend(clock=ManualClock(1_700_000_000.0), cache_refusals=True)
    limiter = Limiter("api", rate="1/min", backend=backend)
    events: list[DecisionEvent] = []
    with observing(events.append):
        for _ in range(3):
            await limiter.decide("alice")
    assert [event.outcome for event in events] == ["allowed", "throttled", "throttled"]
    assert events[1].latency is not None
    assert events[2].latency is None  # answered from the cache
    assert backend.applied == 2


async def test_the_cache_is_bounded() -> None:
    clock = ManualClock(1_700_000_000.0)
    backend = CountingBackend(clock=clock, cache_refusals=True)
    backend.refusals().max_keys = 10
    limiter = Limiter("api", rate="1/min", backend=backend)
    for client in range(50):
        await limiter.decide(f"c{client}")
        await limiter.decide(f"c{client}")
    assert len(backend.refusals()) == 10


def test_bad_settings_fail_clearly() -> None:
    with pytest.raises(ConfigurationError, match="cache_refusals"):
        InMemoryBackend(cache_refusals="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="cache_refusals"):
        Limiter("api", rate="1/min", cache_refusals=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_keys"):
        RefusalCache(InMemoryBackend(), max_keys=0)


Step = tuple[str, int]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("hit"), st.integers(1, 4)),
        st.tuples(st.just("wait"), st.integers(1, 90_000)),
        st.tuples(st.just("refund"), st.integers(1, 2)),
        st.tuples(st.just("reset"), st.just(0)),
        st.tuples(st.just("peek"), st.integers(1, 4)),
    ),
    max_size=60,
)


async def run(steps: Sequence[Step], strategy: Strategy[Any]) -> tuple[list[Any], int, int]:
    clock = ManualClock(1_700_000_000.0)
    cached, cached_backend, plain, plain_backend = pair(clock, strategy, rate="5/min")
    outcomes: list[Any] = []
    for kind, value in steps:
        for client in ("alice", "bob"):
            a: Decision | None
            b: Decision | None
            if kind == "hit":
                a, b = (
                    await cached.decide(client, cost=value),
                    await plain.decide(client, cost=value),
                )
            elif kind == "peek":
                a, b = await cached.peek(client, cost=value), await plain.peek(client, cost=value)
            elif kind == "refund":
                await cached.refund(client, cost=value)
                await plain.refund(client, cost=value)
                a = b = None
            elif kind == "reset":
                await cached.reset(client)
                await plain.reset(client)
                a = b = None
            else:
                a = b = None
            outcomes.append((a, b))
        if kind == "wait":
            clock.advance(value / 1000)
    return outcomes, cached_backend.applied, plain_backend.applied


@pytest.mark.parametrize("strategy", [FixedWindow(), QuotaWithRollover()], ids=repr)
@settings(max_examples=150, deadline=None)
@given(steps=steps)
async def test_decisions_are_the_same_with_and_without_the_cache(
    strategy: Strategy[Any], steps: list[Step]
) -> None:
    outcomes, cached_calls, plain_calls = await run(steps, strategy)
    for cached, plain in outcomes:
        assert cached == plain  # every field: allowed, limit, remaining, reset, retry
    assert cached_calls <= plain_calls

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from traffik import (
    NOT_LIMITED,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    Decision,
    InMemoryBackend,
    Limiter,
    ManualClock,
    Rate,
)
from traffik.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    ConstantBackoff,
    FailoverBackend,
    ResilientBackend,
    Retry,
)
from traffik.strategies import Params, Strategy, TokenBucket

RATE = "3/min"


class Store(InMemoryBackend):
    """A real in-memory backend standing in for a store that can go down or hang."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__("primary", clock=clock)
        self.down = False
        self.failures_left = 0
        self.hang = asyncio.Event()
        self.hanging = False
        self.calls = 0

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        self.calls += 1
        if self.hanging:
            await self.hang.wait()
        if self.down:
            raise ConnectionError("connection refused")
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("connection reset")
        return await super().apply(key, strategy, rate, cost, params)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000.0)


@pytest.fixture
def store(clock: ManualClock) -> Store:
    return Store(clock)


async def test_a_store_that_fails_once_costs_one_retry_and_no_error(
    store: Store, clock: ManualClock
) -> None:
    backend = ResilientBackend(
        store, retry=Retry(max_retries=2, backoff=ConstantBackoff(initial=0))
    )
    limiter = Limiter("api", rate=RATE, backend=backend, on_error="raise")
    store.failures_left = 1
    decision = await limiter.decide("k")
    assert decision.allowed
    assert decision.remaining == 2  # decided by the store itself
    assert (backend.retries, store.calls) == (1, 2)


async def test_retries_run_out(store: Store) -> None:
    backend = ResilientBackend(
        store, retry=Retry(max_retries=2, backoff=ConstantBackoff(initial=0))
    )
    limiter = Limiter("api", rate=RATE, backend=backend, on_error="raise")
    store.down = True
    with pytest.raises(BackendError) as info:
        await limiter.decide("k")
    assert isinstance(info.value.cause, ConnectionError)
    assert store.calls == 3


async def test_a_hung_store_cannot_hold_a_request(store: Store) -> None:
    store.hanging = True
    backend = ResilientBackend(store, timeout=0.02)
    with pytest.raises(BackendTimeoutError):
        await Limiter("api", rate=RATE, backend=backend, on_error="raise").decide("k")
    # With the default on_error the request simply goes through.
    assert await Limiter("api", rate=RATE, backend=backend).decide("k") == NOT_LIMITED


async def test_failover_keeps_limiting_and_returns_when_the_store_recovers(
    store: Store, clock: ManualClock
) -> None:
    monotonic = ManualClock(0.0)
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=5, clock=monotonic)
    local = InMemoryBackend("local", clock=clock)
    backend = FailoverBackend(store, local, breaker=breaker)
    limiter = Limiter("api", rate=RATE, backend=backend, on_error="raise")

    assert (await limiter.decide("k")).remaining == 2  # primary
    store.down = True
    decisions = [await limiter.decide("k") for _ in range(5)]
    # The fallback limits on its own: 3 per minute, then refusals.
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert breaker.is_open
    calls_when_opened = store.calls
    assert calls_when_opened == 3  # two failures opened the circuit; no calls since

    store.down = False
    monotonic.advance(5)
    probe = await limiter.decide("k")
    assert breaker.is_closed
    assert probe.remaining == 1  # back on the primary, which remembers its one hit
    assert store.calls == calls_when_opened + 1


async def test_while_open_and_without_fallback_on_error_applies(store: Store) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=60)
    backend = ResilientBackend(store, breaker=breaker)
    store.down = True
    limiter = Limiter("api", rate=RATE, backend=backend, on_error="raise")
    with pytest.raises(BackendError):
        await limiter.decide("k")
    with pytest.raises(CircuitOpenError):
        await limiter.decide("k")
    assert store.calls == 1
    throttling = Limiter("api", rate=RATE, backend=backend, on_error="throttle")
    assert not (await throttling.decide("k")).allowed


async def test_a_cancelled_probe_does_not_wedge_the_circuit(store: Store) -> None:
    monotonic = ManualClock(0.0)
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1, clock=monotonic)
    backend = ResilientBackend(store, breaker=breaker, timeout=None)
    store.down = True
    limiter = Limiter("api", rate=RATE, backend=backend, on_error="allow")
    await limiter.decide("k")
    assert breaker.is_open
    store.down, store.hanging = False, True
    monotonic.advance(1)
    probe = asyncio.ensure_future(limiter.decide("k"))
    await asyncio.sleep(0)  # let the probe reach the store
    assert store.calls == 2
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert breaker.is_open
    store.hanging = False
    monotonic.advance(1)
    assert (await limiter.decide("k")).allowed
    assert breaker.is_closed


async def test_startup_survives_a_dead_primary(clock: ManualClock) -> None:
    class Unreachable(InMemoryBackend):
        async def initialize(self) -> None:
            raise ConnectionError("no route to host")

    backend = FailoverBackend(Unreachable("p"), InMemoryBackend("local", clock=clock))
    async with backend:
        assert await backend.ready()


def test_bad_arguments_are_named(store: Store) -> None:
    with pytest.raises(ConfigurationError, match="primary"):
        ResilientBackend("redis://")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="different backend"):
        ResilientBackend(store, fallback=store)
    with pytest.raises(ConfigurationError, match="timeout"):
        ResilientBackend(store, timeout=0)
    with pytest.raises(ConfigurationError, match="max_retries"):
        Retry(max_retries=-1)
    with pytest.raises(ConfigurationError, match="fallback"):
        FailoverBackend(store, None)  # type: ignore[arg-type]


async def test_retries_stop_when_the_budget_runs_out(store: Store) -> None:
    # Budget 0.5 s, 0.2 s between attempts: attempts at about 0, 0.2 and 0.4 s; a fourth
    # would start at 0.6 s, past the budget, so it is never made.
    backend = ResilientBackend(
        store, retry=Retry(max_retries=10, backoff=ConstantBackoff(initial=0.2)), timeout=0.5
    )
    store.down = True
    with pytest.raises(BackendError):
        await Limiter("api", rate=RATE, backend=backend, on_error="raise").decide("k")
    assert store.calls == 3
    assert backend.retries == 2


def test_the_retry_budget_is_the_primarys_time_budget(store: Store, clock: ManualClock) -> None:
    class Budgeted(InMemoryBackend):
        timeout = 0.2

    assert ResilientBackend(Budgeted(clock=clock)).retry_budget == 0.2
    assert ResilientBackend(Budgeted(clock=clock), timeout=1.5).retry_budget == 1.5
    assert ResilientBackend(store).retry_budget == 0.05  # no budget of its own: the default


@pytest.mark.parametrize(
    "error",
    [
        ConfigurationError("TokenBucket cannot decide rate 9999991/30d exactly"),
        ValueError("a strategy's own error"),
        KeyError("a bug"),
    ],
    ids=["configuration", "strategy", "bug"],
)
async def test_only_store_failures_fall_back_anything_else_propagates_unchanged(
    clock: ManualClock, error: Exception
) -> None:
    class Faulty(InMemoryBackend):
        async def apply(self, *hit: Any) -> Decision:
            raise error

    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=60)
    backend = FailoverBackend(
        Faulty("primary", clock=clock), InMemoryBackend("local", clock=clock), breaker=breaker
    )
    for _ in range(3):
        with pytest.raises(type(error)) as raised:
            await backend.apply("k", TokenBucket(), Rate.parse(RATE), 1, {})
        assert raised.value is error  # not wrapped, not decided by the fallback
    assert breaker.is_closed  # the store did not fail
    assert backend.fallbacks == 0

"""Stores that fail under load: killed (SIGKILL) and paused (SIGSTOP) real servers.

A FastAPI app limits one client to 50 requests per minute on a real Redis or memcached,
guarded by a circuit breaker. Twenty concurrent workers fire requests; part-way through,
the server is killed or paused. Every request must be answered as ``on_error`` says and
none may wait much past the time budget; the breaker must open, and close again once the
server is back, after which the limit is enforced again — with no restart of anything.

Each scenario prints what it measured (requests during the outage, worst latency, time
to recover); run with ``-s`` to see it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2
import pytest
from fastapi import Depends, FastAPI

from traffik import HTTPThrottle, InMemoryBackend, ManualClock, ThrottleBackend
from traffik.backends.memcached import MemcachedBackend
from traffik.backends.redis import RedisBackend
from traffik.resilience import (
    CircuitBreaker,
    CircuitState,
    FailoverBackend,
    ResilientBackend,
    Retry,
)

pytestmark = pytest.mark.slow

NOW = 1_800_000_010.0  # 10 s into a minute: no window rolls over during a scenario
LIMIT = 50
WORKERS = 20
LATENCY_BOUND = 1.0  # seconds: robust on a loaded 2-core machine; the budget is 400 ms


class Server(Protocol):
    @property
    def url(self) -> str: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def stop(self) -> None: ...

    def start(self) -> None: ...


@dataclass
class Run:
    statuses: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def worst(self) -> float:
        return max(self.latencies)


def primary_for(kind: str, server: Server, namespace: str, clock: ManualClock) -> ThrottleBackend:
    """The store's backend with its default time budget (400 ms of silence)."""
    if kind == "redis":
        return RedisBackend(server.url, namespace=namespace, clock=clock)
    return MemcachedBackend(server.url, namespace=namespace, clock=clock)


def make_app(backend: ThrottleBackend, on_error: Any = "allow") -> FastAPI:
    throttle = HTTPThrottle("faults", rate=f"{LIMIT}/min", backend=backend, on_error=on_error)
    app = FastAPI()

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    return app


async def fire(
    client: httpx2.AsyncClient, count: int, after: Callable[[int], None] | None = None
) -> Run:
    """``count`` requests from ``WORKERS`` concurrent workers; ``after(n)`` runs after the
    n-th answer (to break the server mid-load)."""
    run = Run()
    queue = iter(range(count))

    async def worker() -> None:
        for _ in queue:
            started = time.perf_counter()
            response = await client.get("/items")
            run.latencies.append(time.perf_counter() - started)
            run.statuses.append(response.status_code)
            if after is not None:
                after(len(run.statuses))

    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    return run


@pytest.fixture(params=["redis", "memcached"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Setup:
    server: Server
    clock: ManualClock
    monotonic: ManualClock
    breaker: CircuitBreaker
    transitions: list[CircuitState]


@pytest.fixture
def setup(kind: str, server_factory: Callable[..., Server]) -> Setup:
    monotonic = ManualClock(0.0)
    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=10, name=kind, clock=monotonic)
    transitions: list[CircuitState] = []
    breaker.add_listener(lambda _, old, new: transitions.append(new))
    return Setup(server_factory(kind), ManualClock(NOW), monotonic, breaker, transitions)


@pytest.fixture
async def client_factory() -> AsyncIterator[Callable[[FastAPI], httpx2.AsyncClient]]:
    clients: list[httpx2.AsyncClient] = []

    def make(app: FastAPI) -> httpx2.AsyncClient:
        transport = httpx2.ASGITransport(app=app, client=("203.0.113.9", 4000))
        client = httpx2.AsyncClient(transport=transport, base_url="http://test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def recover(client: httpx2.AsyncClient, setup: Setup) -> float:
    """Advance past the breaker's recovery timeout; seconds until a request closes it."""
    setup.monotonic.advance(setup.breaker.recovery_timeout)
    started = time.perf_counter()
    for _ in range(100):
        await client.get("/items")
        if setup.breaker.is_closed:
            return time.perf_counter() - started
    raise AssertionError(f"the breaker did not close: {setup.breaker.info()}")


@pytest.mark.parametrize("fault", ["kill", "pause"])
async def test_the_api_stays_up_through_an_outage_and_limits_again_after(
    kind: str,
    fault: str,
    setup: Setup,
    namespace: str,
    client_factory: Callable[[FastAPI], httpx2.AsyncClient],
) -> None:
    primary = primary_for(kind, setup.server, namespace, setup.clock)
    backend = ResilientBackend(primary, breaker=setup.breaker)
    client = client_factory(make_app(backend))
    async with backend:
        healthy = await fire(client, 30)
        assert healthy.statuses == [200] * 30

        def break_server(answered: int) -> None:
            if answered == 20:
                setup.server.stop() if fault == "kill" else setup.server.pause()

        outage = await fire(client, 400, after=break_server)
        try:
            # Every request answered as on_error="allow" says, none held past the bound.
            assert len(outage.statuses) == 400
            assert set(outage.statuses) <= {200, 429}
            assert outage.worst < LATENCY_BOUND, outage.worst
            assert setup.transitions[:1] == [CircuitState.OPEN]
            assert setup.breaker.is_open
        finally:
            setup.server.start() if fault == "kill" else setup.server.resume()

        recovered_in = await recover(client, setup)
        after = await fire(client, 80)
        # A killed store lost its counters: the client starts afresh. A paused one kept
        # them: the 30 healthy requests (and any before the pause) still count.
        allowed = after.statuses.count(200)
        if fault == "kill":
            assert allowed == LIMIT - 1  # the recovery probe took one unit
        else:
            assert allowed <= LIMIT - 30 - 1
        assert after.statuses.count(429) == 80 - allowed
    print(
        f"\n[{kind} {fault}] outage: {len(outage.statuses)} sent, {len(outage.statuses)} answered "
        f"({outage.statuses.count(200)} allowed, {outage.statuses.count(429)} refused); "
        f"worst latency {outage.worst * 1000:.0f} ms; recovered in {recovered_in * 1000:.1f} ms "
        f"after the breaker's timeout; transitions {[s.value for s in setup.transitions]}"
    )


async def test_on_error_throttle_refuses_during_the_outage(
    kind: str,
    setup: Setup,
    namespace: str,
    client_factory: Callable[[FastAPI], httpx2.AsyncClient],
) -> None:
    primary = primary_for(kind, setup.server, namespace, setup.clock)
    backend = ResilientBackend(primary, breaker=setup.breaker)
    client = client_factory(make_app(backend, on_error="throttle"))
    async with backend:
        setup.server.pause()
        try:
            outage = await fire(client, 100)
        finally:
            setup.server.resume()
        assert outage.statuses == [429] * 100
        assert outage.worst < LATENCY_BOUND
        response = await client.get("/items")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"


async def test_failover_keeps_limiting_during_the_outage(
    kind: str,
    setup: Setup,
    namespace: str,
    client_factory: Callable[[FastAPI], httpx2.AsyncClient],
) -> None:
    primary = primary_for(kind, setup.server, namespace, setup.clock)
    local = InMemoryBackend("local", clock=setup.clock)
    backend = FailoverBackend(primary, local, breaker=setup.breaker)
    client = client_factory(make_app(backend))
    async with backend:
        assert (await fire(client, 10)).statuses == [200] * 10  # on the store
        setup.server.stop()
        try:
            outage = await fire(client, 80)
        finally:
            setup.server.start()
        # The fallback limits on its own (per instance): 50 of 80, the rest refused.
        assert outage.statuses.count(200) == LIMIT
        assert outage.statuses.count(429) == 80 - LIMIT
        assert outage.worst < LATENCY_BOUND
        assert setup.breaker.is_open
        recovered_in = await recover(client, setup)
        # Back on the store, which (restarted) remembers nothing: a fresh budget.
        assert (await fire(client, 60)).statuses.count(200) == LIMIT - 1
    print(
        f"\n[{kind} failover] outage: 80 sent, 80 answered ({outage.statuses.count(200)} allowed "
        f"by the fallback, {outage.statuses.count(429)} refused); worst latency "
        f"{outage.worst * 1000:.0f} ms; recovered in {recovered_in * 1000:.1f} ms"
    )


async def test_a_store_that_fails_once_costs_one_retry_and_no_error(
    kind: str, setup: Setup, namespace: str
) -> None:
    class RestartingBackoff:
        """Between the failed attempt and the retry, bring the server back."""

        def delay(self, attempt: int) -> float:
            setup.server.start()
            return 0.0

    primary = primary_for(kind, setup.server, namespace, setup.clock)
    backend = ResilientBackend(
        primary, retry=Retry(max_retries=1, backoff=RestartingBackoff()), timeout=5.0
    )
    throttle = HTTPThrottle("retry", rate="5/min", backend=backend, on_error="raise")
    app = make_app(backend)
    async with backend:
        setup.server.stop()
        decision = await throttle.decide(_request(app))
        assert decision.allowed
        assert decision.remaining == 4  # decided by the store itself
        assert backend.retries == 1


def _request(app: FastAPI) -> Any:
    from starlette.requests import Request

    scope = {
        "type": "http", "method": "GET", "path": "/items", "headers": [], "query_string": b"",
        "client": ("203.0.113.9", 4000), "app": app,
    }  # fmt: skip
    return Request(scope)

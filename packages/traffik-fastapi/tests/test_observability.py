"""Every way into the HTTP package reports its decisions to observers — and, with none, does
no observation work at all."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.testclient import TestClient

from traffik import (
    Bypass,
    Decision,
    DecisionEvent,
    HTTPThrottle,
    InMemoryBackend,
    ManualClock,
    MiddlewareThrottle,
    ThrottleMiddleware,
    throttled,
)
from traffik.backends.base import Hit
from traffik.observability import OBSERVERS, observing
from traffik.rates import Rate
from traffik.strategies.base import Params, Strategy

ClientFactory = Callable[..., TestClient]


class BrokenBackend(InMemoryBackend):
    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        raise ConnectionError("store unreachable")

    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        raise ConnectionError("store unreachable")


class Recorder:
    def __init__(self) -> None:
        self.events: list[DecisionEvent] = []

    def __call__(self, event: DecisionEvent) -> None:
        self.events.append(event)

    def seen(self) -> list[tuple[str, str]]:
        return [(event.uid, event.outcome) for event in self.events]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    with observing(recorder):
        yield recorder


@pytest.fixture(autouse=True)
def _no_observer_left_behind() -> Iterator[None]:
    before = list(OBSERVERS)  # the observed run's own observer, when it runs
    yield
    assert before == OBSERVERS


def build_app(backend: InMemoryBackend) -> FastAPI:
    """Every way in: a dependency, two limits on one route, a decorator, the middleware."""
    items = HTTPThrottle("items", rate="2/min")
    burst = HTTPThrottle("burst", rate="1/min")
    daily = HTTPThrottle("daily", rate="5/d")
    decorated = HTTPThrottle("decorated", rate="1/min")
    edge = HTTPThrottle("edge", rate="100/min", rules=[Bypass("/health")])
    app = FastAPI(
        lifespan=backend.lifespan,
        middleware=[
            Middleware(ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(edge)])
        ],
    )

    @app.get("/items", dependencies=[Depends(items)])
    async def list_items() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/search", dependencies=[Depends(burst), Depends(daily)])
    async def search() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/decorated")
    @throttled(decorated)
    async def decorated_endpoint() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    return app


def drive(client: TestClient) -> list[int]:
    paths = ["/items"] * 3 + ["/search"] * 2 + ["/decorated"] * 2 + ["/health"]
    return [client.get(path).status_code for path in paths]


def test_every_way_in_reports_each_decision(
    backend: InMemoryBackend, client_for: ClientFactory, recorder: Recorder
) -> None:
    codes = drive(client_for(build_app(backend)))
    assert codes == [200, 200, 429, 200, 429, 200, 429, 200]
    assert recorder.seen() == [
        ("edge", "allowed"),
        ("items", "allowed"),
        ("edge", "allowed"),
        ("items", "allowed"),
        ("edge", "allowed"),
        ("items", "throttled"),
        ("edge", "allowed"),
        ("burst", "allowed"),
        ("daily", "allowed"),
        ("edge", "allowed"),
        ("burst", "throttled"),
        ("daily", "allowed"),  # decided with the refused burst: consumed nothing
        ("edge", "allowed"),
        ("decorated", "allowed"),
        ("edge", "allowed"),
        ("decorated", "throttled"),
        ("edge", "exempted"),  # /health: the Bypass rule
    ]
    for event in recorder.events:
        assert (event.latency is None) == (event.outcome == "exempted")
        assert not event.peek
        assert not event.shadow
    search = [e for e in recorder.events if e.uid in ("burst", "daily")]
    assert search[0].latency == search[1].latency  # one atomic call decided both
    assert recorder.events[5].key == "items:{10.0.0.1}:GET:/items:fixed_window"


def test_store_failures_are_reported_as_errors(
    clock: ManualClock, client_for: ClientFactory, recorder: Recorder
) -> None:
    broken = BrokenBackend(clock=clock)
    lenient = HTTPThrottle("lenient", rate="1/min", backend=broken)
    strict = HTTPThrottle("strict", rate="1/min", backend=broken, on_error="throttle")
    app = FastAPI()

    @app.get("/one", dependencies=[Depends(lenient)])
    async def one() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/two", dependencies=[Depends(lenient), Depends(strict)])
    async def two() -> dict[str, bool]:
        return {"ok": True}

    client = client_for(app)
    assert [client.get(path).status_code for path in ("/one", "/two")] == [200, 429]
    assert [(e.uid, e.outcome, e.allowed) for e in recorder.events] == [
        ("lenient", "error", True),
        ("lenient", "error", True),
        ("strict", "error", False),
    ]
    assert all(isinstance(e.error, ConnectionError) for e in recorder.events)


def test_shadow_mode_passes_everything_and_counts_what_it_would_refuse(
    backend: InMemoryBackend, client_for: ClientFactory, recorder: Recorder
) -> None:
    trial = HTTPThrottle("trial", rate="3/min", shadow=True)
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/items", dependencies=[Depends(trial)])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    client = client_for(app)
    assert [client.get("/items").status_code for _ in range(10)] == [200] * 10
    assert [e.outcome for e in recorder.events] == ["allowed"] * 3 + ["throttled"] * 7
    assert all(e.shadow for e in recorder.events)


def test_an_observer_that_raises_breaks_no_request(
    backend: InMemoryBackend, client_for: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: DecisionEvent) -> None:
        raise ValueError("bad observer")

    with observing(broken):
        codes = drive(client_for(build_app(backend)))
    assert codes == [200, 200, 429, 200, 429, 200, 429, 200]
    assert [r.name for r in caplog.records if r.name.startswith("traffik")] == [
        "traffik.observability"
    ]


class HotPathSpy:
    """Counts clock reads made by traffik code, and decision events built."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock_reads = 0
        self.events = 0
        real_perf_counter = time.perf_counter
        real_init = DecisionEvent.__init__

        def perf_counter() -> float:
            if sys._getframe(1).f_globals.get("__name__", "").startswith("traffik"):
                self.clock_reads += 1
            return real_perf_counter()

        def init(event: DecisionEvent, *args: Any, **kwargs: Any) -> None:
            self.events += 1
            real_init(event, *args, **kwargs)

        monkeypatch.setattr(time, "perf_counter", perf_counter)
        monkeypatch.setattr(DecisionEvent, "__init__", init)


def test_without_observers_requests_do_no_observation_work(
    backend: InMemoryBackend, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(build_app(backend))
    spy = HotPathSpy(monkeypatch)
    installed = OBSERVERS[:]  # the observed run's own observer, when it runs
    OBSERVERS.clear()
    try:
        drive(client)
    finally:
        OBSERVERS[:] = installed
    assert (spy.clock_reads, spy.events) == (0, 0)


def test_the_spy_sees_observation_when_someone_listens(
    backend: InMemoryBackend,
    client_for: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    recorder: Recorder,
) -> None:
    client = client_for(build_app(backend))
    spy = HotPathSpy(monkeypatch)
    drive(client)
    assert spy.events == len(recorder.events) == 17
    backend_calls = 7 + 3 + 2 + 2  # edge on all but /health; items; search (one each); decorated
    assert spy.clock_reads == 2 * backend_calls


async def test_a_direct_call_is_reported(backend: InMemoryBackend, recorder: Recorder) -> None:
    throttle = HTTPThrottle("direct", rate="1/min", backend=backend)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "client": ("1.2.3.4", 1)}
    await throttle(Request(scope), cost=1)
    assert recorder.seen() == [("direct", "allowed")]

"""Shadow throttles: every way in lets every request through, while the limit still decides,
records, and says in the headers what it would have done."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from traffik import (
    ConcurrencyLimit,
    ConfigurationError,
    Decision,
    HTTPThrottle,
    InMemoryBackend,
    ManualClock,
    MiddlewareThrottle,
    ThrottleMiddleware,
    get_decision,
    get_retry_after,
    is_throttled,
    throttled,
)
from traffik.backends.base import Hit
from traffik.rates import Rate
from traffik.strategies.base import Params, Strategy

ClientFactory = Callable[..., TestClient]


class SpyBackend(InMemoryBackend):
    """An in-memory backend that records its calls."""

    def __init__(self, namespace: str, clock: ManualClock) -> None:
        super().__init__(namespace, clock=clock)
        self.calls: list[str] = []

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        self.calls.append(f"apply {key.split(':')[0]}")
        return await super().apply(key, strategy, rate, cost, params)

    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        self.calls.append("apply_many " + " ".join(hit.key.split(":")[0] for hit in hits))
        return await super().apply_many(hits)

    async def peek(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        self.calls.append(f"peek {key.split(':')[0]}")
        return await super().peek(key, strategy, rate, cost, params)

    async def refund(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> None:
        self.calls.append(f"refund {key.split(':')[0]}")
        await super().refund(key, strategy, rate, cost, params)


def test_as_a_dependency_every_request_passes_and_headers_tell_the_truth(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    trial = HTTPThrottle("trial", rate="2/min", shadow=True)
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/items", dependencies=[Depends(trial)])
    async def items(request: Request) -> dict[str, Any]:
        return {"throttled": is_throttled(request), "wait": get_retry_after(request)}

    client = client_for(app)
    responses = [client.get("/items") for _ in range(4)]
    assert [r.status_code for r in responses] == [200] * 4
    assert [r.json() for r in responses] == [{"throttled": False, "wait": 0.0}] * 4
    # What the limit would say: nothing left, whole again in 20 s (40 s into the minute).
    assert [r.headers["RateLimit"] for r in responses] == [
        '"trial";r=1;t=20',
        '"trial";r=0;t=20',
        '"trial";r=0;t=20',
        '"trial";r=0;t=20',
    ]
    assert all("Retry-After" not in r.headers for r in responses)  # nothing was refused


async def test_a_direct_call_lets_the_refusal_through_and_records_it(
    backend: InMemoryBackend,
) -> None:
    trial = HTTPThrottle("trial", rate="1/min", shadow=True, backend=backend)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "client": ("1.2.3.4", 1)}
    first = Request(scope)
    assert await trial.hit(first) is first
    admitted = get_decision(first, trial)
    assert admitted is not None
    assert admitted.allowed
    second = Request(dict(scope))
    assert await trial(second) is second  # never raises
    refusal = get_decision(second, trial)
    assert refusal is not None
    assert (refusal.allowed, refusal.retry_after) == (False, 20.0)


def test_the_decorator_on_fastapi_and_starlette(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    trial = HTTPThrottle("trial", rate="1/min", shadow=True)
    fast = FastAPI(lifespan=backend.lifespan)

    @fast.get("/a")
    @throttled(trial)
    async def endpoint() -> dict[str, bool]:
        return {"ok": True}

    @throttled(trial)
    async def plain(request: Request) -> Response:
        return PlainTextResponse("ok")

    slow = Starlette(routes=[Route("/b", plain)], lifespan=backend.lifespan)
    for app, path in ((fast, "/a"), (slow, "/b")):
        client = client_for(app)
        responses = [client.get(path) for _ in range(3)]
        assert [r.status_code for r in responses] == [200] * 3
        assert responses[-1].headers["RateLimit"] == '"trial";r=0;t=20'


def test_the_middleware(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    trial = HTTPThrottle("trial", rate="1/min", shadow=True)
    entry = MiddlewareThrottle(trial, "/api/")
    app = Starlette(
        routes=[Route("/api/x", lambda request: PlainTextResponse("ok"))],
        lifespan=backend.lifespan,
        middleware=[Middleware(ThrottleMiddleware, middleware_throttles=[entry])],
    )
    client = client_for(app)
    responses = [client.get("/api/x") for _ in range(3)]
    assert [r.status_code for r in responses] == [200] * 3
    assert responses[-1].headers["RateLimit"] == '"trial";r=0;t=20'
    assert "Retry-After" not in responses[-1].headers


def test_a_shadow_refusal_refunds_nothing_and_stops_no_other_limit(
    clock: ManualClock, client_for: ClientFactory
) -> None:
    spy = SpyBackend("spy", clock)
    real = HTTPThrottle("real", rate="3/min", backend=spy)
    trial = HTTPThrottle("trial", rate="1/min", backend=spy, shadow=True)
    app = FastAPI()

    @app.get("/items", dependencies=[Depends(real), Depends(trial)])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    client = client_for(app)
    responses = [client.get("/items") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    # The trial refused requests 2 and 3: the real limit was consumed all the same, and the
    # trial's refusal is in the headers. Request 4, refused by the real limit, only looked
    # at the trial (a refused request consumes nothing).
    assert [r.headers["RateLimit"] for r in responses[:3]] == [
        '"real";r=2;t=20, "trial";r=0;t=20',
        '"real";r=1;t=20, "trial";r=0;t=20',
        '"real";r=0;t=20, "trial";r=0;t=20',
    ]
    assert responses[3].headers["Retry-After"] == "20"
    assert responses[3].json()["detail"]  # the real limit's 429
    assert spy.calls == [*["apply real", "apply trial"] * 3, "apply real", "peek trial"]


def test_across_backends_a_shadow_refusal_gives_nothing_back(
    clock: ManualClock, client_for: ClientFactory
) -> None:
    left, right = SpyBackend("left", clock), SpyBackend("right", clock)
    real = HTTPThrottle("real", rate="5/min", backend=left)
    trial = HTTPThrottle("trial", rate="1/min", backend=right, shadow=True)
    app = FastAPI()

    @app.get("/items", dependencies=[Depends(real), Depends(trial)])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    client = client_for(app)
    assert [client.get("/items").status_code for _ in range(3)] == [200] * 3
    assert left.calls == ["apply real"] * 3
    assert right.calls == ["apply trial"] * 3


def test_a_refusal_from_a_dependency_after_the_middleware_keeps_the_rules(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    """The ledger gives back what earlier decisions consumed only for real refusals."""
    trial = HTTPThrottle("trial", rate="1/min", shadow=True, key_by="client")
    real = HTTPThrottle("real", rate="4/min", key_by="client")
    entry = MiddlewareThrottle(real)

    async def endpoint(request: Request) -> Response:
        await trial(request)
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[Route("/x", endpoint)],
        lifespan=backend.lifespan,
        middleware=[Middleware(ThrottleMiddleware, middleware_throttles=[entry])],
    )
    client = client_for(app)
    responses = [client.get("/x") for _ in range(3)]
    assert [r.status_code for r in responses] == [200] * 3
    assert responses[-1].headers["RateLimit"] == '"real";r=1;t=20, "trial";r=0;t=20'


def test_shadow_is_accepted_by_every_http_throttle() -> None:
    assert HTTPThrottle("a", rate="1/s", shadow=True).shadow
    assert ConcurrencyLimit("b", max_in_flight=1, shadow=True).shadow
    assert not HTTPThrottle("c", rate="1/s").shadow
    with pytest.raises(ConfigurationError, match="'on'"):
        HTTPThrottle("d", rate="1/s", shadow="on")  # type: ignore[arg-type]


def test_a_shadow_concurrency_limit_lets_the_second_request_in(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    one_at_a_time = ConcurrencyLimit("slots", max_in_flight=1, shadow=True)
    seen: list[Decision] = []
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/nested")
    async def nested(request: Request) -> dict[str, list[bool]]:
        async with one_at_a_time.slot(request) as outer:
            seen.append(outer)
            async with one_at_a_time.slot(request) as inner:  # a second slot, refused
                seen.append(inner)
        return {"allowed": [decision.allowed for decision in seen]}

    client = client_for(app)
    assert client.get("/nested").json() == {"allowed": [True, False]}
    seen.clear()
    # The slot taken was given back when the block ended: the next request finds it free.
    assert client.get("/nested").json() == {"allowed": [True, False]}

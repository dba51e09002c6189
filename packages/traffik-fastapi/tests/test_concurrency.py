"""ConcurrencyLimit: slots are released when the response ends, when the client
disconnects and when the handler is cancelled — whichever way the limit is applied."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message

from traffik import (
    ConcurrencyLimit,
    ConfigurationError,
    HTTPThrottle,
    InMemoryBackend,
    ManualClock,
    MiddlewareThrottle,
    ThrottleMiddleware,
    throttled,
)

ClientFactory = Callable[..., TestClient]


class Exchange:
    """One request driven by hand through an ASGI app, with a receive the test controls."""

    def __init__(self, app: Any, path: str = "/work", host: str = "10.0.0.1") -> None:
        self.app = app
        self.incoming: asyncio.Queue[Message] = asyncio.Queue()
        self.incoming.put_nowait({"type": "http.request", "body": b"", "more_body": False})
        self.sent: list[Message] = []
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"test")],
            "client": (host, 50000),
            "server": ("test", 80),
        }
        self.task: asyncio.Task[None] = asyncio.create_task(
            app(self.scope, self.incoming.get, self._send)
        )

    async def _send(self, message: Message) -> None:
        self.sent.append(message)

    def disconnect(self) -> None:
        self.incoming.put_nowait({"type": "http.disconnect"})

    @property
    def status(self) -> int | None:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        return int(starts[0]["status"]) if starts else None


async def free_slots(limit: ConcurrencyLimit, backend: InMemoryBackend, path: str = "/work") -> int:
    key = f"{limit.uid}:{{10.0.0.1}}:GET:{path}:concurrency"
    assert limit.rate is not None
    decision = await backend.peek(key, limit.strategy, limit.rate, 1, {})
    return decision.remaining + 1 if decision.allowed else decision.remaining


def blocking_endpoint(entered: asyncio.Event, gate: asyncio.Event) -> Any:
    async def work(request: Request) -> Response:
        entered.set()
        await gate.wait()
        return JSONResponse({"ok": True})

    return work


@pytest.fixture
def limit(backend: InMemoryBackend) -> ConcurrencyLimit:
    return ConcurrencyLimit("slots", max_in_flight=2, backend=backend)


def fastapi_depends(limit: ConcurrencyLimit, endpoint: Any, middleware: bool = False) -> FastAPI:
    app = FastAPI(middleware=[Middleware(ThrottleMiddleware)] if middleware else None)
    app.add_api_route("/work", endpoint, dependencies=[Depends(limit)])
    return app


def starlette_decorated(limit: ConcurrencyLimit, endpoint: Any) -> Starlette:
    return Starlette(routes=[Route("/work", throttled(limit)(endpoint))])


def starlette_middleware(limit: ConcurrencyLimit, endpoint: Any) -> Starlette:
    entries = [MiddlewareThrottle(limit, "/work")]
    return Starlette(
        routes=[Route("/work", endpoint)],
        middleware=[Middleware(ThrottleMiddleware, middleware_throttles=entries)],
    )


async def starlette_slot_endpoint(request: Request) -> Response:
    limit: ConcurrencyLimit = request.app.state.limit
    async with limit.slot(request):
        response: Response = await request.app.state.inner(request)
        return response


def starlette_slot(limit: ConcurrencyLimit, endpoint: Any) -> Starlette:
    app = Starlette(routes=[Route("/work", starlette_slot_endpoint)])
    app.state.limit = limit
    app.state.inner = endpoint
    return app


WAYS = {
    "depends": fastapi_depends,
    "decorator": starlette_decorated,
    "middleware": starlette_middleware,
    "slot": starlette_slot,
}


@pytest.mark.parametrize("way", sorted(WAYS))
async def test_slots_are_held_while_running_and_released_at_the_end(
    way: str, limit: ConcurrencyLimit, backend: InMemoryBackend
) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()
    app = WAYS[way](limit, blocking_endpoint(entered, gate))
    first = Exchange(app)
    await entered.wait()
    entered.clear()
    second = Exchange(app)
    await entered.wait()
    assert await free_slots(limit, backend) == 0
    third = Exchange(app)
    await third.task
    assert third.status == 429
    gate.set()
    await asyncio.gather(first.task, second.task)
    assert (first.status, second.status) == (200, 200)
    assert await free_slots(limit, backend) == 2


@pytest.mark.parametrize("way", sorted(WAYS))
async def test_a_cancelled_handler_releases_its_slot(
    way: str, limit: ConcurrencyLimit, backend: InMemoryBackend
) -> None:
    entered, never = asyncio.Event(), asyncio.Event()
    exchange = Exchange(WAYS[way](limit, blocking_endpoint(entered, never)))
    await entered.wait()
    assert await free_slots(limit, backend) == 1
    exchange.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await exchange.task
    assert await free_slots(limit, backend) == 2


@pytest.mark.parametrize("way", ["depends+middleware", "middleware"])
async def test_a_client_disconnect_releases_the_slot_while_the_handler_runs(
    way: str, limit: ConcurrencyLimit, backend: InMemoryBackend
) -> None:
    seen: list[int] = []

    async def work(request: Request) -> Response:
        await request.receive()  # the (empty) body
        message = await request.receive()  # blocks until the client goes away
        assert message["type"] == "http.disconnect"
        seen.append(await free_slots(limit, backend))  # the handler still runs
        return JSONResponse({"ok": True})

    if way == "middleware":
        app: Any = starlette_middleware(limit, work)
    else:
        app = fastapi_depends(limit, work, middleware=True)
    exchange = Exchange(app)
    for _ in range(100):
        if await free_slots(limit, backend) == 1:
            break
        await asyncio.sleep(0)
    assert await free_slots(limit, backend) == 1
    exchange.disconnect()
    await exchange.task
    assert seen == [2]


async def test_a_streaming_response_releases_when_the_client_goes(
    limit: ConcurrencyLimit, backend: InMemoryBackend
) -> None:
    from starlette.responses import StreamingResponse

    streaming = asyncio.Event()

    async def chunks() -> Any:
        yield b"first"
        streaming.set()
        await asyncio.Event().wait()  # would stream forever

    async def work(request: Request) -> Response:
        return StreamingResponse(chunks())

    exchange = Exchange(starlette_middleware(limit, work))
    await streaming.wait()
    assert await free_slots(limit, backend) == 1
    exchange.disconnect()
    await exchange.task
    assert await free_slots(limit, backend) == 2


def test_concurrency_headers_and_batches_with_rate_limits(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    limit = ConcurrencyLimit("one-at-a-time", max_in_flight=1, backend=backend)
    rate = HTTPThrottle("per-minute", rate="1/min", backend=backend)
    app = FastAPI()

    @app.get("/work", dependencies=[Depends(limit), Depends(rate)])
    async def work() -> dict[str, bool]:
        return {"ok": True}

    client = client_for(app)
    ok = client.get("/work")
    assert ok.headers["ratelimit-policy"] == (
        '"one-at-a-time";q=1;qu="concurrent-requests", "per-minute";q=1;w=60'
    )
    assert ok.headers["ratelimit"] == '"one-at-a-time";r=0, "per-minute";r=0;t=20'
    refused = client.get("/work")
    assert refused.status_code == 429
    # Refused by the rate: the slot it was decided with was never taken.
    key = "one-at-a-time:{10.0.0.1}:GET:/work:concurrency"
    assert limit.rate is not None
    assert backend._entries.get(key) is None


def test_leases_free_a_crashed_holders_slot(backend: InMemoryBackend, clock: ManualClock) -> None:
    limit = ConcurrencyLimit("leased", max_in_flight=1, lease=10, backend=backend)
    key = "leased:{10.0.0.1}:GET:/work:concurrency"
    rate = limit.rate
    assert rate is not None

    async def scenario() -> None:
        assert (await backend.apply(key, limit.strategy, rate, 1, {})).allowed  # never released
        refused = await backend.apply(key, limit.strategy, rate, 1, {})
        assert not refused.allowed
        assert refused.retry_after == 1.0  # the hint, shorter than the lease
        clock.advance(10)
        assert (await backend.apply(key, limit.strategy, rate, 1, {})).allowed

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"max_in_flight": 0}, "max_in_flight must be >= 1, got 0"),
        ({"max_in_flight": 2.5}, "2.5"),
        ({"max_in_flight": 1, "lease": 0}, "lease must be a positive number of seconds, got 0"),
        ({"max_in_flight": 1, "retry_after": float("inf")}, "retry_after"),
    ],
)
def test_bad_concurrency_settings_are_named(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        ConcurrencyLimit("bad", **kwargs)

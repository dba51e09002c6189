"""A request leaves nothing for the cyclic garbage collector.

An object graph with a cycle (an outcome holding the request whose scope holds the
outcome, say) outlives its request until the collector runs, and costs every request the
collector's work: each way in, admitted and refused, must leave none. The control test
shows the check sees a cycle when there is one.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from starlette.types import ASGIApp, Message

from traffik import InMemoryBackend, ManualClock
from traffik.fastapi import HTTPThrottle, MiddlewareThrottle, ThrottleMiddleware, throttled

REQUESTS = 200


def scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/items",
        "raw_path": b"/items",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test.local")],
        "client": ("203.0.113.7", 50000),
        "server": ("test.local", 80),
    }


async def garbage_per_request(app: ASGIApp, status: int) -> float:
    """Objects the collector finds per request, after a warm-up, with it switched off."""
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(20):
        await app(scope(), receive, send)
    gc.collect()
    gc.disable()
    try:
        statuses.clear()
        for _ in range(REQUESTS):
            await app(scope(), receive, send)
        found = gc.collect()
    finally:
        gc.enable()
    assert statuses == [status] * REQUESTS
    return found / REQUESTS


def depends_app(throttle: HTTPThrottle) -> FastAPI:
    app = FastAPI()

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    return app


def middleware_app(throttle: HTTPThrottle) -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    async def items() -> dict[str, bool]:
        return {"ok": True}

    app.add_middleware(ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(throttle)])
    return app


def decorated_app(throttle: HTTPThrottle) -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    @throttled(throttle)
    async def items(request: Request) -> dict[str, bool]:
        return {"ok": True}

    return app


def two_limits_app(throttle: HTTPThrottle) -> FastAPI:
    other = HTTPThrottle(f"{throttle.uid}:other", rate="1000000/min", backend=throttle.backend)
    app = FastAPI()

    @app.get("/items", dependencies=[Depends(throttle), Depends(other)])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    return app


APPS: dict[str, Callable[[HTTPThrottle], FastAPI]] = {
    "depends": depends_app,
    "middleware": middleware_app,
    "decorator": decorated_app,
    "two limits": two_limits_app,
}


@pytest.mark.parametrize("way", sorted(APPS))
@pytest.mark.parametrize(("rate", "status"), [("1000000/min", 200), ("1/min", 429)])
async def test_a_request_leaves_no_garbage(way: str, rate: str, status: int) -> None:
    backend = InMemoryBackend(clock=ManualClock(1_000.0))
    throttle = HTTPThrottle(f"garbage:{way}:{status}", rate=rate, backend=backend)
    assert await garbage_per_request(APPS[way](throttle), status) == 0


async def test_the_check_sees_a_cycle() -> None:
    app = FastAPI()

    async def cyclic(request: Request) -> None:
        loop: list[Any] = []
        loop.append(loop)

    @app.get("/items", dependencies=[Depends(cyclic)])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    assert await garbage_per_request(app, 200) >= 1

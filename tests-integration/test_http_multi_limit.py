"""Several limits on one HTTP request decide all-or-nothing, on every backend kind.

Two limits, ``burst`` (2 per minute) and ``daily`` (5 per day), reach the same route in
every way the HTTP package offers. Whichever way, a request refused by one limit must
consume nothing from the other: the daily budget counts admitted requests only, and a
request refused by the daily budget leaves the burst budget untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from traffik import (
    ConcurrencyLimit,
    HTTPThrottle,
    ManualClock,
    MiddlewareThrottle,
    ThrottleBackend,
    ThrottleMiddleware,
    throttled,
)

BackendMaker = Callable[[ManualClock], Awaitable[ThrottleBackend]]

COMBINATIONS = [
    "depends+depends",
    "depends+decorator",
    "decorator(both)",
    "starlette-decorator(both)",
    "middleware+middleware",
    "middleware+depends",
    "depends+direct",
    "two-backends",
]


def build(combination: str, burst: HTTPThrottle, daily: HTTPThrottle) -> Any:
    async def stats(request: Request) -> Response:
        body = {}
        for throttle in (burst, daily):
            stat = await throttle.stat(request)
            assert stat is not None
            body[throttle.uid] = stat.remaining
        return JSONResponse(body)

    if combination == "starlette-decorator(both)":

        @throttled(burst, daily)
        async def starlette_items(request: Request) -> Response:
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/items", starlette_items), Route("/stats", stats)])

    if combination == "middleware+middleware":
        entries = [MiddlewareThrottle(burst, "/items"), MiddlewareThrottle(daily, "/items")]
    elif combination == "middleware+depends":
        entries = [MiddlewareThrottle(daily, "/items")]
    else:
        entries = []
    app = FastAPI(middleware=[Middleware(ThrottleMiddleware, middleware_throttles=entries)])
    app.add_route("/stats", stats)

    if combination in ("depends+depends", "two-backends"):
        app.get("/items", dependencies=[Depends(burst), Depends(daily)])(_ok)
    elif combination == "depends+decorator":
        app.get("/items", dependencies=[Depends(burst)])(throttled(daily)(_ok))
    elif combination == "decorator(both)":
        app.get("/items")(throttled(burst, daily)(_ok))
    elif combination == "middleware+middleware":
        app.get("/items")(_ok)
    elif combination == "middleware+depends":
        app.get("/items", dependencies=[Depends(burst)])(_ok)
    elif combination == "depends+direct":

        @app.get("/items", dependencies=[Depends(burst)])
        async def direct(request: Request) -> dict[str, bool]:
            await daily(request)
            return {"ok": True}

    return app


async def _ok() -> dict[str, bool]:
    return {"ok": True}


def client(app: Any, host: str = "10.1.0.1") -> httpx2.AsyncClient:
    transport = httpx2.ASGITransport(app=app, client=(host, 40000))
    return httpx2.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.parametrize("combination", COMBINATIONS)
async def test_a_refused_request_consumes_nothing_anywhere(
    combination: str, make_backend: BackendMaker
) -> None:
    clock = ManualClock(1_800_000_010.0)  # 10 s into a minute, hours before a new day
    backend = await make_backend(clock)
    other = await make_backend(clock) if combination == "two-backends" else backend
    settings: dict[str, Any] = {"key_by": "client", "use_method": False}
    burst = HTTPThrottle(f"burst-{combination}", rate="2/min", backend=backend, **settings)
    daily = HTTPThrottle(f"daily-{combination}", rate="5/d", backend=other, **settings)
    async with client(build(combination, burst, daily)) as http:

        async def round_of(count: int) -> list[int]:
            return [(await http.get("/items")).status_code for _ in range(count)]

        async def remaining() -> dict[str, int]:
            body = (await http.get("/stats")).json()
            return {"burst": body[burst.uid], "daily": body[daily.uid]}

        assert await round_of(4) == [200, 200, 429, 429]
        assert await remaining() == {"burst": 0, "daily": 3}  # refused by burst: daily intact
        clock.advance(60)
        assert await round_of(4) == [200, 200, 429, 429]
        assert await remaining() == {"burst": 0, "daily": 1}
        clock.advance(60)
        assert await round_of(2) == [200, 429]
        assert await remaining() == {"burst": 1, "daily": 0}  # refused by daily: burst intact


async def test_thousands_of_simultaneous_requests_admit_exactly_the_limits(
    make_backend: BackendMaker,
) -> None:
    clock = ManualClock(1_800_000_010.0)
    backend = await make_backend(clock)
    settings: dict[str, Any] = {"key_by": "client", "backend": backend}
    burst = HTTPThrottle("burst-crowd", rate="300/min", **settings)
    daily = HTTPThrottle("daily-crowd", rate="250/d", **settings)
    app = build("depends+depends", burst, daily)
    async with client(app) as http:
        responses = await asyncio.gather(*(http.get("/items") for _ in range(2000)))
        codes = [response.status_code for response in responses]
        assert codes.count(200) == 250
        assert codes.count(429) == 1750
        body = (await http.get("/stats")).json()
    # Only the admitted 250 consumed the burst budget.
    assert body == {burst.uid: 50, daily.uid: 0}


async def test_concurrency_slots_are_released_and_leases_expire(
    make_backend: BackendMaker,
) -> None:
    clock = ManualClock(1_800_000_010.0)
    backend = await make_backend(clock)
    limit = ConcurrencyLimit("in-flight", max_in_flight=1, lease=30, backend=backend)
    entered, finish = asyncio.Event(), asyncio.Event()
    app = FastAPI()

    @app.get("/work", dependencies=[Depends(limit)])
    async def work() -> dict[str, bool]:
        entered.set()
        await finish.wait()
        return {"ok": True}

    async with client(app) as http:
        first = asyncio.create_task(http.get("/work"))
        await entered.wait()
        second = await http.get("/work")
        assert second.status_code == 429
        assert second.headers["ratelimit"] == '"in-flight";r=0'
        assert second.headers["ratelimit-policy"] == '"in-flight";q=1;qu="concurrent-requests"'
        finish.set()
        assert (await first).status_code == 200
        entered.clear()
        finish.clear()
        third = asyncio.create_task(http.get("/work"))
        await entered.wait()  # the slot came back
        finish.set()
        assert (await third).status_code == 200

    # A holder that crashed never gives its slot back; the lease frees it.
    key = "in-flight:{10.1.0.1}:GET:/work:concurrency"
    assert limit.rate is not None
    taken = await backend.apply(key, limit.strategy, limit.rate, 1, {})
    assert taken.allowed
    assert not (await backend.peek(key, limit.strategy, limit.rate, 1, {})).allowed
    clock.advance(30)
    assert (await backend.peek(key, limit.strategy, limit.rate, 1, {})).allowed

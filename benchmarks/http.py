"""(b) A FastAPI route behind ``Depends(throttle)``, and (c) behind `ThrottleMiddleware`.

Requests are driven in process through ASGI — ``await app(scope, receive, send)``, no
network, no HTTP client — so the figures are the framework's work and ours alone. Every
route returns the same small JSON body; every request comes from one client, so one key
is checked, on the in-memory backend, with the rate-limit headers on (the default), at a
rate that never refuses. Each contender's status is checked after each batch: a 429 or a
500 would make a fast but meaningless figure.

(b) The floor is the route with a no-op dependency (``Depends(async def f(request:
Request))``): FastAPI's own price for any dependency, which a throttle used as a
dependency cannot avoid. (c) The floor is the bare route.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.types import ASGIApp, Message

from benchmarks.contenders import PLENTY
from benchmarks.harness import Contender, Measure, Section, Settings, Target, compare
from benchmarks.references import HandWrittenMiddleware, hand_written, hand_written_on_ours
from traffik import HTTPThrottle, MiddlewareThrottle, ThrottleMiddleware
from traffik.backends.inmemory import InMemoryBackend

__all__ = ["dependency_section", "middleware_section"]

REQUESTS_PER_ROUND = 1_000
TARGET = Target(1.10)
ON_OURS = (
    "a reference: the row above, recording the request in our `RequestLedger` and counting "
    "in our `InMemoryBackend` (`FixedWindow`)"
)


def asgi_get(app: ASGIApp, path: str, expected_status: int = 200) -> Measure:
    """``GET path`` through ``app`` in process, ``n`` times; seconds per request."""
    template: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench.local"), (b"accept", b"application/json")],
        "client": ("203.0.113.7", 50000),
        "server": ("bench.local", 80),
    }
    statuses: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def measure(n: int) -> float:
        statuses.clear()
        started = time.perf_counter()
        for _ in range(n):
            await app(template.copy(), receive, send)
        elapsed = time.perf_counter() - started
        wrong = {status for status in statuses if status != expected_status}
        if wrong or len(statuses) != n:
            raise AssertionError(f"GET {path}: statuses {sorted(wrong)}, {len(statuses)}/{n}")
        return elapsed / n

    return measure


async def noop(request: Request) -> None:
    return None


def build_dependency_apps(backend: InMemoryBackend) -> dict[str, FastAPI]:
    """One app per contender, each with its one route at ``/items``: a router tries its
    routes in turn, so routes sharing an app would pay for their position in it."""
    throttle = HTTPThrottle("bench:depends", rate=PLENTY, backend=backend)
    quiet = HTTPThrottle("bench:quiet", rate=PLENTY, backend=backend, headers=False)
    dependencies: dict[str, list[Any]] = {
        "bare": [],
        "noop": [Depends(noop)],
        "throttled": [Depends(throttle)],
        "quiet": [Depends(quiet)],
        "hand": [Depends(hand_written)],
        "hand-on-ours": [Depends(hand_written_on_ours(backend))],
    }
    apps = {}
    for name, declared in dependencies.items():
        app = FastAPI()

        @app.get("/items", dependencies=declared)
        async def items() -> dict[str, bool]:
            return {"ok": True}

        apps[name] = app
    return apps


def build_middleware_apps(backend: InMemoryBackend) -> dict[str, FastAPI]:
    """The bare app, the app with a middleware throttle, the app with the middleware
    alone, and the apps behind the hand-written middleware (counting in a dict, and on
    our store and record)."""

    def base() -> FastAPI:
        app = FastAPI()

        @app.get("/items")
        async def items() -> dict[str, bool]:
            return {"ok": True}

        return app

    apps = {name: base() for name in ("bare", "throttled", "headers-only", "hand", "hand-on-ours")}
    throttle = HTTPThrottle("bench:middleware", rate=PLENTY, backend=backend)
    apps["throttled"].add_middleware(
        ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(throttle, "/items")]
    )
    apps["headers-only"].add_middleware(ThrottleMiddleware)
    apps["hand"].add_middleware(HandWrittenMiddleware)
    apps["hand-on-ours"].add_middleware(HandWrittenMiddleware, store=backend)
    return apps


def reference_rows(apps: dict[str, FastAPI], kind: str, what: str) -> list[Contender]:
    """A section's reference rows: the hand-written ``kind`` ("hand", doing ``what``) and
    the same on our store and record ("hand-on-ours")."""
    return [
        Contender(
            f"hand-written {kind}, same headers",
            asgi_get(apps["hand"], "/items"),
            note=f"a reference: {what}",
        ),
        Contender(
            f"hand-written {kind}, on our store and record",
            asgi_get(apps["hand-on-ours"], "/items"),
            note=ON_OURS,
        ),
    ]


async def dependency_section(settings: Settings) -> Section:
    section = Section(
        "b",
        "FastAPI route with `Depends(throttle)`",
        "time",
        "In-process ASGI requests (no network). Floor: the route with a no-op dependency "
        "`Depends(async def f(request: Request))`. Memory backend, one client, headers on.",
    )
    apps = build_dependency_apps(InMemoryBackend("bench-http"))
    floor = Contender("no-op `Depends` (floor)", asgi_get(apps["noop"], "/items"))
    contenders = [
        Contender(
            "bare route", asgi_get(apps["bare"], "/items"), note="FastAPI's price for a dependency"
        ),
        Contender("`Depends(throttle)`", asgi_get(apps["throttled"], "/items"), TARGET),
        Contender("`Depends(throttle)`, headers off", asgi_get(apps["quiet"], "/items")),
        *reference_rows(apps, "counter", "a dict counter and the five headers in one function"),
    ]
    section.rows = await compare(
        floor, contenders, rounds=settings.rounds, ops=settings.ops(REQUESTS_PER_ROUND)
    )
    return section


async def middleware_section(settings: Settings) -> Section:
    section = Section(
        "c",
        "FastAPI route behind `ThrottleMiddleware`",
        "time",
        "In-process ASGI requests (no network). Floor: the same route with no middleware. "
        "Memory backend, one client, headers on.",
    )
    apps = build_middleware_apps(InMemoryBackend("bench-middleware"))
    floor = Contender("bare route (floor)", asgi_get(apps["bare"], "/items"))
    contenders = [
        Contender("middleware throttle", asgi_get(apps["throttled"], "/items"), TARGET),
        Contender(
            "middleware, no throttles",
            asgi_get(apps["headers-only"], "/items"),
            note="writes the headers of the route's own throttles",
        ),
        *reference_rows(
            apps, "middleware", "a dict counter and the five headers in one ASGI middleware"
        ),
    ]
    section.rows = await compare(
        floor, contenders, rounds=settings.rounds, ops=settings.ops(REQUESTS_PER_ROUND)
    )
    return section

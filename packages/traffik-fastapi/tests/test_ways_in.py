"""Every way in, on FastAPI and on plain Starlette, with sync and async endpoints.

The same limit (2 per minute on ``/items/{item_id}``) is applied each way; each must
answer 200, 200, 429 (JSON body, ``Retry-After``, rate-limit headers), never run the
endpoint for a refused request, and keep one budget across item ids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from traffik import (
    ConnectionThrottled,
    HTTPThrottle,
    InMemoryBackend,
    MiddlewareThrottle,
    ThrottleMiddleware,
    throttled,
    throttled_exception_handler,
)

ClientFactory = Callable[..., TestClient]

WAYS = [
    ("depends", "fastapi", "async"),
    ("depends", "fastapi", "sync"),
    ("decorator", "fastapi", "async"),
    ("decorator", "fastapi", "sync"),
    ("decorator", "starlette", "async"),
    ("decorator", "starlette", "sync"),
    ("middleware", "fastapi", "async"),
    ("middleware", "fastapi", "sync"),
    ("middleware", "starlette", "async"),
    ("middleware", "starlette", "sync"),
    ("direct", "fastapi", "async"),
    ("direct", "starlette", "async"),
]


def build(
    way: str, framework: str, kind: str, backend: InMemoryBackend
) -> tuple[Starlette, list[int]]:
    throttle = HTTPThrottle(f"{way}-{framework}-{kind}", rate="2/min")
    ran: list[int] = []
    middleware = [
        Middleware(
            ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(throttle, "/items/")]
        )
    ]
    if framework == "fastapi":
        api = FastAPI(
            lifespan=backend.lifespan, middleware=middleware if way == "middleware" else None
        )
        dependencies = [Depends(throttle)] if way == "depends" else None
        if way == "direct":

            @api.get("/items/{item_id}")
            async def direct(item_id: int, request: Request) -> dict[str, int]:
                await throttle(request)
                ran.append(item_id)
                return {"id": item_id}

        elif kind == "async":

            async def endpoint(item_id: int) -> dict[str, int]:
                ran.append(item_id)
                return {"id": item_id}

            chosen = throttled(throttle)(endpoint) if way == "decorator" else endpoint
            api.get("/items/{item_id}", dependencies=dependencies)(chosen)
        else:

            def sync_endpoint(item_id: int) -> dict[str, int]:
                ran.append(item_id)
                return {"id": item_id}

            chosen_sync = (
                throttled(throttle)(sync_endpoint) if way == "decorator" else sync_endpoint
            )
            api.get("/items/{item_id}", dependencies=dependencies)(chosen_sync)
        return api, ran

    if way == "direct":

        async def starlette_direct(request: Request) -> Response:
            await throttle(request)
            ran.append(int(request.path_params["item_id"]))
            return JSONResponse({"id": request.path_params["item_id"]})

        endpoint_any: Any = starlette_direct
    elif kind == "async":

        async def starlette_async(request: Request) -> Response:
            ran.append(int(request.path_params["item_id"]))
            return JSONResponse({"id": request.path_params["item_id"]})

        endpoint_any = starlette_async
    else:

        def starlette_sync(request: Request) -> Response:
            ran.append(int(request.path_params["item_id"]))
            return JSONResponse({"id": request.path_params["item_id"]})

        endpoint_any = starlette_sync
    if way == "decorator":
        endpoint_any = throttled(throttle)(endpoint_any)
    app = Starlette(
        routes=[Route("/items/{item_id:int}", endpoint_any)],
        lifespan=backend.lifespan,
        middleware=middleware if way == "middleware" else None,
        exception_handlers=(
            {ConnectionThrottled: throttled_exception_handler} if way == "direct" else None
        ),
    )
    return app, ran


@pytest.mark.parametrize(("way", "framework", "kind"), WAYS)
def test_every_way_in(
    way: str, framework: str, kind: str, backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    app, ran = build(way, framework, kind, backend)
    client = client_for(app)
    first, second, third = (client.get(f"/items/{item}") for item in (1, 2, 3))
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 429)
    assert ran == [1, 2]
    assert third.json() == {"detail": "Too many requests. Retry in 20 seconds."}
    assert third.headers["retry-after"] == "20"
    assert third.headers["x-ratelimit-remaining"] == "0"
    assert third.headers["ratelimit"].endswith(";r=0;t=20")
    if way != "direct":  # a direct call has no response to put headers on
        assert first.headers["x-ratelimit-remaining"] == "1"
        assert second.headers["ratelimit"].endswith(";r=0;t=20")


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_decorated_starlette_class_endpoints(
    kind: str, backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle(f"class-{kind}", rate="1/min")

    if kind == "async":

        class Items(HTTPEndpoint):
            @throttled(throttle)
            async def get(self, request: Request) -> Response:
                return JSONResponse({"ok": True})

    else:

        class Items(HTTPEndpoint):  # type: ignore[no-redef]
            @throttled(throttle)
            def get(self, request: Request) -> Response:
                return JSONResponse({"ok": True})

    client = client_for(Starlette(routes=[Route("/items", Items)], lifespan=backend.lifespan))
    assert client.get("/items").status_code == 200
    assert client.get("/items").status_code == 429


def test_a_starlette_app_that_renders_refusals_itself_gets_the_exception(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("own-render", rate="1/min")

    async def render(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConnectionThrottled)
        return JSONResponse({"mine": exc.violated_policies}, status_code=429)

    @throttled(throttle)
    async def items(request: Request) -> Response:
        return JSONResponse({})

    app = Starlette(
        routes=[Route("/items", items)],
        lifespan=backend.lifespan,
        exception_handlers={ConnectionThrottled: render},
    )
    client = client_for(app)
    client.get("/items")
    assert client.get("/items").json() == {"mine": ["own-render"]}


def test_decorators_stack_and_keep_the_signature(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    per_minute = HTTPThrottle("stack-minute", rate="3/min")
    per_hour = HTTPThrottle("stack-hour", rate="2/h")
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/items/{item_id}")
    @throttled(per_minute)
    @throttled(per_hour)
    async def get_item(item_id: int, q: str = "") -> dict[str, Any]:
        return {"id": item_id, "q": q}

    client = client_for(app)
    assert client.get("/items/1", params={"q": "x"}).json() == {"id": 1, "q": "x"}
    assert client.get("/items/2").status_code == 200
    refused = client.get("/items/3")
    assert refused.status_code == 429
    # The inner decorator's dependencies come first in the signature, so they run first.
    assert refused.headers["ratelimit-policy"] == '"stack-hour";q=2;w=3600, "stack-minute";q=3;w=60'
    params = app.openapi()["paths"]["/items/{item_id}"]["get"]["parameters"]
    assert [param["name"] for param in params] == ["item_id", "q"]


def test_throttled_needs_throttles() -> None:
    from traffik import ConfigurationError

    with pytest.raises(ConfigurationError, match="at least one"):
        throttled()
    with pytest.raises(ConfigurationError, match="'nope'"):
        throttled("nope")  # type: ignore[call-overload]

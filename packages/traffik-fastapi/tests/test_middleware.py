"""ThrottleMiddleware and MiddlewareThrottle: matching, budgets, rendering refusals."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from traffik import (
    ConfigurationError,
    ConnectionThrottled,
    HTTPThrottle,
    InMemoryBackend,
    MiddlewareThrottle,
    ThrottleMiddleware,
)

ClientFactory = Callable[..., TestClient]


async def echo(request: Request) -> Response:
    return PlainTextResponse(request.url.path)


def app_with(backend: InMemoryBackend, *entries: MiddlewareThrottle, **kwargs: Any) -> Starlette:
    routes = [
        Route(path, echo, methods=["GET", "POST"])
        for path in ("/api/a", "/api/b", "/api/v1/users/7/posts", "/health", "/static/x.css")
    ]
    return Starlette(
        routes=routes,
        lifespan=backend.lifespan,
        middleware=[Middleware(ThrottleMiddleware, middleware_throttles=list(entries), **kwargs)],
    )


def codes(client: TestClient, *requests: tuple[str, str]) -> list[int]:
    return [client.request(method, path).status_code for method, path in requests]


def test_a_prefix_is_one_budget(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    throttle = HTTPThrottle("prefix", rate="2/min")
    client = client_for(app_with(backend, MiddlewareThrottle(throttle, "/api/")))
    assert codes(client, ("GET", "/api/a"), ("GET", "/api/b"), ("GET", "/api/a")) == [200, 200, 429]
    assert codes(client, ("GET", "/health"), ("POST", "/api/a")) == [200, 200]  # other path, method
    assert sorted(backend._entries) == [
        "prefix:{10.0.0.1}:GET:/api/:fixed_window",
        "prefix:{10.0.0.1}:POST:/api/:fixed_window",
    ]


def test_methods_and_use_method(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    throttle = HTTPThrottle("writes", rate="1/min", use_method=False)
    client = client_for(app_with(backend, MiddlewareThrottle(throttle, "/api/", methods=["post"])))
    assert codes(client, ("GET", "/api/a"), ("GET", "/api/a")) == [200, 200]
    assert codes(client, ("POST", "/api/a"), ("POST", "/api/b")) == [200, 429]


def test_globs(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    one_segment = HTTPThrottle("glob-one", rate="1/min")
    deep = HTTPThrottle("glob-deep", rate="1/min")
    client = client_for(
        app_with(
            backend,
            MiddlewareThrottle(one_segment, "/api/*"),
            MiddlewareThrottle(deep, "/api/v1/**"),
        )
    )
    assert codes(client, ("GET", "/api/a"), ("GET", "/api/b")) == [200, 429]  # "*": one segment
    assert codes(client, ("GET", "/api/v1/users/7/posts")) == [200]  # not "/api/*"; "/api/v1/**"
    assert codes(client, ("GET", "/api/v1/users/7/posts")) == [429]


def test_regular_expressions(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    styles = HTTPThrottle("styles", rate="1/min")
    users = HTTPThrottle("users", rate="1/min")
    client = client_for(
        app_with(
            backend,
            MiddlewareThrottle(styles, r"/static/.+\.css$"),
            MiddlewareThrottle(users, re.compile(r"/api/v\d+/users/")),
        )
    )
    assert codes(client, ("GET", "/static/x.css"), ("GET", "/static/x.css")) == [200, 429]
    assert codes(client, ("GET", "/api/v1/users/7/posts"), ("GET", "/api/v1/users/7/posts")) == [
        200,
        429,
    ]


@pytest.mark.parametrize("asynchronous", [True, False])
def test_predicates(
    asynchronous: bool, backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    def anonymous(connection: HTTPConnection) -> bool:
        return "authorization" not in connection.headers

    async def async_anonymous(connection: HTTPConnection) -> bool:
        return anonymous(connection)

    throttle = HTTPThrottle(f"anon-{asynchronous}", rate="1/min")
    entry = MiddlewareThrottle(throttle, predicate=async_anonymous if asynchronous else anonymous)
    client = client_for(app_with(backend, entry))
    signed = {"authorization": "Bearer x"}
    assert [client.get("/health", headers=signed).status_code for _ in range(3)] == [200] * 3
    assert codes(client, ("GET", "/health"), ("GET", "/health")) == [200, 429]


def test_key_by_path_and_client(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    per_path = HTTPThrottle("per-path", rate="1/min", key_by="path")
    per_client = HTTPThrottle("per-client", rate="3/min", key_by="client", use_method=False)
    client = client_for(
        app_with(backend, MiddlewareThrottle(per_path, "/api/"), MiddlewareThrottle(per_client))
    )
    assert codes(client, ("GET", "/api/a"), ("GET", "/api/b"), ("GET", "/api/a")) == [200, 200, 429]
    assert codes(client, ("POST", "/health")) == [200]
    assert codes(client, ("GET", "/health")) == [429]  # three of three, across everything
    assert "per-client:{10.0.0.1}:fixed_window" in backend._entries


def test_a_refusal_from_the_middleware_is_json_and_skips_the_app(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    ran: list[str] = []

    async def counted(request: Request) -> Response:
        ran.append(request.url.path)
        return PlainTextResponse("ok")

    throttle = HTTPThrottle("gate", rate="1/min")
    app = Starlette(
        routes=[Route("/", counted)],
        lifespan=backend.lifespan,
        middleware=[
            Middleware(ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(throttle)])
        ],
    )
    client = client_for(app)
    client.get("/")
    refused = client.get("/")
    assert refused.status_code == 429
    assert refused.json() == {"detail": "Too many requests. Retry in 20 seconds."}
    assert ran == ["/"]


def test_the_applications_handlers_render_middleware_refusals(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("fastapi-gate", rate="1/min", context={"detail": "Slow down"})
    app = FastAPI(
        lifespan=backend.lifespan,
        middleware=[
            Middleware(
                ThrottleMiddleware,
                middleware_throttles=[MiddlewareThrottle(throttle, context={"status_code": 503})],
            )
        ],
    )

    @app.get("/")
    async def index() -> dict[str, bool]:
        return {"ok": True}

    client = client_for(app)
    client.get("/")
    refused = client.get("/")
    assert refused.status_code == 503  # the middleware throttle's context over the throttle's
    assert refused.json() == {"detail": "Slow down"}  # FastAPI's HTTPException handler

    def plain(request: Request, exc: Exception) -> Response:  # a sync handler works too
        assert isinstance(exc, ConnectionThrottled)
        assert exc.headers is not None
        return PlainTextResponse(f"wait {exc.headers['Retry-After']}", status_code=429)

    app2 = app_with(backend, MiddlewareThrottle(HTTPThrottle("starlette-gate", rate="1/min")))
    app2.add_exception_handler(ConnectionThrottled, plain)
    other = client_for(app2)
    other.get("/health")
    assert other.get("/health").text == "wait 20"


def test_a_handler_raising_another_http_error(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    async def forbid(*args: Any) -> None:
        raise HTTPException(403, "Banned for a while")

    throttle = HTTPThrottle("ban", rate="1/min", handle_throttled=forbid)
    client = client_for(app_with(backend, MiddlewareThrottle(throttle)))
    client.get("/health")
    refused = client.get("/health")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Banned for a while"}
    assert refused.headers["retry-after"] == "20"


def test_without_throttles_it_passes_everything_through(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    client = client_for(app_with(backend))
    response = client.get("/health")
    assert response.text == "/health"
    assert "ratelimit" not in response.headers


def test_nested_middlewares_share_the_request(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    outer = HTTPThrottle("outer", rate="5/min")
    inner = HTTPThrottle("inner", rate="1/min")
    app = Starlette(
        routes=[Route("/", echo)],
        lifespan=backend.lifespan,
        middleware=[
            Middleware(ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(outer)]),
            Middleware(ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(inner)]),
        ],
    )
    client = client_for(app)
    assert client.get("/").headers["ratelimit"] == '"outer";r=4;t=20, "inner";r=0;t=20'
    refused = client.get("/")
    assert refused.status_code == 429
    # Refused by the inner limit: the outer one gave back what it had taken.
    assert refused.headers["ratelimit"] == '"outer";r=4;t=20, "inner";r=0;t=20'


def test_websockets_and_lifespan_pass_through(backend: InMemoryBackend) -> None:
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    async def hello(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")
        await websocket.close()

    throttle = HTTPThrottle("ws", rate="1/min")
    app = Starlette(
        routes=[WebSocketRoute("/ws", hello)],
        lifespan=backend.lifespan,
        middleware=[
            Middleware(ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(throttle)])
        ],
    )
    with TestClient(app) as client:
        for _ in range(2):
            with client.websocket_connect("/ws") as websocket:
                assert websocket.receive_text() == "hi"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"path": "/api/("}, r"Path pattern '/api/\(' does not compile"),
        ({"path": ""}, "non-empty"),
        ({"methods": ["FETCH"]}, "'FETCH'"),
        ({"predicate": "yes"}, "'yes'"),
        ({"cost": -1}, "-1"),
        ({"context": "x"}, "'x'"),
    ],
)
def test_bad_middleware_throttles_are_named(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        MiddlewareThrottle(HTTPThrottle("bad", rate="1/s"), **kwargs)


def test_bad_middleware_configuration_is_named() -> None:
    with pytest.raises(ConfigurationError, match="'nope'"):
        MiddlewareThrottle("nope")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="'/api'"):
        ThrottleMiddleware(Starlette(), middleware_throttles=["/api"])  # type: ignore[list-item]


def test_stat_and_check_of_a_middleware_throttle(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("looked-at", rate="3/min")
    entry = MiddlewareThrottle(throttle, "/api/")
    seen: dict[str, Any] = {}

    async def look(request: Request) -> Response:
        stat = await entry.stat(request)
        assert stat is not None
        seen.update(remaining=stat.remaining, check=await entry.check(request, cost=3))
        return PlainTextResponse("")

    app = Starlette(
        routes=[Route("/api/look", look)],
        lifespan=backend.lifespan,
        middleware=[Middleware(ThrottleMiddleware, middleware_throttles=[entry])],
    )
    client_for(app).get("/api/look")
    assert seen == {"remaining": 2, "check": False}

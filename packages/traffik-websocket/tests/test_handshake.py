"""Handshakes: every way in, on FastAPI and on plain Starlette, with and without the
denial-response extension.

The same limit (2 connections per minute on ``/ws/{room}``) is applied each way: two
connections are accepted, the third is refused — with an HTTP 429 carrying
``Retry-After`` where the server supports denial responses, with close code 1008
otherwise — and the endpoint never runs for it. Rooms share one budget (the route).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.types import ASGIApp
from starlette.websockets import WebSocket, WebSocketDisconnect

from traffik import (
    ConnectionThrottled,
    HTTPThrottle,
    InMemoryBackend,
    ManualClock,
    MiddlewareThrottle,
    ThrottleMiddleware,
    WebSocketThrottle,
    throttled,
    throttled_problem_handler,
)

ClientFactory = Callable[..., TestClient]
Wrapper = Callable[[ASGIApp], ASGIApp]

WAYS = [
    ("depends", "fastapi"),
    ("decorator", "fastapi"),
    ("decorator", "starlette"),
    ("middleware", "fastapi"),
    ("middleware", "starlette"),
    ("direct", "fastapi"),
    ("direct", "starlette"),
]
IDS = [f"{way}-{framework}" for way, framework in WAYS]


def build(way: str, framework: str, throttle: WebSocketThrottle) -> tuple[ASGIApp, list[str]]:
    """An app limiting ``/ws/{room}`` with ``throttle`` the given way; and the rooms its
    endpoint ran for."""
    ran: list[str] = []

    async def endpoint(websocket: WebSocket) -> None:
        if way == "direct":
            await throttle(websocket)
        await websocket.accept()
        ran.append(websocket.path_params["room"])
        await websocket.send_text("hello")
        await websocket.close()

    chosen = throttled(throttle)(endpoint) if way == "decorator" else endpoint
    middleware = (
        [
            Middleware(
                ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(throttle, "/ws/")]
            )
        ]
        if way == "middleware"
        else None
    )
    if framework == "fastapi":
        api = FastAPI(middleware=middleware)
        dependencies = [Depends(throttle)] if way == "depends" else None
        api.websocket("/ws/{room}", dependencies=dependencies)(chosen)
        return api, ran
    return Starlette(routes=[WebSocketRoute("/ws/{room}", chosen)], middleware=middleware), ran


def connects(client: TestClient, path: str) -> bool:
    """Whether a connection to ``path`` is accepted and greeted."""
    with client.websocket_connect(path) as websocket:
        greeting: str = websocket.receive_text()
        return greeting == "hello"


@pytest.mark.parametrize(("way", "framework"), WAYS, ids=IDS)
def test_over_the_limit_the_handshake_is_denied_with_429_and_retry_after(
    way: str,
    framework: str,
    backend: InMemoryBackend,
    clock: ManualClock,
    client_for: ClientFactory,
) -> None:
    throttle = WebSocketThrottle(f"connect-{way}-{framework}", rate="2/min", backend=backend)
    app, ran = build(way, framework, throttle)
    client = client_for(app)

    assert connects(client, "/ws/a")
    assert connects(client, "/ws/b")
    with pytest.raises(WebSocketDenialResponse) as refused:
        connects(client, "/ws/c")

    denial = refused.value
    assert denial.status_code == 429
    assert denial.headers["retry-after"] == "20"
    assert "Retry in 20 seconds" in denial.text
    assert ran == ["a", "b"]

    clock.advance(20)  # the next minute
    assert connects(client, "/ws/c")
    assert ran == ["a", "b", "c"]


@pytest.mark.parametrize(("way", "framework"), WAYS, ids=IDS)
def test_without_denial_responses_the_socket_is_closed_with_1008(
    way: str,
    framework: str,
    backend: InMemoryBackend,
    client_for: ClientFactory,
    without_denial_responses: Wrapper,
) -> None:
    throttle = WebSocketThrottle(f"close-{way}-{framework}", rate="2/min", backend=backend)
    app, ran = build(way, framework, throttle)
    client = client_for(without_denial_responses(app))

    assert connects(client, "/ws/a")
    assert connects(client, "/ws/b")
    with pytest.raises(WebSocketDisconnect) as closed:
        connects(client, "/ws/c")

    assert closed.value.code == 1008
    assert closed.value.reason == "Too many requests. Retry in 20 seconds."
    assert ran == ["a", "b"]


def test_the_denial_carries_the_rate_limit_headers(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = WebSocketThrottle("connect-headers", rate="1/min", backend=backend)
    app, _ = build("depends", "fastapi", throttle)
    client = client_for(app)
    assert connects(client, "/ws/a")
    with pytest.raises(WebSocketDenialResponse) as refused:
        connects(client, "/ws/a")
    headers = refused.value.headers
    assert headers["ratelimit-policy"] == '"connect-headers";q=1;w=60'
    assert headers["ratelimit"] == '"connect-headers";r=0;t=20'
    assert refused.value.json() == {"detail": "Too many requests. Retry in 20 seconds."}


def test_the_denial_carries_custom_headers(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    from traffik.fastapi import DEFAULT_HEADERS_THROTTLED, Header

    def peer(connection: Any, stat: Any, context: Any) -> str:
        return f"{connection.client.host}\r\nX-Injected: 1"

    custom = DEFAULT_HEADERS_THROTTLED | {"X-Peer": Header(peer, when="throttled")}
    throttle = WebSocketThrottle("connect-custom", rate="1/min", backend=backend, headers=custom)
    app, _ = build("depends", "fastapi", throttle)
    client = client_for(app)
    assert connects(client, "/ws/a")
    with pytest.raises(WebSocketDenialResponse) as refused:
        connects(client, "/ws/a")
    headers = refused.value.headers
    assert headers["x-ratelimit-limit"] == "1"
    assert headers["x-ratelimit-remaining"] == "0"
    assert headers.get_list("retry-after") == ["20"]
    assert headers["x-peer"] == "10.0.0.1X-Injected: 1"  # the resolver saw the socket
    assert "x-injected" not in headers
    assert "ratelimit" not in headers


def test_the_application_renders_the_denial_its_own_way(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = WebSocketThrottle("connect-problem", rate="1/min", backend=backend)

    @throttled(throttle)
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    app = Starlette(
        routes=[WebSocketRoute("/ws/{room}", endpoint)],
        exception_handlers={ConnectionThrottled: throttled_problem_handler},
    )
    client = client_for(app)
    assert connects(client, "/ws/a")
    with pytest.raises(WebSocketDenialResponse) as refused:
        connects(client, "/ws/a")
    assert refused.value.headers["content-type"] == "application/problem+json"
    assert refused.value.json()["violated-policies"] == ["connect-problem"]


def test_the_limits_of_a_route_are_decided_all_or_nothing(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    roomy = WebSocketThrottle("connect-roomy", rate="2/min", backend=backend)
    tight = WebSocketThrottle("connect-tight", rate="1/min", backend=backend)
    api = FastAPI()

    @api.websocket("/ws/{room}", dependencies=[Depends(roomy), Depends(tight)])
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    client = client_for(api)
    assert connects(client, "/ws/a")
    with pytest.raises(WebSocketDenialResponse):
        connects(client, "/ws/a")  # refused by the tight limit: the roomy one keeps its unit
    tight.disable()
    assert connects(client, "/ws/a")
    with pytest.raises(WebSocketDenialResponse):
        connects(client, "/ws/a")


def test_the_middleware_keeps_http_and_websocket_throttles_apart(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    requests = HTTPThrottle("mixed-http", rate="1/min", backend=backend)
    connections = WebSocketThrottle("mixed-ws", rate="1/min", backend=backend)

    async def page(request: object) -> object:
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("page")

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    app = Starlette(
        routes=[Route("/page", page), WebSocketRoute("/ws/{room}", endpoint)],
        middleware=[
            Middleware(
                ThrottleMiddleware,
                middleware_throttles=[
                    MiddlewareThrottle(requests),
                    MiddlewareThrottle(connections),
                ],
            )
        ],
    )
    client = client_for(app)
    assert client.get("/page").status_code == 200
    assert connects(client, "/ws/a")  # not counted by the HTTP limit
    assert client.get("/page").status_code == 429  # nor the request by the WebSocket one
    with pytest.raises(WebSocketDenialResponse):
        connects(client, "/ws/a")


def test_a_shadow_throttle_records_handshakes_but_refuses_none(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = WebSocketThrottle("connect-shadow", rate="1/min", backend=backend, shadow=True)
    api = FastAPI()
    standing: list[int] = []

    @api.websocket("/ws/{room}", dependencies=[Depends(throttle)])
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        stat = await throttle.stat(websocket)
        assert stat is not None
        standing.append(stat.remaining)
        await websocket.send_text("hello")
        await websocket.close()

    client = client_for(api)
    for _ in range(3):
        assert connects(client, "/ws/a")
    assert standing == [0, 0, 0]  # the first used the budget; the others were let through


@pytest.mark.parametrize("denials", [True, False], ids=["denial", "close"])
def test_a_websocket_endpoint_class_is_gated_at_on_connect(
    denials: bool,
    backend: InMemoryBackend,
    client_for: ClientFactory,
    without_denial_responses: Wrapper,
) -> None:
    from starlette.endpoints import WebSocketEndpoint

    throttle = WebSocketThrottle(f"connect-class-{denials}", rate="1/min", backend=backend)

    class Greeter(WebSocketEndpoint):
        @throttled(throttle)
        async def on_connect(self, websocket: WebSocket) -> None:
            await websocket.accept()
            await websocket.send_text("hello")

    app: ASGIApp = Starlette(routes=[WebSocketRoute("/ws/{room}", Greeter)])
    client = client_for(app if denials else without_denial_responses(app))
    assert connects(client, "/ws/a")
    if denials:
        with pytest.raises(WebSocketDenialResponse) as refused:
            connects(client, "/ws/a")
        assert refused.value.status_code == 429
    else:
        with pytest.raises(WebSocketDisconnect) as closed:
            connects(client, "/ws/a")
        assert closed.value.code == 1008

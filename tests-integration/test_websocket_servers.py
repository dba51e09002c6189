"""WebSocket throttling through a real server and a real client, on every backend kind.

Each test serves its application with uvicorn on a free loopback port, in the test's own
event loop (so the backend, the server and the client share it), and talks to it with
the `websockets` client. Time comes from a `ManualClock` on the backend: a window is
crossed by advancing it, never by waiting. uvicorn's proxy-header handling is off, so
client addresses are whatever the throttles' identifiers make of the connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from traffik import (
    Decision,
    ManualClock,
    MiddlewareThrottle,
    ThrottleBackend,
    ThrottleMiddleware,
    WebSocketThrottle,
    get_decision,
    is_throttled,
    message_size,
    remote_address,
    throttled,
)

BackendMaker = Callable[[ManualClock], Awaitable[ThrottleBackend]]  # the make_backend fixture

NOW = 1_700_001_820.0  # 40 s into a minute: a minute's budget is whole again in 20 s
NOTICE_20 = {"type": "rate_limit", "error": "Too many messages", "retry_after": 20}
WAYS = [
    ("depends", "fastapi"),
    ("decorator", "fastapi"),
    ("decorator", "starlette"),
    ("middleware", "fastapi"),
    ("middleware", "starlette"),
    ("direct", "fastapi"),
    ("direct", "starlette"),
]


@pytest.fixture(autouse=True)
def _no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Refusing a client must never surface as an error in the server."""
    caplog.set_level(logging.WARNING, logger="uvicorn")
    yield
    errors = [r.getMessage() for r in caplog.records if r.name.startswith("uvicorn")]
    assert errors == []


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields ``ws://host:port``."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_config=None, proxy_headers=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            if task.done():
                task.result()  # the server failed to start: say why
            await asyncio.sleep(0.005)
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()


def without_denial_responses(app: ASGIApp) -> ASGIApp:
    """``app`` as a server without the denial-response extension would run it."""

    async def stripped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            extensions = dict(scope.get("extensions") or {})
            extensions.pop("websocket.http.response", None)
            scope = {**scope, "extensions": extensions}
        await app(scope, receive, send)

    return stripped


async def greeted(url: str) -> bool:
    async with connect(url) as websocket:
        return await websocket.recv() == "hello"


async def talk(url: str, messages: Sequence[str | bytes], **options: Any) -> list[Any]:
    """Send each message on one connection; one reply each: the echo, or the notice."""
    replies: list[Any] = []
    async with connect(url, **options) as websocket:
        for message in messages:
            await websocket.send(message)
            reply = await websocket.recv(decode=True)
            assert isinstance(reply, str)
            replies.append(json.loads(reply) if reply.startswith("{") else reply)
    return replies


# -- handshakes --------------------------------------------------------------------------


def handshake_apps(backend: ThrottleBackend) -> tuple[Starlette, list[str]]:
    """Every way in, each its own app and its own 2-per-minute limit, mounted under
    ``/<way>-<framework>``; and the rooms their endpoints ran for."""
    ran: list[str] = []

    def greeter(way: str, throttle: WebSocketThrottle) -> Callable[[WebSocket], Awaitable[None]]:
        async def endpoint(websocket: WebSocket) -> None:
            if way == "direct":
                await throttle(websocket)
            await websocket.accept()
            ran.append(websocket.path_params["room"])
            await websocket.send_text("hello")
            await websocket.close()

        return endpoint

    mounts = []
    for way, framework in WAYS:
        name = f"{way}-{framework}"
        throttle = WebSocketThrottle(f"connect-{name}", rate="2/min", backend=backend)
        endpoint = greeter(way, throttle)
        chosen = throttled(throttle)(endpoint) if way == "decorator" else endpoint
        middleware = None
        if way == "middleware":
            entry = MiddlewareThrottle(throttle, "/ws/")
            middleware = [Middleware(ThrottleMiddleware, middleware_throttles=[entry])]
        app: ASGIApp
        if framework == "fastapi":
            api = FastAPI(middleware=middleware)
            dependencies = [Depends(throttle)] if way == "depends" else None
            api.websocket("/ws/{room}", dependencies=dependencies)(chosen)
            app = api
        else:
            app = Starlette(routes=[WebSocketRoute("/ws/{room}", chosen)], middleware=middleware)
        mounts.append(Mount(f"/{name}", app=app))
    return Starlette(routes=mounts), ran


async def test_refused_handshakes_get_429_with_retry_after(make_backend: BackendMaker) -> None:
    clock = ManualClock(NOW)
    app, ran = handshake_apps(await make_backend(clock))
    async with serve(app) as base:
        for way, framework in WAYS:
            url = f"{base}/{way}-{framework}/ws"
            assert await greeted(f"{url}/a")
            assert await greeted(f"{url}/b")
            with pytest.raises(InvalidStatus) as refused:
                await greeted(f"{url}/c")
            response = refused.value.response
            assert (way, response.status_code) == (way, 429)
            assert response.headers["Retry-After"] == "20"
            assert b"Retry in 20 seconds" in response.body
        assert ran == ["a", "b"] * len(WAYS)

        clock.advance(20)  # the next minute
        for way, framework in WAYS:
            assert await greeted(f"{base}/{way}-{framework}/ws/c")


async def test_without_denial_responses_refused_handshakes_are_closed_with_1008(
    make_backend: BackendMaker,
) -> None:
    app, ran = handshake_apps(await make_backend(ManualClock(NOW)))
    async with serve(without_denial_responses(app)) as base:
        for way, framework in WAYS:
            url = f"{base}/{way}-{framework}/ws"
            assert await greeted(f"{url}/a")
            assert await greeted(f"{url}/b")
            with pytest.raises(ConnectionClosed) as closed:
                await greeted(f"{url}/c")
            frame = closed.value.rcvd
            assert frame is not None
            assert (way, frame.code) == (way, 1008)
            assert frame.reason == "Too many requests. Retry in 20 seconds."
        assert ran == ["a", "b"] * len(WAYS)


# -- messages ----------------------------------------------------------------------------


def echo_app(
    check: Callable[[WebSocket, str | bytes], Awaitable[Any]],
    framework: str,
    *,
    gate: WebSocketThrottle | None = None,
) -> ASGIApp:
    """Echoes each message ``check`` lets through; a refused one is skipped."""

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("text")
                if data is None:
                    data = message["bytes"]
                await check(websocket, data)
                if not is_throttled(websocket):
                    await websocket.send_text(f"echo:{len(data)}")
        except WebSocketDisconnect:
            pass

    if framework == "fastapi":
        api = FastAPI()
        api.websocket("/ws", dependencies=[Depends(gate)] if gate else None)(endpoint)
        return api
    chosen = throttled(gate)(endpoint) if gate else endpoint
    return Starlette(routes=[WebSocketRoute("/ws", chosen)])


@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
async def test_messages_over_the_limit_get_notices_then_recover(
    make_backend: BackendMaker, framework: str
) -> None:
    clock = ManualClock(NOW)
    throttle = WebSocketThrottle("messages", rate="3/min", backend=await make_backend(clock))
    async with serve(echo_app(throttle, framework)) as base, connect(f"{base}/ws") as websocket:
        replies = []
        for message in "abcde":
            await websocket.send(message)
            replies.append(await websocket.recv())
        assert replies[:3] == ["echo:1"] * 3
        assert [json.loads(reply) for reply in replies[3:]] == [NOTICE_20, NOTICE_20]

        clock.advance(20)  # the socket stayed open; the next minute's budget
        await websocket.send("f")
        assert await websocket.recv() == "echo:1"


async def test_byte_budgets(make_backend: BackendMaker) -> None:
    clock = ManualClock(NOW)
    volume = WebSocketThrottle(
        "volume", rate="1000/min", backend=await make_backend(clock), cost=message_size
    )
    async with serve(echo_app(volume, "starlette")) as base:
        big, small = b"\x00" * 600, "x" * 300
        assert await talk(f"{base}/ws", [big, small, small]) == [
            "echo:600", "echo:300", NOTICE_20,
        ]  # fmt: skip
        assert await talk(f"{base}/ws", ["y" * 100, "z"]) == ["echo:100", NOTICE_20]
        assert await talk(f"{base}/ws", [b"\x01" * 1001]) == [{**NOTICE_20, "retry_after": None}]
        clock.advance(20)
        assert await talk(f"{base}/ws", [b"\x01" * 1000]) == ["echo:1000"]


async def test_clients_are_keyed_apart_by_trusted_proxy_headers(
    make_backend: BackendMaker,
) -> None:
    throttle = WebSocketThrottle(
        "clients",
        rate="2/min",
        backend=await make_backend(ManualClock(NOW)),
        identifier=remote_address(["127.0.0.1"]),  # the test client stands for a proxy
    )
    async with serve(echo_app(throttle, "fastapi")) as base:

        def forwarded(client: str) -> dict[str, Any]:
            return {"additional_headers": {"X-Forwarded-For": client}}

        alice, bob = forwarded("203.0.113.1"), forwarded("203.0.113.2")
        assert await talk(f"{base}/ws", "abc", **alice) == ["echo:1", "echo:1", NOTICE_20]
        assert await talk(f"{base}/ws", "abc", **bob) == ["echo:1", "echo:1", NOTICE_20]
        assert await talk(f"{base}/ws", "a", **alice) == [NOTICE_20]


@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
async def test_the_identifier_runs_once_per_connection(
    make_backend: BackendMaker, framework: str
) -> None:
    calls: list[str] = []

    async def identify(websocket: WebSocket) -> str:
        calls.append(websocket.url.path)
        return "user-7"

    backend = await make_backend(ManualClock(NOW))
    gate = WebSocketThrottle("gate", rate="10/min", backend=backend, identifier=identify)
    messages = WebSocketThrottle("per-conn", rate="2/min", backend=backend, identifier=identify,
                                 key_by="connection")  # fmt: skip
    async with serve(echo_app(messages, framework, gate=gate)) as base:
        assert await talk(f"{base}/ws", "abcd") == ["echo:1", "echo:1", NOTICE_20, NOTICE_20]
        assert calls == ["/ws"]
        assert await talk(f"{base}/ws", "ab") == ["echo:1", "echo:1"]  # a new connection
        assert calls == ["/ws", "/ws"]


async def test_a_shadow_throttle_never_refuses(make_backend: BackendMaker) -> None:
    throttle = WebSocketThrottle(
        "shadow", rate="1/min", backend=await make_backend(ManualClock(NOW)), shadow=True
    )
    decisions: list[Decision] = []

    async def check(websocket: WebSocket, data: str | bytes) -> None:
        await throttle(websocket, data)
        decision = get_decision(websocket, throttle)
        assert decision is not None
        decisions.append(decision)

    async with serve(echo_app(check, "fastapi", gate=throttle)) as base:
        assert await talk(f"{base}/ws", "abc") == ["echo:1"] * 3
        assert await talk(f"{base}/ws", "d") == ["echo:1"]  # the handshake was not refused
    assert [decision.allowed for decision in decisions] == [False] * 4  # the gate used it up


async def test_a_notice_to_a_client_gone_away_raises_nothing(make_backend: BackendMaker) -> None:
    throttle = WebSocketThrottle("gone", rate="1/min", backend=await make_backend(ManualClock(NOW)))
    client_gone, finished = asyncio.Event(), asyncio.Event()
    survived: list[tuple[bool, WebSocketState]] = []
    api = FastAPI()

    @api.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        try:
            await websocket.accept()
            await throttle(websocket, await websocket.receive_text())
            await websocket.send_text("ok")
            data = await websocket.receive_text()
            await client_gone.wait()  # the client has closed: the notice cannot be delivered
            await throttle(websocket, data)
            survived.append((is_throttled(websocket), websocket.application_state))
        finally:
            finished.set()

    async with serve(api) as base:
        async with connect(f"{base}/ws") as websocket:
            await websocket.send("a")
            assert await websocket.recv() == "ok"
            await websocket.send("b")
        client_gone.set()
        await asyncio.wait_for(finished.wait(), timeout=10)
    # Refused, and sending the notice failed (the socket is now known to be closed).
    assert survived == [(True, WebSocketState.DISCONNECTED)]


@pytest.mark.parametrize("code", [1008, 1013])
async def test_a_throttle_may_close_the_socket_instead(
    make_backend: BackendMaker, code: int
) -> None:
    throttle = WebSocketThrottle(
        f"close-{code}", rate="1/min", backend=await make_backend(ManualClock(NOW)),
        close_code=code,
    )  # fmt: skip
    async with serve(echo_app(throttle, "starlette")) as base:
        async with connect(f"{base}/ws") as websocket:
            await websocket.send("a")
            assert await websocket.recv() == "echo:1"
            await websocket.send("b")
            with pytest.raises(ConnectionClosed) as closed:
                await websocket.recv()
        frame = closed.value.rcvd
        assert frame is not None
        assert (frame.code, frame.reason) == (code, "Too many messages")

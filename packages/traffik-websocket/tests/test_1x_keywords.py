"""traffik 1.x keywords of `WebSocketThrottle`, written the 1.x way: ``skip_handler`` (at
construction and per call) records a refused message without sending the notice;
``min_wait_period`` (milliseconds) floors the notice's ``retry_after``; ``cache_ids=False``
is refused, naming why."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from traffik import InMemoryBackend, ThrottleRegistry, WebSocketThrottle, is_throttled
from traffik._legacy_keywords import LegacyError

ClientFactory = Callable[..., TestClient]


def app_checking(check: Callable[[WebSocket], Any]) -> FastAPI:
    """Each text message is checked with ``check(websocket)``; a refused one is answered
    ``"throttled"`` by the endpoint itself, the others are echoed."""
    app = FastAPI()

    @app.websocket("/ws")
    async def ws_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            async for data in websocket.iter_text():
                await check(websocket)
                if is_throttled(websocket):
                    await websocket.send_text("throttled")
                    continue
                await websocket.send_text("echo:" + data)
        except WebSocketDisconnect:
            pass

    return app


def replies(client: TestClient, count: int) -> list[Any]:
    received: list[Any] = []
    with client.websocket_connect("/ws") as websocket:
        for number in range(count):
            websocket.send_text(str(number))
            reply = websocket.receive_text()
            received.append(json.loads(reply) if reply.startswith("{") else reply)
    return received


def test_skip_handler_at_construction(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    ws_throttle = WebSocketThrottle(
        "ws:skip", rate="2/min", backend=backend, skip_handler=True, registry=ThrottleRegistry()
    )
    client = client_for(app_checking(ws_throttle))
    # No notice: the endpoint answers the refused message itself.
    assert replies(client, 3) == ["echo:0", "echo:1", "throttled"]


def test_skip_handler_per_call(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    ws_throttle = WebSocketThrottle(
        "ws:skip-call", rate="2/min", backend=backend, registry=ThrottleRegistry()
    )

    async def check(websocket: WebSocket) -> None:
        await ws_throttle(websocket, skip_handler=True)

    client = client_for(app_checking(check))
    assert replies(client, 3) == ["echo:0", "echo:1", "throttled"]


def test_min_wait_period_floors_the_notice(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    ws_throttle = WebSocketThrottle(
        "ws:floor",
        rate="2/s",
        backend=backend,
        min_wait_period=30_000,  # milliseconds, as in 1.x
        registry=ThrottleRegistry(),
    )
    client = client_for(app_checking(ws_throttle))
    received = replies(client, 3)
    assert received[:2] == ["echo:0", "echo:1"]
    # The default handler's notice, then the endpoint's own reply to the refused message.
    assert received[2] == {"type": "rate_limit", "error": "Too many messages", "retry_after": 30}


def test_cache_ids_false_is_refused(backend: InMemoryBackend) -> None:
    with pytest.raises(LegacyError, match="once per connection for a WebSocket"):
        WebSocketThrottle("ws:ids", rate="2/min", cache_ids=False, registry=ThrottleRegistry())  # type: ignore[arg-type]

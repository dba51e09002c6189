"""WebSocket callbacks: the traffik 1.x ``handle_throttled(websocket, wait_ms, throttle,
context)`` and cost / identifier functions ``(websocket, context)`` keep their 1.x
meaning; ``on_throttled`` takes the `Decision`; `MessageCost` weighs the message; other
signatures are refused when the throttle is built."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from traffik import ConfigurationError, Decision, InMemoryBackend, WebSocketThrottle, is_throttled
from traffik.websocket import MessageCost

ClientFactory = Callable[..., TestClient]


def echo_app(throttle: WebSocketThrottle) -> FastAPI:
    """Checks each text message (passing it to the throttle) and echoes what passes."""
    app = FastAPI()

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            async for data in websocket.iter_text():
                await throttle(websocket, data)
                if not is_throttled(websocket):
                    await websocket.send_text("echo:" + data)
        except WebSocketDisconnect:
            pass

    return app


def exchange(client: TestClient, messages: list[str]) -> list[Any]:
    replies: list[Any] = []
    with client.websocket_connect("/ws") as websocket:
        for message in messages:
            websocket.send_text(message)
            reply = websocket.receive_text()
            replies.append(json.loads(reply) if reply.startswith("{") else reply)
    return replies


def test_handle_throttled_the_1x_way(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    waits: list[float] = []

    # From the 1.x docs ("Custom Throttled Handlers", option 1).
    async def ws_rate_limit_handler(websocket, wait_ms, throttle, context):  # type: ignore[no-untyped-def]
        waits.append(wait_ms)
        retry_after = math.ceil(wait_ms / 1000)

        if websocket.application_state == WebSocketState.CONNECTED:
            await websocket.send_json(
                {
                    "type": "rate_limit",
                    "error": "message_rate_exceeded",
                    "retry_after": retry_after,
                    "throttle": throttle.uid,
                }
            )

    throttle = WebSocketThrottle(
        "ws-cb:1x-handler", rate="1/min", backend=backend, handle_throttled=ws_rate_limit_handler
    )
    client = client_for(echo_app(throttle))
    notice = {
        "type": "rate_limit",
        "error": "message_rate_exceeded",
        "retry_after": 20,
        "throttle": "ws-cb:1x-handler",
    }
    assert exchange(client, ["a", "b"]) == ["echo:a", notice]
    assert waits == [20_000.0]  # milliseconds, as in 1.x


def test_on_throttled_gets_the_decision(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    async def note(
        websocket: WebSocket, decision: Decision, throttle: Any, context: Mapping[str, Any]
    ) -> None:
        await websocket.send_text(f"wait {decision.retry_after:g}")

    throttle = WebSocketThrottle(
        "ws-cb:on-throttled", rate="1/min", backend=backend, on_throttled=note
    )
    client = client_for(echo_app(throttle))
    assert exchange(client, ["a", "b"]) == ["echo:a", "wait 20"]


def test_cost_and_identifier_the_1x_way(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    contexts: list[Any] = []

    async def cost(connection: WebSocket, context: Any) -> int:
        contexts.append(context)
        return int((context or {}).get("weight", 1))

    identities: list[str] = []

    async def identifier(connection: WebSocket, context: Any) -> str:
        identity = f"{context['room']}:{connection.client.host if connection.client else '?'}"
        identities.append(identity)
        return identity

    throttle = WebSocketThrottle(
        "ws-cb:1x-cost", rate="4/min", backend=backend, cost=cost, identifier=identifier,
        context={"weight": 2, "room": "lobby"},
    )  # fmt: skip
    client = client_for(echo_app(throttle))
    replies = exchange(client, ["a", "b", "c"])
    assert replies[:2] == ["echo:a", "echo:b"]
    assert replies[2]["type"] == "rate_limit"
    assert contexts[0] == {"weight": 2, "room": "lobby"}  # the context, never the message
    assert identities == ["lobby:10.0.0.1"]  # once per connection


def test_a_message_cost_weighs_the_message(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    async def weigh(websocket: WebSocket, message: Any) -> int:
        return len(message or "")

    throttle = WebSocketThrottle(
        "ws-cb:message-cost", rate="5/min", backend=backend, cost=MessageCost(weigh)
    )
    client = client_for(echo_app(throttle))
    replies = exchange(client, ["abc", "de", "f"])
    assert replies[:2] == ["echo:abc", "echo:de"]
    assert replies[2]["type"] == "rate_limit"


async def three(connection: Any, context: Any, extra: Any) -> int:
    return 1


@pytest.mark.parametrize(
    ("settings", "shown"),
    [
        ({"cost": lambda: 1}, "async def cost(connection, context)  (traffik 1.x)"),
        ({"cost": three}, "async def cost(connection, context)  (traffik 1.x)"),
        ({"identifier": three}, "async def identifier(connection)"),
        ({"handle_throttled": lambda websocket: None}, "wait_ms: float"),
        ({"on_throttled": three}, "async def on_throttled(connection, decision"),
    ],
    ids=["cost-lambda", "cost-three", "identifier-three", "handler-one", "on-throttled-three"],
)
def test_wrong_signatures_are_refused(settings: dict[str, Any], shown: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        WebSocketThrottle("ws-cb:wrong", rate="1/min", **settings)
    assert shown in str(info.value)


def test_a_message_cost_takes_the_connection_and_the_message() -> None:
    with pytest.raises(ConfigurationError, match=r"async def weigh\(websocket, message\)"):
        MessageCost(lambda websocket: 1)  # type: ignore[arg-type,misc]

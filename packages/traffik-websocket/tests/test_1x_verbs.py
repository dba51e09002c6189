"""traffik 1.x's WebSocket verbs, written the 1.x way (from the 1.x docs: "Direct usage",
"Dependency injection"): ``await ws_throttle.hit(websocket)`` per message sends the
``rate_limit`` notice, ``websocket: WebSocket = Depends(ws_throttle)`` is the socket, and
``websocket_throttled(connection, wait_ms, throttle, context)`` takes milliseconds. Then the
2.x ways to the `Decision`.

Only the clock is injected (a manual one, so that a window never ends mid-test).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI, WebSocket
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from traffik import Decision, ManualClock
from traffik.backends.inmemory import InMemoryBackend
from traffik.fastapi import get_decision, get_retry_after, get_wait, is_throttled
from traffik.websocket import WebSocketThrottle, websocket_on_throttled, websocket_throttled

ClientFactory = Callable[..., TestClient]

NOTICE_20 = {"type": "rate_limit", "error": "Too many messages", "retry_after": 20}


def memory(clock: ManualClock) -> InMemoryBackend:
    return InMemoryBackend(namespace="inmemory", clock=clock)


def test_hit_per_message_sends_the_notice(clock: ManualClock, client_for: ClientFactory) -> None:
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)

    ws_throttle = WebSocketThrottle(uid="ws:messages", rate="2/min")
    closed: list[bool] = []

    @app.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()

        while True:
            message = await websocket.receive_text()

            # Record a hit for each message received
            await ws_throttle.hit(websocket)

            if is_throttled(websocket):
                # Client was notified by the throttle handler.
                await websocket.close(code=1008, reason="Rate limit exceeded")
                closed.append(True)
                return

            await websocket.send_text(f"Echo: {message}")

    client = client_for(app)
    with client.websocket_connect("/ws") as websocket:
        websocket.send_text("a")
        assert websocket.receive_text() == "Echo: a"
        websocket.send_text("b")
        assert websocket.receive_text() == "Echo: b"
        websocket.send_text("c")
        assert websocket.receive_json() == NOTICE_20
        with pytest.raises(WebSocketDisconnect) as ended:
            websocket.receive_text()
        assert ended.value.code == 1008
    assert closed == [True]


def test_depends_gives_the_socket(clock: ManualClock, client_for: ClientFactory) -> None:
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)

    ws_throttle = WebSocketThrottle(uid="ws:chat", rate="1/min")

    @app.websocket("/ws/chat")
    async def chat(websocket: WebSocket = Depends(ws_throttle)) -> None:  # noqa: B008
        await websocket.accept()
        data = await websocket.receive_text()
        await websocket.send_text(f"Echo: {data}")

    client = client_for(app)
    with client.websocket_connect("/ws/chat") as websocket:
        websocket.send_text("hello")
        assert websocket.receive_text() == "Echo: hello"
    # The second handshake is denied: an HTTP 429.
    with pytest.raises(WebSocketDenialResponse) as refused, client.websocket_connect("/ws/chat"):
        pass
    assert refused.value.status_code == 429
    assert refused.value.headers["Retry-After"] == "20"


def test_websocket_throttled_takes_milliseconds(
    clock: ManualClock, client_for: ClientFactory
) -> None:
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)
    waits: list[float] = []

    async def log_then_notify(
        connection: WebSocket, wait_ms: float, throttle: Any, context: Any
    ) -> None:
        waits.append(wait_ms)
        await websocket_throttled(connection, wait_ms, throttle, context)

    ws_throttle = WebSocketThrottle(
        uid="ws:logged",
        rate="1/min",
        handle_throttled=log_then_notify,
        context={"extras": {"hint": "slow down"}},
    )
    seen: list[tuple[bool, float, float]] = []

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await ws_throttle.hit(websocket)
            seen.append((is_throttled(websocket), get_wait(websocket), get_retry_after(websocket)))
            if not is_throttled(websocket):
                await websocket.send_text(text)

    client = client_for(app)
    with client.websocket_connect("/ws") as websocket:
        websocket.send_text("a")
        assert websocket.receive_text() == "a"
        websocket.send_text("b")
        assert websocket.receive_json() == {**NOTICE_20, "hint": "slow down"}
    assert waits == [20000.0]
    assert seen == [(False, 0.0, 0.0), (True, 20000.0, 20.0)]


# -- the Decision, the 2.x way -----------------------------------------------------------


def test_the_decision_of_a_message_and_of_the_handshake(
    clock: ManualClock, client_for: ClientFactory
) -> None:
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)
    gate = WebSocketThrottle("ws:gate", rate="5/min")
    messages = WebSocketThrottle("ws:each", rate="1/min", on_throttled=websocket_on_throttled)
    decided: list[tuple[bool, int]] = []

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket, handshake: Decision = Depends(gate.decision)) -> None:  # noqa: B008
        await websocket.accept()
        await websocket.send_json({"handshake_remaining": handshake.remaining})
        async for text in websocket.iter_text():
            assert await messages(websocket, text) is websocket
            decision = get_decision(websocket, messages)
            assert decision is not None
            decided.append((decision.allowed, decision.remaining))
            if not is_throttled(websocket):
                await websocket.send_text(text)

    client = client_for(app)
    with client.websocket_connect("/ws") as websocket:
        assert websocket.receive_json() == {"handshake_remaining": 4}
        websocket.send_text("a")
        assert websocket.receive_text() == "a"
        websocket.send_text("b")
        assert websocket.receive_json() == NOTICE_20
    assert decided == [(True, 0), (False, 0)]


async def test_decide_only_decides(clock: ManualClock) -> None:
    throttle = WebSocketThrottle("ws:direct", rate="1/min", backend=memory(clock))
    scope = {"type": "websocket", "path": "/ws", "headers": [], "client": ("1.2.3.4", 1)}

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        raise AssertionError(f"decide sent {message!r}")

    websocket = WebSocket(scope, receive, send)
    assert (await throttle.decide(websocket)).allowed
    refused = await throttle.decide(websocket)  # no notice, no denial, nothing recorded
    assert (refused.allowed, refused.retry_after) == (False, 20.0)
    assert not is_throttled(websocket)

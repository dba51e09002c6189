"""A quota context on a WebSocket: what a message costs is consumed once the work for it
succeeds; a refusal sends the usual JSON notice and consumes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from traffik import InMemoryBackend, WebSocketThrottle

ClientFactory = Callable[..., TestClient]


def test_a_message_costs_its_words_once_the_work_succeeds(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    app = FastAPI(lifespan=backend.lifespan)
    words = WebSocketThrottle("ws:words", rate="5/min", context={"error": "Too many words"})
    applied: list[int] = []

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            async for data in websocket.iter_text():
                async with words.quota(websocket) as quota:
                    for _ in data.split():
                        await quota(cost=1)  # one entry: the costs add up
                applied.append(quota.applied_cost)
                if quota.decisions[0].allowed:
                    await websocket.send_text("ok:" + data)
        except WebSocketDisconnect:
            pass

    replies: list[Any] = []
    with client_for(app).websocket_connect("/ws") as websocket:
        for message in ["one two", "three four", "five six", "seven"]:
            websocket.send_text(message)
            reply = websocket.receive_text()
            replies.append(json.loads(reply) if reply.startswith("{") else reply)
    assert replies == [
        "ok:one two",
        "ok:three four",
        {"type": "rate_limit", "error": "Too many words", "retry_after": 20},
        "ok:seven",  # the refused two words consumed nothing: the fifth word still fits
    ]
    assert applied == [2, 2, 0, 1]

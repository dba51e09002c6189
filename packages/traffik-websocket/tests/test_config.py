"""Bad input fails at construction, naming the bad value; the throttle's public shape."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from traffik import (
    ConfigurationError,
    HTTPThrottle,
    InMemoryBackend,
    MiddlewareThrottle,
    WebSocketThrottle,
    is_throttled,
    message_size,
    throttled,
    websocket_on_throttled,
    websocket_throttled,
)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"key_by": "room"}, "'room'"),
        ({"close_code": 1000}, "1000"),
        ({"close_code": 3000}, "3000"),
        ({"close_code": "1008"}, "'1008'"),
        ({"close_code": True}, "True"),
        ({"handle_throttled": "close"}, "'close'"),
        ({"identifier": "ip"}, "'ip'"),
        ({"shadow": "yes"}, "'yes'"),
        ({"cost": -1}, "-1"),
        ({"rate": "10/fortnight"}, "fortnight"),
    ],
)
def test_bad_settings_are_named(options: dict[str, Any], named: str) -> None:
    settings = {"rate": "10/min", **options}
    with pytest.raises(ConfigurationError, match=named):
        WebSocketThrottle("bad", **settings)


def test_a_cost_function_must_take_the_connection() -> None:
    async def nothing() -> int:
        return 1

    with pytest.raises(ConfigurationError, match="cost function"):
        WebSocketThrottle("bad-cost", rate="10/min", cost=nothing)  # type: ignore[arg-type]


def test_methods_do_not_apply_to_websocket_middleware_throttles() -> None:
    throttle = WebSocketThrottle("ws-methods", rate="10/min")
    with pytest.raises(ConfigurationError, match="methods"):
        MiddlewareThrottle(throttle, "/ws", methods=["GET"])


def test_one_decorator_limits_one_kind_of_endpoint() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        throttled(HTTPThrottle("mixed-h", rate="1/s"), WebSocketThrottle("mixed-w", rate="1/s"))


def test_message_size_refuses_what_it_cannot_weigh(backend: InMemoryBackend) -> None:
    volume = WebSocketThrottle("weigh", rate="100/min", backend=backend, cost=message_size)
    api = FastAPI()
    failures: list[BaseException] = []

    @api.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await volume(websocket, await websocket.receive_json())
        except ConfigurationError as exc:
            failures.append(exc)
        await websocket.close()

    with TestClient(api) as client, client.websocket_connect("/ws") as websocket:
        websocket.send_json({"a": 1})
    [failure] = failures
    assert "dict" in str(failure)


def test_fastapi_sees_only_the_websocket_parameter() -> None:
    throttle = WebSocketThrottle("signature", rate="10/min")
    assert list(inspect.signature(throttle).parameters) == ["websocket"]
    assert "rate" in inspect.signature(WebSocketThrottle).parameters  # the constructor's


def test_the_names_are_importable_from_the_top() -> None:
    import traffik.websocket

    assert traffik.WebSocketThrottle is traffik.websocket.WebSocketThrottle
    assert traffik.websocket_throttled is websocket_throttled
    assert traffik.websocket_on_throttled is websocket_on_throttled
    assert traffik.message_size is message_size
    for name in (
        "WebSocketThrottle",
        "websocket_throttled",
        "websocket_on_throttled",
        "message_size",
    ):
        assert name in traffik.__all__
    assert is_throttled is traffik.is_throttled


def test_a_throttle_says_what_it_limits() -> None:
    throttle = WebSocketThrottle("shape", rate="10/min", key_by="connection", close_code=1013)
    assert throttle.scope_type == "websocket"
    assert throttle.per_connection
    assert throttle.close_code == 1013
    assert throttle.refusal_handler is websocket_on_throttled
    assert repr(throttle) == "WebSocketThrottle('shape', rate=10/m, strategy=FixedWindow())"

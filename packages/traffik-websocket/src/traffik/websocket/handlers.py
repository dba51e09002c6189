"""What happens to a refused WebSocket client: the default refusal handler,
`websocket_on_throttled` (the `Decision` form, ``on_throttled=``), and `websocket_throttled`,
the same in traffik 1.x's form ``(connection, wait_ms, throttle, context)``.

* **At the handshake** (before ``accept``), the connection is refused. Where the server
  supports the ASGI denial-response extension (``websocket.http.response``; uvicorn,
  hypercorn and Starlette's test client do), `ConnectionThrottled` is raised, which the
  framework (or `ThrottleMiddleware`) sends as the handshake's HTTP 429 response with
  ``Retry-After`` (and the rate-limit headers). Elsewhere the socket is accepted and
  closed at once with code 1008 (policy violation) and a reason naming the wait: closing
  *before* accepting would reach the client as a bare HTTP 403.
* **On a message** (after ``accept``), the client is told in JSON and the socket stays
  open::

      {"type": "rate_limit", "error": "Too many messages", "retry_after": 3}

  ``retry_after`` is in whole seconds, rounded up and at least 1 (``null`` when waiting
  cannot help: the message is larger than the whole budget). ``context["extras"]`` adds fields,
  ``context["error"]`` replaces the text. A throttle with a ``close_code`` (1008 or 1013)
  closes the socket instead and raises `WebSocketDisconnect`, the exception endpoints
  already handle when a client goes away.
* **On a closed socket**, nothing is sent: a notice that cannot be delivered never
  raises into the endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from starlette.exceptions import WebSocketException
from starlette.requests import HTTPConnection
from starlette.types import Scope
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from traffik.decision import Decision
from traffik.fastapi import (
    ConnectionThrottle,
    ConnectionThrottled,
    get_decision,
    raise_throttled,
    retry_after_seconds,
)

__all__ = [
    "DEFAULT_ERROR",
    "HANDSHAKE_CLOSE_CODE",
    "NOTICE_TYPE",
    "rate_limit_notice",
    "retry_after_seconds",
    "supports_denial_response",
    "websocket_on_throttled",
    "websocket_throttled",
]

NOTICE_TYPE: Final = "rate_limit"
DEFAULT_ERROR: Final = "Too many messages"
HANDSHAKE_CLOSE_CODE: Final = 1008
"""The close code of a handshake refused where no denial response can be sent."""

DENIAL_EXTENSION: Final = "websocket.http.response"

# What sending on a socket that closed meanwhile raises: Starlette's "not connected"
# (a RuntimeError), WebSocketDisconnect (it turns the server's OSError into one), or the
# server's own OSError.
_SEND_FAILURES: Final = (RuntimeError, OSError, WebSocketDisconnect)


def supports_denial_response(scope: Scope) -> bool:
    """Whether the server can answer a handshake with an HTTP response of ours."""
    return DENIAL_EXTENSION in (scope.get("extensions") or {})


def rate_limit_notice(decision: Decision, context: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON notice a client gets for a refused message (see the module docstring)."""
    notice: dict[str, Any] = {
        "type": NOTICE_TYPE,
        "error": context.get("error", DEFAULT_ERROR),
        "retry_after": retry_after_seconds(decision.retry_after),
    }
    extras = context.get("extras")
    if extras:
        notice.update(extras)
    return notice


async def websocket_on_throttled(
    connection: HTTPConnection,
    decision: Decision,
    throttle: ConnectionThrottle,
    context: Mapping[str, Any],
) -> None:
    """The default refusal handler of a `WebSocketThrottle`, in the ``on_throttled`` form
    (the `Decision`; see the module docstring).

    ``context`` may hold ``extras`` and ``error`` (the notice), and ``status_code``,
    ``detail`` and ``headers`` (the handshake's denial response).
    """
    state = getattr(connection, "application_state", None)
    if not isinstance(connection, WebSocket) or state is WebSocketState.CONNECTING:
        await refuse_handshake(connection, decision, throttle, context)
        return
    if state is not WebSocketState.CONNECTED:
        return  # closed meanwhile: nobody to tell
    close_code: int | None = getattr(throttle, "close_code", None)
    if close_code is None:
        await send_quietly(connection, rate_limit_notice(decision, context))
        return
    reason = str(context.get("error", DEFAULT_ERROR))
    try:
        await connection.close(close_code, reason)
    except _SEND_FAILURES:
        pass
    raise WebSocketDisconnect(close_code, reason)


async def websocket_throttled(
    connection: HTTPConnection,
    wait_ms: float,
    throttle: ConnectionThrottle,
    context: Mapping[str, Any],
) -> None:
    """traffik 1.x's ``websocket_throttled(connection, wait_ms, throttle, context)``: what
    `websocket_on_throttled` does, given the wait in **milliseconds** (for a 1.x
    ``handle_throttled`` that ends by calling it)."""
    await websocket_on_throttled(
        connection, _refusal(connection, wait_ms, throttle), throttle, context
    )


def _refusal(connection: HTTPConnection, wait_ms: float, throttle: ConnectionThrottle) -> Decision:
    """The refusal that ``wait_ms`` stands for: the one recorded for ``throttle`` on this
    connection, with that wait; else a refusal of the throttle's limit."""
    wait = wait_ms / 1000.0
    recorded = get_decision(connection, throttle)
    if recorded is not None and not recorded.allowed:
        return recorded._replace(retry_after=wait)
    limit = throttle.rate.limit if throttle.rate is not None else 1
    return Decision(allowed=False, limit=limit, remaining=0, reset_after=wait, retry_after=wait)


async def refuse_handshake(
    connection: HTTPConnection,
    decision: Decision,
    throttle: ConnectionThrottle,
    context: Mapping[str, Any],
) -> None:
    """Refuse a connection before it is accepted: raise the 429, or accept and raise the
    1008 close for the framework to send (its `WebSocketException` handling)."""
    if not isinstance(connection, WebSocket) or supports_denial_response(connection.scope):
        await raise_throttled(connection, decision, throttle, context)
    # The close reason says what the 429 would have said, in the 123 bytes RFC 6455 allows.
    detail = ConnectionThrottled(decision.retry_after, detail=context.get("detail")).detail
    reason = detail.encode("utf-8")[:123].decode("utf-8", "ignore")
    await connection.accept()
    raise WebSocketException(HANDSHAKE_CLOSE_CODE, reason)


async def send_quietly(connection: WebSocket, notice: Mapping[str, Any]) -> bool:
    """Send ``notice`` as JSON; False (and nothing raised) if the socket has closed."""
    if connection.application_state is not WebSocketState.CONNECTED:
        return False
    try:
        await connection.send_json(notice)
    except _SEND_FAILURES:
        return False
    return True

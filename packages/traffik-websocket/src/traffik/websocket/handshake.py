"""Gating a WebSocket handshake in `ThrottleMiddleware` (``WebSocketThrottle.gate_scope``).

The middleware decides the matching throttles before the application runs; a refused
client gets an HTTP 429 denial response where the server supports the ASGI
denial-response extension, and a close with code 1008 otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.exceptions import WebSocketException
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState

from traffik.fastapi import LEDGER_KEY, MiddlewareThrottle, RequestLedger, ThrottleMiddleware
from traffik.websocket.handlers import HANDSHAKE_CLOSE_CODE, supports_denial_response

__all__ = ["gate_handshake"]


async def gate_handshake(
    middleware: ThrottleMiddleware,
    entries: Sequence[MiddlewareThrottle],
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Gate a WebSocket handshake: let it through to the application, or refuse it."""
    ledger: RequestLedger | None = scope.get(LEDGER_KEY)
    if ledger is None:
        ledger = scope[LEDGER_KEY] = RequestLedger()
    connection = WebSocket(scope, receive, send)
    try:
        refusal = await middleware.refusal(connection, ledger, entries)
    except WebSocketException as exc:  # the default handler's refusal without a denial
        if connection.application_state is not WebSocketState.DISCONNECTED:
            await connection.close(exc.code, exc.reason)
        return
    if refusal is None:
        await middleware.app(scope, receive, send)
    elif supports_denial_response(scope):
        # Sent as the handshake's denial response.
        await (await middleware.render(connection, refusal))(scope, receive, send)
    else:  # a handler raised an HTTP error the server cannot send: close instead
        if connection.application_state is WebSocketState.CONNECTING:
            await connection.accept()
        await connection.close(HANDSHAKE_CLOSE_CODE, _close_reason(refusal.detail))


def _close_reason(detail: str) -> str:
    """``detail`` cut to the 123 bytes of UTF-8 a close reason may hold (RFC 6455)."""
    return detail.encode("utf-8")[:123].decode("utf-8", "ignore")

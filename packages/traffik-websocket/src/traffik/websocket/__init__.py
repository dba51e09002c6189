"""Traffik for WebSockets: gate the handshake, limit messages, notify in JSON.

* `WebSocketThrottle`: before ``accept`` it gates the handshake (``Depends``,
  ``throttled``, ``ThrottleMiddleware`` or a direct call); after, ``await
  throttle(websocket, message)`` checks each message.
* `websocket_on_throttled`: the default refusal handler (an HTTP 429 denial or a 1008 close
  at the handshake; a JSON notice, or a close, on a message); `websocket_throttled` is the
  same in traffik 1.x's form, with the wait in milliseconds.
* `message_size`: the cost function of byte budgets.

``is_throttled(websocket)`` / ``get_retry_after(websocket)`` (seconds; ``get_wait`` in ms) /
``get_decision(websocket, throttle)`` (from traffik-fastapi) tell the endpoint whether the
message just checked was refused.
"""

from traffik.websocket._version import __version__
from traffik.websocket.handlers import (
    rate_limit_notice,
    websocket_on_throttled,
    websocket_throttled,
)
from traffik.websocket.messages import MessageLedger, message_size
from traffik.websocket.throttle import (
    MessageCost,
    WebSocketCost,
    WebSocketKeyBy,
    WebSocketThrottle,
    WebSocketThrottledHandler,
)

__all__ = [
    "MessageCost",
    "MessageLedger",
    "WebSocketCost",
    "WebSocketKeyBy",
    "WebSocketThrottle",
    "WebSocketThrottledHandler",
    "__version__",
    "message_size",
    "rate_limit_notice",
    "websocket_on_throttled",
    "websocket_throttled",
]

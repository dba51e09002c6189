"""traffik 1.x's ``traffik.throttles``, kept as an alias (see `traffik._aliases`).

Its names live in traffik-fastapi and traffik-websocket now; each use warns and names
the 2.x import.
"""

from typing import TYPE_CHECKING

from traffik._aliases import Gone, Moved, forward

if TYPE_CHECKING:
    from traffik.fastapi import HTTPThrottle as HTTPThrottle
    from traffik.fastapi import MiddlewareThrottle as MiddlewareThrottle
    from traffik.fastapi import RequestThrottle as RequestThrottle
    from traffik.fastapi import is_throttled as is_throttled
    from traffik.fastapi import throttled as throttled
    from traffik.throttle import Throttle as Throttle
    from traffik.websocket import WebSocketThrottle as WebSocketThrottle

forward(
    __name__,
    globals(),
    {
        "HTTPThrottle": Moved("traffik.fastapi", extra="fastapi"),
        "RequestThrottle": Moved("traffik.fastapi", extra="fastapi"),
        "MiddlewareThrottle": Moved("traffik.fastapi", extra="fastapi"),
        "is_throttled": Moved("traffik.fastapi", extra="fastapi"),
        "throttled": Moved("traffik.fastapi", extra="fastapi"),
        "Throttle": Moved("traffik"),
        "WebSocketThrottle": Moved("traffik.websocket", extra="websocket"),
        "websocket_throttled": Gone(
            "1.x's websocket_throttled took the wait in milliseconds; traffik 2's "
            "traffik.websocket.websocket_throttled takes a Decision. It is WebSocketThrottle's "
            "default handler, so leave the handler unset to get it"
        ),
        # What a 1.x on_error(connection, exc_info) handler receives, with its 1.x meaning.
        "ThrottleExceptionInfo": Moved("traffik"),
        "ExceptionInfo": Moved("traffik", name="ThrottleExceptionInfo"),
        "get_wait": Gone(
            "1.x's get_wait returned milliseconds; traffik.fastapi.get_wait(connection) "
            "returns seconds (multiply by 1000 for the 1.x value)"
        ),
        "ThrottleStrategy": Gone(
            "a strategy is a pure decision, typed traffik.strategies.Strategy; an async "
            "callable (key, rate, backend, cost) -> wait_ms is not a strategy any more "
            "(docs: Extending)"
        ),
    },
)

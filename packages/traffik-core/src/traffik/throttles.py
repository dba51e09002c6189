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
    from traffik.fastapi import get_wait as get_wait
    from traffik.fastapi import is_throttled as is_throttled
    from traffik.fastapi import throttled as throttled
    from traffik.throttle import Throttle as Throttle
    from traffik.websocket import WebSocketThrottle as WebSocketThrottle
    from traffik.websocket import websocket_throttled as websocket_throttled

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
        # Both keep their 1.x meaning: the wait in milliseconds.
        "websocket_throttled": Moved("traffik.websocket", extra="websocket"),
        # What a 1.x on_error(connection, exc_info) handler receives, with its 1.x meaning.
        "ThrottleExceptionInfo": Moved("traffik"),
        "ExceptionInfo": Moved("traffik", name="ThrottleExceptionInfo"),
        "get_wait": Moved("traffik.fastapi", extra="fastapi"),
        "ThrottleStrategy": Gone(
            "a strategy is a pure decision, typed traffik.strategies.Strategy; an async "
            "callable (key, rate, backend, cost) -> wait_ms is not a strategy any more "
            "(docs: Extending)"
        ),
    },
)

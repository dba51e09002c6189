"""traffik 1.x's ``traffik.middleware``, kept as an alias (see `traffik._aliases`)."""

from typing import TYPE_CHECKING

from traffik._aliases import Moved, forward

if TYPE_CHECKING:
    from traffik.fastapi import MiddlewareThrottle as MiddlewareThrottle
    from traffik.fastapi import ThrottleMiddleware as ThrottleMiddleware

forward(
    __name__,
    globals(),
    {
        "ThrottleMiddleware": Moved("traffik.fastapi", extra="fastapi"),
        "MiddlewareThrottle": Moved("traffik.fastapi", extra="fastapi"),
    },
)

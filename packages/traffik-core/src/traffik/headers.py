"""traffik 1.x's ``traffik.headers``: custom response headers, now in traffik.fastapi.

Each name warns (a DeprecationWarning naming the 2.x import) and gives the traffik.fastapi
object, with its 1.x meaning (see `traffik._aliases`).
"""

from traffik._aliases import Moved, forward

forward(
    __name__,
    globals(),
    {
        "Header": Moved("traffik.fastapi", extra="fastapi"),
        "Headers": Moved("traffik.fastapi", extra="fastapi"),
        "DEFAULT_HEADERS_ALWAYS": Moved("traffik.fastapi", extra="fastapi"),
        "DEFAULT_HEADERS_THROTTLED": Moved("traffik.fastapi", extra="fastapi"),
    },
)

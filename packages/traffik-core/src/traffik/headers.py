"""traffik 1.x's ``traffik.headers``: custom response headers, now in traffik.fastapi.

Each name warns (a DeprecationWarning naming the 2.x import) and gives the traffik.fastapi
object, with its 1.x meaning (see `traffik._aliases`).
"""

from typing import TYPE_CHECKING

from traffik._aliases import Moved, forward

if TYPE_CHECKING:
    from traffik.fastapi import DEFAULT_HEADERS_ALWAYS as DEFAULT_HEADERS_ALWAYS
    from traffik.fastapi import DEFAULT_HEADERS_THROTTLED as DEFAULT_HEADERS_THROTTLED
    from traffik.fastapi import Header as Header
    from traffik.fastapi import Headers as Headers

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

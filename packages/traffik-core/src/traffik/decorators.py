"""traffik 1.x's ``traffik.decorators``, kept as an alias (see `traffik._aliases`)."""

from typing import TYPE_CHECKING

from traffik._aliases import Moved, forward

if TYPE_CHECKING:
    from traffik.fastapi import throttled as throttled

forward(__name__, globals(), {"throttled": Moved("traffik.fastapi", extra="fastapi")})

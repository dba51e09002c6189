"""traffik 1.x's ``traffik.registry``, kept as an alias (see `traffik._aliases`).

1.x's deprecated ``ThrottleRule`` and ``BypassThrottleRule`` are ``Rule`` and ``Bypass``.
"""

from typing import TYPE_CHECKING

from traffik._aliases import Moved, forward

if TYPE_CHECKING:
    from traffik.fastapi import GLOBAL_REGISTRY as GLOBAL_REGISTRY
    from traffik.fastapi import Bypass as Bypass
    from traffik.fastapi import Rule as Rule
    from traffik.fastapi import ThrottleRegistry as ThrottleRegistry

    ThrottleRule = Rule
    BypassThrottleRule = Bypass

forward(
    __name__,
    globals(),
    {
        "ThrottleRegistry": Moved("traffik.fastapi", extra="fastapi"),
        "GLOBAL_REGISTRY": Moved("traffik.fastapi", extra="fastapi"),
        "Rule": Moved("traffik.fastapi", extra="fastapi"),
        "Bypass": Moved("traffik.fastapi", extra="fastapi"),
        "ThrottleRule": Moved("traffik.fastapi", name="Rule", extra="fastapi"),
        "BypassThrottleRule": Moved("traffik.fastapi", name="Bypass", extra="fastapi"),
    },
)

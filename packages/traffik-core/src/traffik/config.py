"""traffik 1.x's ``traffik.config``: its settings were lock defaults, and traffik 2 takes no locks.

Each 1.x name raises an ImportError saying so (see `traffik._aliases`).
"""

from traffik._aliases import Gone, forward

_NO_LOCKS = Gone(
    "traffik 2 takes no locks (each backend applies a decision atomically), so there are no "
    "lock defaults to set"
)

forward(
    __name__,
    globals(),
    dict.fromkeys(
        (
            "get_lock_ttl",
            "set_lock_ttl",
            "get_lock_blocking",
            "set_lock_blocking",
            "get_lock_blocking_timeout",
            "set_lock_blocking_timeout",
        ),
        _NO_LOCKS,
    ),
)

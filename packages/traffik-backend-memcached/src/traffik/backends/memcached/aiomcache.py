"""traffik 1.x's ``traffik.backends.memcached.aiomcache``, kept as an alias.

1.x had two memcached backends (aiomcache here, emcache beside it); traffik 2 has the
aiomcache one only, at ``traffik.backends.memcached``. Using the 1.x path warns and names it.
"""

import warnings
from typing import TYPE_CHECKING

from traffik.backends.memcached.backend import MemcachedBackend as _MemcachedBackend

__all__ = ["MemcachedBackend"]

if TYPE_CHECKING:
    MemcachedBackend = _MemcachedBackend
else:

    def __getattr__(name: str) -> object:
        if name != "MemcachedBackend":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        warnings.warn(
            f"{__name__}.MemcachedBackend is the traffik 1.x spelling: "
            "use `from traffik.backends.memcached import MemcachedBackend`",
            DeprecationWarning,
            stacklevel=2,
        )
        return _MemcachedBackend

    def __dir__() -> list[str]:
        return sorted({*globals(), "MemcachedBackend"})

"""traffik 1.x's ``traffik.backends.redis.aioredis``, kept as an alias.

1.x had two Redis backends (redis-py here, coredis beside it); traffik 2 has the redis-py
one only, at ``traffik.backends.redis``. Using the 1.x path warns and names it.
"""

import warnings
from typing import TYPE_CHECKING

from traffik.backends.redis.backend import RedisBackend as _RedisBackend

__all__ = ["RedisBackend"]

if TYPE_CHECKING:
    RedisBackend = _RedisBackend
else:

    def __getattr__(name: str) -> object:
        if name != "RedisBackend":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        warnings.warn(
            f"{__name__}.RedisBackend is the traffik 1.x spelling: "
            "use `from traffik.backends.redis import RedisBackend`",
            DeprecationWarning,
            stacklevel=2,
        )
        return _RedisBackend

    def __dir__() -> list[str]:
        return sorted({*globals(), "RedisBackend"})

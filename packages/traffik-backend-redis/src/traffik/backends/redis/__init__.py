"""The Redis backend for Traffik: ``from traffik.backends.redis import RedisBackend``.

Every built-in strategy is decided by one server-side Lua script (one round trip, on the
server's clock); Redis Cluster and Sentinel are supported. See the package README.
"""

from traffik.backends.redis._version import __version__
from traffik.backends.redis.backend import RedisBackend

__all__ = ["RedisBackend", "__version__"]

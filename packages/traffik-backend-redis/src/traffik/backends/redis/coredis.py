"""traffik 1.x's ``traffik.backends.redis.coredis``: not in traffik 2.

traffik 2 has one Redis backend, on redis-py's asyncio client; importing this module says so.
"""

raise ImportError(
    "traffik.backends.redis.coredis (traffik 1.x, the coredis client) is not in traffik 2: "
    "use `from traffik.backends.redis import RedisBackend` (redis-py's asyncio client)",
    name=__name__,
)

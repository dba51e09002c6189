"""traffik 1.x's ``traffik.backends.multiprocess``: not in traffik 2.

Its shared-memory backend is gone; importing this module says what to use instead.
"""

raise ImportError(
    "traffik.backends.multiprocess (traffik 1.x's MultiProcessInMemoryBackend) is not in "
    "traffik 2: use RedisBackend or MemcachedBackend to share limits between worker "
    "processes (InMemoryBackend limits each process on its own)",
    name=__name__,
)

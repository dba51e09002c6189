"""traffik 1.x's ``traffik.backends.memcached.emcache``: not in traffik 2.

traffik 2 has one memcached backend, on aiomcache; importing this module says so.
"""

raise ImportError(
    "traffik.backends.memcached.emcache (traffik 1.x, the emcache client) is not in "
    "traffik 2: use `from traffik.backends.memcached import MemcachedBackend` (aiomcache)",
    name=__name__,
)

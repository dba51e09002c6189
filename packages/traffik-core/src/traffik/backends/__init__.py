"""Backends: where throttle state lives.

traffik-core owns this package and ships `traffik.backends.base` and
`traffik.backends.inmemory`; the Redis and memcached distributions add
`traffik.backends.redis` and `traffik.backends.memcached` to it.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

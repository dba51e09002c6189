"""Backends: where throttle state lives.

traffik-core owns this package and ships `traffik.backends.base` and
`traffik.backends.inmemory`; the Redis and memcached distributions add
`traffik.backends.redis` and `traffik.backends.memcached` to it.
"""

# (Written in the form documentation tools such as griffe recognise as a namespace package.)
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

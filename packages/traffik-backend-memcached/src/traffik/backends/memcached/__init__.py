"""The memcached backend for Traffik: ``from traffik.backends.memcached import MemcachedBackend``.

Every strategy is applied through optimistic compare-and-swap on its serialised state;
see the distribution's README for what is exact and what depends on client clocks.
"""

from traffik.backends.memcached._version import __version__
from traffik.backends.memcached.backend import MemcachedBackend
from traffik.backends.memcached.exceptions import ContentionError
from traffik.backends.memcached.updates import CasStatistics

__all__ = ["CasStatistics", "ContentionError", "MemcachedBackend", "__version__"]

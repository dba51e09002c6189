"""Traffik: async-first, distributed rate limiting for FastAPI, Starlette and plain asyncio.

Core names are defined by traffik-core and imported eagerly. Names from the other
distributions (``HTTPThrottle`` from traffik-fastapi, ...) are imported on first use; when
their distribution is missing, the ImportError names the extra to install.
"""

# Several distributions share the ``traffik`` package: core owns this file, the others
# add subpackages (traffik.fastapi, traffik.backends.redis, ...). extend_path lets them
# live in different directories, which editable installs need.
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

from typing import TYPE_CHECKING

from traffik._version import __version__
from traffik.backends.base import ThrottleBackend
from traffik.backends.inmemory import InMemoryBackend
from traffik.clock import Clock, ManualClock
from traffik.decision import NOT_LIMITED, Decision
from traffik.error_policy import ErrorContext, ErrorHandler, OnError
from traffik.exceptions import (
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    RateLimitExceeded,
    TraffikError,
)
from traffik.identities import ANONYMOUS_IDENTIFIER, EXEMPTED, ExemptedType
from traffik.rates import Rate
from traffik.strategies import (
    GCRA,
    AdaptiveThrottle,
    CostBasedTokenBucket,
    FixedWindow,
    LeakyBucket,
    LeakyBucketWithQueue,
    Priority,
    PriorityQueue,
    QuotaWithRollover,
    SlidingWindowCounter,
    SlidingWindowLog,
    Strategy,
    TieredRate,
    TimeOfDay,
    TokenBucket,
    TokenBucketWithDebt,
)
from traffik.throttle import Limiter, Throttle, ThrottleStat, hit_all

if TYPE_CHECKING:
    from traffik.fastapi import ConnectionThrottled as ConnectionThrottled
    from traffik.fastapi import HTTPThrottle as HTTPThrottle
    from traffik.fastapi import RequestThrottle as RequestThrottle
    from traffik.fastapi import get_remote_address as get_remote_address
    from traffik.fastapi import remote_address as remote_address

# name -> (module, extra): names that other distributions provide.
_LAZY_EXPORTS: dict[str, tuple[str, str]] = {
    "ConnectionThrottled": ("traffik.fastapi", "fastapi"),
    "HTTPThrottle": ("traffik.fastapi", "fastapi"),
    "RequestThrottle": ("traffik.fastapi", "fastapi"),
    "get_remote_address": ("traffik.fastapi", "fastapi"),
    "remote_address": ("traffik.fastapi", "fastapi"),
}

__all__ = [
    "ANONYMOUS_IDENTIFIER",
    "EXEMPTED",
    "GCRA",
    "NOT_LIMITED",
    "AdaptiveThrottle",
    "BackendConnectionError",
    "BackendError",
    "BackendTimeoutError",
    "Clock",
    "ConfigurationError",
    "ConnectionThrottled",
    "CostBasedTokenBucket",
    "Decision",
    "ErrorContext",
    "ErrorHandler",
    "ExemptedType",
    "FixedWindow",
    "HTTPThrottle",
    "InMemoryBackend",
    "LeakyBucket",
    "LeakyBucketWithQueue",
    "Limiter",
    "ManualClock",
    "OnError",
    "Priority",
    "PriorityQueue",
    "QuotaWithRollover",
    "Rate",
    "RateLimitExceeded",
    "RequestThrottle",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "Strategy",
    "Throttle",
    "ThrottleBackend",
    "ThrottleStat",
    "TieredRate",
    "TimeOfDay",
    "TokenBucket",
    "TokenBucketWithDebt",
    "TraffikError",
    "__version__",
    "get_remote_address",
    "hit_all",
    "remote_address",
]

if not TYPE_CHECKING:
    import importlib
    import importlib.util

    def __getattr__(name: str) -> object:
        try:
            module_name, extra = _LAZY_EXPORTS[name]
        except KeyError:
            raise AttributeError(f"module 'traffik' has no attribute {name!r}") from None
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only the missing distribution itself is translated; a missing dependency
            # *inside* an installed extra propagates unchanged.
            if exc.name not in (module_name, *_parents(module_name)):
                raise
            raise ImportError(
                f"{name} needs the {extra!r} extra: pip install 'traffik[{extra}]'",
                name=module_name,
            ) from exc
        value = getattr(module, name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(_LAZY_EXPORTS))

    def _parents(module_name: str) -> list[str]:
        parts = module_name.split(".")
        return [".".join(parts[:i]) for i in range(2, len(parts))]

    def _installed(module_name: str) -> bool:
        try:
            return importlib.util.find_spec(module_name) is not None
        except ModuleNotFoundError:
            return False

    # `from traffik import *` must work with only some distributions installed.
    __all__ = [
        name for name in __all__ if name not in _LAZY_EXPORTS or _installed(_LAZY_EXPORTS[name][0])
    ]

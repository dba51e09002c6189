"""Traffik: async-first, distributed rate limiting for FastAPI, Starlette and plain asyncio.

Core names are defined by traffik-core and imported eagerly. Names from the other
distributions (``HTTPThrottle`` from traffik-fastapi, ...) are imported on first use; when
their distribution is missing, the ImportError names the extra to install.
"""

# Several distributions share the ``traffik`` package: core owns this file, the others
# add subpackages (traffik.fastapi, traffik.backends.redis, ...). extend_path lets them
# live in different directories, which editable installs need.
# (Written in the form documentation tools such as griffe recognise as a namespace package.)
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from typing import TYPE_CHECKING

from traffik.backends.base import ThrottleBackend
from traffik.backends.inmemory import InMemoryBackend
from traffik.clock import Clock, ManualClock
from traffik.decision import NOT_LIMITED, Decision
from traffik.error_policy import ErrorContext, ErrorHandler, OnError, ThrottleExceptionInfo
from traffik.exceptions import (
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    RateLimitExceeded,
    TraffikError,
)
from traffik.identities import ANONYMOUS_IDENTIFIER, EXEMPTED, ExemptedType
from traffik.limiter import Limiter
from traffik.observability import DecisionEvent, add_observer, remove_observer
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
from traffik.strategies.concurrency import Concurrency
from traffik.throttle import Throttle, ThrottleStat, hit_all

if TYPE_CHECKING:
    # The version of the `traffik` distribution (the meta-package), as in 1.x: what
    # `pip show traffik` says. Read from its metadata on first use (never star-imported, as
    # in 1.x); each other distribution's is its subpackage's `__version__`
    # (`traffik.fastapi.__version__`, ...), traffik-core's `traffik._version.__version__`.
    __version__: str

    from traffik.backends.memcached import ContentionError as ContentionError
    from traffik.backends.memcached import MemcachedBackend as MemcachedBackend
    from traffik.fastapi import DEFAULT_HEADERS_ALWAYS as DEFAULT_HEADERS_ALWAYS
    from traffik.fastapi import DEFAULT_HEADERS_THROTTLED as DEFAULT_HEADERS_THROTTLED
    from traffik.fastapi import GLOBAL_REGISTRY as GLOBAL_REGISTRY
    from traffik.fastapi import Bypass as Bypass
    from traffik.fastapi import ConcurrencyLimit as ConcurrencyLimit
    from traffik.fastapi import ConnectionThrottled as ConnectionThrottled
    from traffik.fastapi import Header as Header
    from traffik.fastapi import Headers as Headers
    from traffik.fastapi import HTTPThrottle as HTTPThrottle
    from traffik.fastapi import MiddlewareThrottle as MiddlewareThrottle
    from traffik.fastapi import RequestThrottle as RequestThrottle
    from traffik.fastapi import Rule as Rule
    from traffik.fastapi import ThrottleMiddleware as ThrottleMiddleware
    from traffik.fastapi import ThrottleRegistry as ThrottleRegistry
    from traffik.fastapi import TrustedProxies as TrustedProxies
    from traffik.fastapi import get_decision as get_decision
    from traffik.fastapi import get_remote_address as get_remote_address
    from traffik.fastapi import get_retry_after as get_retry_after
    from traffik.fastapi import get_wait as get_wait
    from traffik.fastapi import header_identifier as header_identifier
    from traffik.fastapi import is_throttled as is_throttled
    from traffik.fastapi import remote_address as remote_address
    from traffik.fastapi import set_default_headers as set_default_headers
    from traffik.fastapi import throttled as throttled
    from traffik.fastapi import throttled_exception_handler as throttled_exception_handler
    from traffik.fastapi import throttled_problem_handler as throttled_problem_handler
    from traffik.fastapi import user_identifier as user_identifier
    from traffik.metrics import MetricsExporter as MetricsExporter
    from traffik.metrics import OpenTelemetryExporter as OpenTelemetryExporter
    from traffik.metrics import PrometheusExporter as PrometheusExporter
    from traffik.resilience import Backoff as Backoff
    from traffik.resilience import CircuitBreaker as CircuitBreaker
    from traffik.resilience import CircuitOpenError as CircuitOpenError
    from traffik.resilience import CircuitState as CircuitState
    from traffik.resilience import ConstantBackoff as ConstantBackoff
    from traffik.resilience import ExponentialBackoff as ExponentialBackoff
    from traffik.resilience import FailoverBackend as FailoverBackend
    from traffik.resilience import Jitter as Jitter
    from traffik.resilience import LinearBackoff as LinearBackoff
    from traffik.resilience import LogarithmicBackoff as LogarithmicBackoff
    from traffik.resilience import ResilientBackend as ResilientBackend
    from traffik.resilience import Retry as Retry
    from traffik.websocket import WebSocketThrottle as WebSocketThrottle
    from traffik.websocket import message_size as message_size
    from traffik.websocket import websocket_on_throttled as websocket_on_throttled
    from traffik.websocket import websocket_throttled as websocket_throttled

# name -> (module, extra): names that other distributions provide.
_LAZY_EXPORTS: dict[str, tuple[str, str]] = {
    "ContentionError": ("traffik.backends.memcached", "memcached"),
    "MemcachedBackend": ("traffik.backends.memcached", "memcached"),
    "ConnectionThrottled": ("traffik.fastapi", "fastapi"),
    "DEFAULT_HEADERS_ALWAYS": ("traffik.fastapi", "fastapi"),
    "DEFAULT_HEADERS_THROTTLED": ("traffik.fastapi", "fastapi"),
    "Header": ("traffik.fastapi", "fastapi"),
    "Headers": ("traffik.fastapi", "fastapi"),
    "HTTPThrottle": ("traffik.fastapi", "fastapi"),
    "RequestThrottle": ("traffik.fastapi", "fastapi"),
    "get_remote_address": ("traffik.fastapi", "fastapi"),
    "remote_address": ("traffik.fastapi", "fastapi"),
    "Bypass": ("traffik.fastapi", "fastapi"),
    "ConcurrencyLimit": ("traffik.fastapi", "fastapi"),
    "GLOBAL_REGISTRY": ("traffik.fastapi", "fastapi"),
    "MiddlewareThrottle": ("traffik.fastapi", "fastapi"),
    "Rule": ("traffik.fastapi", "fastapi"),
    "ThrottleMiddleware": ("traffik.fastapi", "fastapi"),
    "ThrottleRegistry": ("traffik.fastapi", "fastapi"),
    "TrustedProxies": ("traffik.fastapi", "fastapi"),
    "get_decision": ("traffik.fastapi", "fastapi"),
    "get_retry_after": ("traffik.fastapi", "fastapi"),
    "get_wait": ("traffik.fastapi", "fastapi"),
    "header_identifier": ("traffik.fastapi", "fastapi"),
    "is_throttled": ("traffik.fastapi", "fastapi"),
    "set_default_headers": ("traffik.fastapi", "fastapi"),
    "throttled": ("traffik.fastapi", "fastapi"),
    "throttled_exception_handler": ("traffik.fastapi", "fastapi"),
    "throttled_problem_handler": ("traffik.fastapi", "fastapi"),
    "user_identifier": ("traffik.fastapi", "fastapi"),
    "Backoff": ("traffik.resilience", "resilience"),
    "CircuitBreaker": ("traffik.resilience", "resilience"),
    "CircuitOpenError": ("traffik.resilience", "resilience"),
    "CircuitState": ("traffik.resilience", "resilience"),
    "ConstantBackoff": ("traffik.resilience", "resilience"),
    "ExponentialBackoff": ("traffik.resilience", "resilience"),
    "FailoverBackend": ("traffik.resilience", "resilience"),
    "Jitter": ("traffik.resilience", "resilience"),
    "LinearBackoff": ("traffik.resilience", "resilience"),
    "LogarithmicBackoff": ("traffik.resilience", "resilience"),
    "ResilientBackend": ("traffik.resilience", "resilience"),
    "Retry": ("traffik.resilience", "resilience"),
    "WebSocketThrottle": ("traffik.websocket", "websocket"),
    "message_size": ("traffik.websocket", "websocket"),
    "websocket_on_throttled": ("traffik.websocket", "websocket"),
    "websocket_throttled": ("traffik.websocket", "websocket"),
    "MetricsExporter": ("traffik.metrics", "metrics"),
    "OpenTelemetryExporter": ("traffik.metrics", "metrics"),
    "PrometheusExporter": ("traffik.metrics", "metrics"),
}

__all__ = [
    "ANONYMOUS_IDENTIFIER",
    "DEFAULT_HEADERS_ALWAYS",
    "DEFAULT_HEADERS_THROTTLED",
    "EXEMPTED",
    "GCRA",
    "GLOBAL_REGISTRY",
    "NOT_LIMITED",
    "AdaptiveThrottle",
    "BackendConnectionError",
    "BackendError",
    "BackendTimeoutError",
    "Backoff",
    "Bypass",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Clock",
    "Concurrency",
    "ConcurrencyLimit",
    "ConfigurationError",
    "ConnectionThrottled",
    "ConstantBackoff",
    "ContentionError",
    "CostBasedTokenBucket",
    "Decision",
    "DecisionEvent",
    "ErrorContext",
    "ErrorHandler",
    "ExemptedType",
    "ExponentialBackoff",
    "FailoverBackend",
    "FixedWindow",
    "HTTPThrottle",
    "Header",
    "Headers",
    "InMemoryBackend",
    "Jitter",
    "LeakyBucket",
    "LeakyBucketWithQueue",
    "Limiter",
    "LinearBackoff",
    "LogarithmicBackoff",
    "ManualClock",
    "MemcachedBackend",
    "MetricsExporter",
    "MiddlewareThrottle",
    "OnError",
    "OpenTelemetryExporter",
    "Priority",
    "PriorityQueue",
    "PrometheusExporter",
    "QuotaWithRollover",
    "Rate",
    "RateLimitExceeded",
    "RequestThrottle",
    "ResilientBackend",
    "Retry",
    "Rule",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "Strategy",
    "Throttle",
    "ThrottleBackend",
    "ThrottleExceptionInfo",
    "ThrottleMiddleware",
    "ThrottleRegistry",
    "ThrottleStat",
    "TieredRate",
    "TimeOfDay",
    "TokenBucket",
    "TokenBucketWithDebt",
    "TraffikError",
    "TrustedProxies",
    "WebSocketThrottle",
    "add_observer",
    "get_decision",
    "get_remote_address",
    "get_retry_after",
    "get_wait",
    "header_identifier",
    "hit_all",
    "is_throttled",
    "message_size",
    "remote_address",
    "remove_observer",
    "set_default_headers",
    "throttled",
    "throttled_exception_handler",
    "throttled_problem_handler",
    "user_identifier",
    "websocket_on_throttled",
    "websocket_throttled",
]

if not TYPE_CHECKING:
    from traffik._lazy import import_provider, installed

    def __getattr__(name: str) -> object:
        if name == "__version__":
            return _distribution_version()
        try:
            module_name, extra = _LAZY_EXPORTS[name]
        except KeyError:
            from traffik._removed import REMOVED_1X  # only on this error path

            if name in REMOVED_1X:  # a 1.x name: say what to use instead
                raise REMOVED_1X[name].error("traffik", name) from None
            raise AttributeError(f"module 'traffik' has no attribute {name!r}") from None
        value = getattr(import_provider(module_name, extra, name), name)
        globals()[name] = value
        return value

    def _distribution_version() -> str:
        import importlib.metadata  # only here: importing it costs more than traffik's core

        try:
            version = importlib.metadata.version("traffik")
        except importlib.metadata.PackageNotFoundError:
            raise AttributeError(
                "traffik.__version__ is the version of the 'traffik' distribution, which is not "
                "installed (traffik-core alone is): importlib.metadata.version('traffik-core') "
                "gives traffik-core's"
            ) from None
        globals()["__version__"] = version
        return version

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(_LAZY_EXPORTS))

    # `from traffik import *` must work with only some distributions installed.
    __all__ = [
        name for name in __all__ if name not in _LAZY_EXPORTS or installed(_LAZY_EXPORTS[name][0])
    ]

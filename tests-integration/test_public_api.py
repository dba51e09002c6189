"""Every documented import path, and the top-level names."""

from __future__ import annotations

import importlib
from importlib import metadata

import pytest
from packaging.version import Version

import traffik

DOCUMENTED_PATHS = {
    "traffik": ["Rate", "Limiter", "Throttle", "HTTPThrottle", "EXEMPTED", "InMemoryBackend"],
    "traffik.rates": ["Rate", "parse_rate"],
    "traffik.strategies": ["FixedWindow", "TokenBucket", "Strategy", "DEFAULT_STRATEGY"],
    "traffik.strategies.fixed_window": ["FixedWindow"],
    "traffik.strategies.token_bucket": ["TokenBucket", "TokenBucketWithDebt"],
    "traffik.strategies.sliding_window_log": ["SlidingWindowLog"],
    "traffik.strategies.sliding_window_counter": ["SlidingWindowCounter"],
    "traffik.strategies.leaky_bucket": ["LeakyBucket", "LeakyBucketWithQueue"],
    "traffik.strategies.gcra": ["GCRA"],
    "traffik.strategies.tiered_rate": ["TieredRate"],
    "traffik.strategies.adaptive_throttle": ["AdaptiveThrottle"],
    "traffik.strategies.priority_queue": ["Priority", "PriorityQueue"],
    "traffik.strategies.quota_with_rollover": ["QuotaWithRollover"],
    "traffik.strategies.time_of_day": ["TimeOfDay"],
    "traffik.strategies.cost_based_token_bucket": ["CostBasedTokenBucket"],
    "traffik.backends.base": ["ThrottleBackend", "Hit", "get_default_backend"],
    "traffik.backends.inmemory": ["InMemoryBackend"],
    "traffik.exceptions": [
        "TraffikError",
        "ConfigurationError",
        "BackendError",
        "QuotaError",
        "QuotaAppliedError",
        "QuotaCancelledError",
    ],
    "traffik.quota_context": ["QuotaContext"],
    "traffik.clock": ["ManualClock", "system_clock"],
    "traffik.fastapi": ["HTTPThrottle", "ConnectionThrottled", "remote_address"],
    "traffik.backends.redis": ["RedisBackend"],
    "traffik.strategies.concurrency": ["Concurrency"],
    "traffik.backends.memcached": ["MemcachedBackend", "ContentionError", "CasStatistics"],
    "traffik.websocket": ["WebSocketThrottle", "websocket_throttled", "message_size"],
}

# traffik 1.x's import paths, kept as thin aliases (docs/migrating.md): what each still
# gives (with a DeprecationWarning naming the 2.x import) and what raises an ImportError
# naming the 2.x way. A change here is a change to what 1.x code can import.
ALIAS_PATHS: dict[str, tuple[list[str], list[str]]] = {
    "traffik.throttles": (
        ["HTTPThrottle", "RequestThrottle", "MiddlewareThrottle", "is_throttled", "throttled",
         "Throttle", "WebSocketThrottle", "ThrottleExceptionInfo", "ExceptionInfo",
         "get_wait", "websocket_throttled"],
        ["ThrottleStrategy"],
    ),
    "traffik.decorators": (["throttled"], []),
    "traffik.middleware": (["ThrottleMiddleware", "MiddlewareThrottle"], []),
    "traffik.registry": (
        ["ThrottleRegistry", "GLOBAL_REGISTRY", "Rule", "Bypass", "ThrottleRule",
         "BypassThrottleRule"],
        [],
    ),
    "traffik.headers": (
        ["Header", "Headers", "DEFAULT_HEADERS_ALWAYS", "DEFAULT_HEADERS_THROTTLED"], []
    ),
    "traffik.quotas": (
        ["QuotaContext"],
        ["ConstantBackoff", "LinearBackoff", "ExponentialBackoff", "LogarithmicBackoff"],
    ),
    "traffik.error_handlers": (
        ["CircuitBreaker", "CircuitState"],
        ["failover", "fallback", "backend_fallback", "circuit_breaker_fallback", "retry"],
    ),
    "traffik.types": (
        ["EXEMPTED", "Rate"],
        ["UNLIMITED", "StrategyStat", "WaitPeriod", "ConnectionIdentifier",
         "ConnectionThrottledHandler", "ThrottleErrorHandler", "ExceptionHandler", "Dependency",
         "Stringable", "Matchable", "TrustedProxy", "Network", "HTTPConnectionT",
         "HTTPConnectionTcon", "LockConfig", "AsyncLock"],
    ),
    "traffik.strategies.sliding_window": (
        ["SlidingWindowLog", "SlidingWindowLogStrategy", "SlidingWindowCounter",
         "SlidingWindowCounterStrategy"],
        [],
    ),
    "traffik.strategies.custom": (
        ["Priority", "GCRA", "TieredRate", "AdaptiveThrottle", "PriorityQueue",
         "QuotaWithRollover", "TimeOfDay", "CostBasedTokenBucket", "GCRAStrategy",
         "TieredRateStrategy", "AdaptiveThrottleStrategy", "PriorityQueueStrategy",
         "QuotaWithRolloverStrategy", "TimeOfDayStrategy", "CostBasedTokenBucketStrategy"],
        [],
    ),
    "traffik.config": (
        [], ["get_lock_ttl", "set_lock_ttl", "get_lock_blocking", "set_lock_blocking",
             "get_lock_blocking_timeout", "set_lock_blocking_timeout"],
    ),
    "traffik.backoff": (
        [], ["ConstantBackoff", "LinearBackoff", "ExponentialBackoff", "LogarithmicBackoff",
             "JitterType", "DEFAULT_BACKOFF"],
    ),
    "traffik.backends.redis.aioredis": (["RedisBackend"], []),
    "traffik.backends.memcached.aiomcache": (["MemcachedBackend"], []),
}  # fmt: skip
ALIAS_PATHS["traffik.typing"] = ALIAS_PATHS["traffik.types"]

# 2.x modules that also answer for their 1.x names (outside their __all__).
STRATEGY_NAMES_1X = {
    "traffik.strategies": [
        "FixedWindowStrategy", "SlidingWindowLogStrategy", "SlidingWindowCounterStrategy",
        "TokenBucketStrategy", "TokenBucketWithDebtStrategy", "LeakyBucketStrategy",
        "LeakyBucketWithQueueStrategy", "GCRAStrategy", "TieredRateStrategy",
        "AdaptiveThrottleStrategy", "PriorityQueueStrategy", "QuotaWithRolloverStrategy",
        "TimeOfDayStrategy", "CostBasedTokenBucketStrategy",
    ],
    "traffik.strategies.fixed_window": ["FixedWindowStrategy"],
    "traffik.strategies.token_bucket": ["TokenBucketStrategy", "TokenBucketWithDebtStrategy"],
    "traffik.strategies.leaky_bucket": ["LeakyBucketStrategy", "LeakyBucketWithQueueStrategy"],
}  # fmt: skip


def test_1x_exception_names() -> None:
    import traffik.exceptions
    import traffik.fastapi

    with pytest.warns(DeprecationWarning, match="TraffikException is the traffik 1.x spelling"):
        assert traffik.exceptions.TraffikException is traffik.TraffikError
    with pytest.warns(DeprecationWarning, match="from traffik.fastapi import ConnectionThrottled"):
        from traffik.exceptions import ConnectionThrottled
    assert ConnectionThrottled is traffik.fastapi.ConnectionThrottled
    for name in ["LockError", "LockTimeoutError"]:
        with pytest.raises(ImportError, match=f"traffik.exceptions.{name} .traffik 1.x."):
            getattr(traffik.exceptions, name)
    # Kept with their 1.x meaning (quota contexts, traffik.quota_context).
    assert issubclass(traffik.exceptions.QuotaAppliedError, traffik.exceptions.QuotaError)
    assert issubclass(traffik.exceptions.QuotaCancelledError, traffik.exceptions.QuotaError)
    assert "TraffikException" not in traffik.exceptions.__all__


# 1.x names that 2.x modules answer with an ImportError naming the 2.x way.
GONE_FROM_2X_MODULES = {
    "traffik.backends.base": [
        "connection_throttled", "default_identifier", "get_throttle_backend", "build_key",
    ],
    "traffik.strategies": ["FixedWindowStatMetadata", "TokenBucketStatMetadata"],
}  # fmt: skip


@pytest.mark.parametrize(("module", "names"), sorted(GONE_FROM_2X_MODULES.items()))
def test_1x_names_of_2x_modules_say_what_to_use(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    for name in names:
        with pytest.raises(ImportError, match=f"{module}.{name} .traffik 1.x. is not in"):
            getattr(imported, name)
        assert name not in dir(imported)


# 1.x modules with nothing left to give: importing them says what to use.
REMOVED_MODULES = [
    "traffik.backends.multiprocess",
    "traffik.backends.redis.coredis",
    "traffik.backends.memcached.emcache",
]

# What the HTTP guide (packages/traffik-fastapi/README.md) imports from `traffik`.
HTTP_NAMES = [
    "HTTPThrottle", "RequestThrottle", "ConcurrencyLimit", "throttled", "ThrottleMiddleware",
    "MiddlewareThrottle", "Rule", "Bypass", "ThrottleRegistry", "GLOBAL_REGISTRY", "EXEMPTED",
    "is_throttled", "get_wait", "remote_address", "header_identifier", "user_identifier",
    "TrustedProxies", "ConnectionThrottled", "throttled_exception_handler",
    "throttled_problem_handler", "set_default_headers", "Concurrency", "Header", "Headers",
    "DEFAULT_HEADERS_ALWAYS", "DEFAULT_HEADERS_THROTTLED",
]  # fmt: skip


@pytest.mark.parametrize("name", HTTP_NAMES)
def test_http_names_are_top_level(name: str) -> None:
    import traffik.fastapi

    value = getattr(traffik, name)
    assert value is getattr(traffik.fastapi, name, value)
    assert name in traffik.__all__


@pytest.mark.parametrize(("module", "names"), sorted(DOCUMENTED_PATHS.items()))
def test_documented_paths_import(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    for name in names:
        assert getattr(imported, name) is not None, f"{module}.{name}"


@pytest.mark.parametrize(("module", "names"), sorted(ALIAS_PATHS.items()))
def test_1x_alias_paths(module: str, names: tuple[list[str], list[str]]) -> None:
    kept, gone = names
    imported = importlib.import_module(module)
    assert sorted(imported.__all__) == sorted(kept)
    for name in kept:
        with pytest.warns(DeprecationWarning, match=f"{module}.{name} is the traffik 1.x"):
            assert getattr(imported, name) is not None
    for name in gone:
        with pytest.raises(ImportError, match=f"{module}.{name} .traffik 1.x. is not in"):
            getattr(imported, name)
    assert set(dir(imported)) >= set(kept)
    assert not set(dir(imported)) & set(gone)


@pytest.mark.parametrize(("module", "names"), sorted(STRATEGY_NAMES_1X.items()))
def test_1x_strategy_names(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    for name in names:
        with pytest.warns(DeprecationWarning, match=f"{module}.{name} is the traffik 1.x"):
            value = getattr(imported, name)
        assert value is getattr(traffik, name.removesuffix("Strategy"))
        assert name not in imported.__all__


@pytest.mark.parametrize("module", REMOVED_MODULES)
def test_removed_1x_modules_say_what_to_use(module: str) -> None:
    with pytest.raises(ImportError, match=f"{module} .traffik 1.x.* is not in traffik 2: use"):
        importlib.import_module(module)


def test_top_level_names_are_the_defining_objects() -> None:
    from traffik.fastapi import HTTPThrottle
    from traffik.strategies import FixedWindow

    assert traffik.HTTPThrottle is HTTPThrottle
    assert traffik.FixedWindow is FixedWindow


def test_every_name_in_all_resolves() -> None:
    for name in traffik.__all__:
        assert getattr(traffik, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from traffik import *", namespace)
    assert "HTTPThrottle" in namespace
    assert "Rate" in namespace


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="Nope"):
        traffik.Nope  # type: ignore[attr-defined]  # noqa: B018


def test_the_namespace_spans_the_distributions() -> None:
    paths = [str(path) for path in traffik.__path__]
    assert any("traffik-core" in path for path in paths)
    assert any("traffik-fastapi" in path for path in paths)


def test_the_memcached_backend_is_importable_from_the_top() -> None:
    from traffik.backends.memcached import ContentionError, MemcachedBackend

    assert traffik.MemcachedBackend is MemcachedBackend
    assert traffik.ContentionError is ContentionError
    assert issubclass(ContentionError, traffik.BackendError)


def test_the_top_level_version_is_the_traffik_distributions_as_in_1x() -> None:
    """What `pip show traffik` says (the meta-package): never below 1.x's, never star-imported."""
    from traffik._version import __version__ as core_version
    from traffik.fastapi import __version__ as fastapi_version

    assert traffik.__version__ == metadata.version("traffik")
    assert Version(traffik.__version__) >= Version("2")
    assert "__version__" not in traffik.__all__
    # Each distribution's own version is its subpackage's.
    assert core_version == metadata.version("traffik-core")
    assert fastapi_version == metadata.version("traffik-fastapi")

"""traffik 1.x's import paths, written as the 1.x documentation writes them (issue 17).

A kept name warns once per use with a DeprecationWarning that names its 2.x import, and
is the 2.x object itself; a name traffik 2 does not have with its 1.x meaning raises an
ImportError at import, saying what to use instead. (traffik-core owns these modules; the
names they forward to live in traffik-fastapi, traffik-websocket and traffik-resilience.
With core alone, test_core_only.py checks the "install the extra" errors.)
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

import traffik.fastapi
import traffik.resilience
import traffik.websocket


def moved(caught: pytest.WarningsRecorder, *statements: str) -> None:
    """One DeprecationWarning per name, each naming its 2.x import, pointing at the test."""
    messages = [str(record.message) for record in caught]
    assert len(messages) == len(statements), messages
    for record, statement in zip(caught, statements, strict=True):
        assert record.category is DeprecationWarning
        assert f"use `{statement}`" in str(record.message), str(record.message)
        assert record.filename == __file__


def test_http_throttle_from_traffik_throttles() -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.throttles import HTTPThrottle
    moved(caught, "from traffik.fastapi import HTTPThrottle")
    assert HTTPThrottle is traffik.fastapi.HTTPThrottle


def test_websocket_throttle_and_is_throttled_from_traffik_throttles() -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.throttles import WebSocketThrottle, is_throttled
    moved(
        caught,
        "from traffik.websocket import WebSocketThrottle",
        "from traffik.fastapi import is_throttled",
    )
    assert WebSocketThrottle is traffik.websocket.WebSocketThrottle
    assert is_throttled is traffik.fastapi.is_throttled


def test_the_other_throttles_names() -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.throttles import MiddlewareThrottle, RequestThrottle, Throttle, throttled
    moved(
        caught,
        "from traffik.fastapi import MiddlewareThrottle",
        "from traffik.fastapi import RequestThrottle",
        "from traffik import Throttle",
        "from traffik.fastapi import throttled",
    )
    assert MiddlewareThrottle is traffik.fastapi.MiddlewareThrottle
    assert RequestThrottle is traffik.fastapi.RequestThrottle
    assert Throttle is traffik.Throttle
    assert throttled is traffik.fastapi.throttled


def test_websocket_throttled_and_get_wait_keep_their_milliseconds() -> None:
    """1.x's ``websocket_throttled(connection, wait_ms, throttle, context)`` and
    ``get_wait(connection)`` (milliseconds) are the same names with the same units."""
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.throttles import get_wait, websocket_throttled
    moved(
        caught,
        "from traffik.fastapi import get_wait",
        "from traffik.websocket import websocket_throttled",
    )
    assert websocket_throttled is traffik.websocket.websocket_throttled
    assert get_wait is traffik.fastapi.get_wait


def test_throttled_from_traffik_decorators() -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.decorators import throttled
    moved(caught, "from traffik.fastapi import throttled")
    assert throttled is traffik.fastapi.throttled


def test_middleware_from_traffik_middleware() -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.middleware import MiddlewareThrottle, ThrottleMiddleware
    moved(
        caught,
        "from traffik.fastapi import MiddlewareThrottle",
        "from traffik.fastapi import ThrottleMiddleware",
    )
    assert MiddlewareThrottle is traffik.fastapi.MiddlewareThrottle
    assert ThrottleMiddleware is traffik.fastapi.ThrottleMiddleware


def test_registry_names_from_traffik_registry() -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.registry import GLOBAL_REGISTRY, Bypass, Rule, ThrottleRegistry
    moved(
        caught,
        "from traffik.fastapi import GLOBAL_REGISTRY",
        "from traffik.fastapi import Bypass",
        "from traffik.fastapi import Rule",
        "from traffik.fastapi import ThrottleRegistry",
    )
    assert GLOBAL_REGISTRY is traffik.fastapi.GLOBAL_REGISTRY
    assert Bypass is traffik.fastapi.Bypass
    assert Rule is traffik.fastapi.Rule
    assert ThrottleRegistry is traffik.fastapi.ThrottleRegistry


def test_1x_deprecated_rule_names_are_rule_and_bypass() -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.registry import BypassThrottleRule, ThrottleRule
    moved(caught, "from traffik.fastapi import Bypass", "from traffik.fastapi import Rule")
    assert "BypassThrottleRule is the traffik 1.x spelling (Bypass in traffik 2)" in str(
        caught[0].message
    )
    assert ThrottleRule is traffik.fastapi.Rule
    assert BypassThrottleRule is traffik.fastapi.Bypass


def test_circuit_breaker_from_traffik_error_handlers() -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.error_handlers import CircuitBreaker
    moved(caught, "from traffik.resilience import CircuitBreaker")
    assert CircuitBreaker is traffik.resilience.CircuitBreaker


def test_failover_from_traffik_error_handlers_fails_at_import() -> None:
    """The 1.x docs' line: failover was an on_error handler; in 2.x it is a backend."""
    with (
        pytest.warns(DeprecationWarning, match="CircuitBreaker"),
        pytest.raises(ImportError, match=r"failover is a backend: backend=FailoverBackend\("),
    ):
        from traffik.error_handlers import CircuitBreaker, failover  # type: ignore[attr-defined]  # noqa: F401


def test_retry_and_fallback_from_traffik_error_handlers_fail_at_import() -> None:
    with pytest.raises(ImportError, match=r"ResilientBackend\(primary, retry=Retry\("):
        from traffik.error_handlers import retry  # type: ignore[attr-defined]  # noqa: F401
    with pytest.raises(ImportError, match="FailoverBackend"):
        from traffik.error_handlers import backend_fallback  # type: ignore[attr-defined]  # noqa: F401


def test_custom_headers_import_from_their_1x_path_and_the_top_level() -> None:
    import traffik
    import traffik.fastapi

    with pytest.warns(DeprecationWarning, match=r"use `from traffik.fastapi import Header`"):
        from traffik.headers import Header
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling"):
        from traffik.headers import DEFAULT_HEADERS_ALWAYS, DEFAULT_HEADERS_THROTTLED, Headers
    assert Header is traffik.fastapi.Header is traffik.Header
    assert Headers is traffik.fastapi.Headers is traffik.Headers
    assert DEFAULT_HEADERS_ALWAYS is traffik.DEFAULT_HEADERS_ALWAYS
    assert DEFAULT_HEADERS_THROTTLED is traffik.DEFAULT_HEADERS_THROTTLED


def test_quotas_and_stats_fail_at_import() -> None:
    with pytest.warns(DeprecationWarning, match="from traffik.quota_context import QuotaContext"):
        from traffik.quotas import QuotaContext  # noqa: F401
    with pytest.raises(ImportError, match=r"traffik\.ThrottleStat"):
        from traffik.types import StrategyStat  # type: ignore[attr-defined]  # noqa: F401


def test_a_1x_app_written_with_1x_paths_limits() -> None:
    """1.x's middleware page, "Basic setup", at a rate small enough to reach."""
    from traffik.backends.inmemory import InMemoryBackend

    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling"):
        from traffik.middleware import MiddlewareThrottle, ThrottleMiddleware
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling"):
        from traffik.throttles import HTTPThrottle

    backend = InMemoryBackend()
    app = FastAPI(lifespan=backend.lifespan)

    throttle = HTTPThrottle(uid="global", rate="2/min")

    app.add_middleware(
        ThrottleMiddleware,
        middleware_throttles=[
            MiddlewareThrottle(throttle),
        ],
    )

    @app.get("/")
    async def index() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app) as client:
        statuses = [client.get("/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]

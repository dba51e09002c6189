"""traffik 1.x keywords and methods of HTTP throttles, the middleware, the decorator and the
registry, written as the 1.x documentation writes them: kept ones behave as in 1.x (units
included), refused ones fail when built or called, naming the 2.x way."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from traffik import ConfigurationError, HTTPThrottle, InMemoryBackend, is_throttled
from traffik._legacy_keywords import LEGACY_KEYWORDS, LegacyError
from traffik.fastapi import (
    Bypass,
    MiddlewareThrottle,
    Rule,
    ThrottleMiddleware,
    ThrottleRegistry,
    throttled,
)

ClientFactory = Callable[..., TestClient]

# -- skip_handler: "Skip Handler" in the 1.x docs --------------------------------------------


def test_skip_handler_on_the_throttle(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    app = FastAPI(lifespan=backend.lifespan)
    reports_throttle = HTTPThrottle(
        "api:reports", rate="2/min", skip_handler=True, registry=ThrottleRegistry()
    )

    @app.get("/reports")
    async def get_reports(request: Request) -> dict[str, Any]:
        await reports_throttle(request)

        if is_throttled(request):
            # Still counted against the limit, still has a real wait time -
            # we're just choosing to serve something instead of a bare 429.
            return {"data": "cached", "stale": True}

        return {"data": "fresh"}

    client = client_for(app)
    bodies = [client.get("/reports").json() for _ in range(4)]
    assert bodies == [{"data": "fresh"}] * 2 + [{"data": "cached", "stale": True}] * 2


def test_skip_handler_per_call(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    app = FastAPI(lifespan=backend.lifespan)
    # Constructed with the normal default (skip_handler=False)
    throttle = HTTPThrottle("api:reports", rate="2/min", registry=ThrottleRegistry())

    @app.get("/reports")
    async def get_reports(request: Request) -> dict[str, Any]:
        await throttle(request)
        return {"data": "fresh"}

    @app.get("/reports/preview")
    async def get_reports_preview(request: Request) -> dict[str, Any]:
        # This one route wants to degrade instead of 429ing.
        await throttle(request, skip_handler=True)
        if is_throttled(request):
            return {"data": "cached", "stale": True}
        return {"data": "fresh"}

    client = client_for(app)
    assert [client.get("/reports").status_code for _ in range(3)] == [200, 200, 429]
    preview = [client.get("/reports/preview") for _ in range(3)]
    assert [r.status_code for r in preview] == [200, 200, 200]
    assert [r.json()["data"] for r in preview] == ["fresh", "fresh", "cached"]
    # A refusal skipping its handler still counts as refused: the first route still 429s.
    assert client.get("/reports").status_code == 429


def middleware_app(backend: InMemoryBackend, **middleware: Any) -> FastAPI:
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/api/items")
    async def items(request: Request) -> dict[str, bool]:
        return {"throttled": is_throttled(request)}

    throttle = HTTPThrottle("api:mw", rate="2/min", registry=ThrottleRegistry())
    entry_kwargs = middleware.pop("entry", {})
    app.add_middleware(
        ThrottleMiddleware,
        middleware_throttles=[MiddlewareThrottle(throttle, path="/api/", **entry_kwargs)],
        **middleware,
    )
    return app


@pytest.mark.parametrize(
    "middleware",
    [{"entry": {"skip_handler": True}}, {"skip_handler": True}],
    ids=["MiddlewareThrottle", "ThrottleMiddleware"],
)
def test_skip_handler_in_middleware(
    backend: InMemoryBackend, client_for: ClientFactory, middleware: dict[str, Any]
) -> None:
    client = client_for(middleware_app(backend, **middleware))
    responses = [client.get("/api/items") for _ in range(3)]
    # "A throttled request reaches your route either way": the route reads is_throttled.
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.json()["throttled"] for r in responses] == [False, False, True]


def test_the_middleware_skip_handler_overrides_the_throttles(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    app = middleware_app(backend, entry={"skip_handler": True}, skip_handler=False)
    client = client_for(app)
    assert [client.get("/api/items").status_code for _ in range(3)] == [200, 200, 429]


def test_skip_handler_must_be_a_bool() -> None:
    with pytest.raises(ConfigurationError, match="skip_handler must be True or False"):
        HTTPThrottle("api:bad", rate="2/min", skip_handler="yes", registry=ThrottleRegistry())  # type: ignore[arg-type]


# -- min_wait_period: milliseconds, a floor on refusals ------------------------------------


def test_min_wait_period_in_milliseconds(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    waits: list[float] = []

    async def handle_throttled(
        request: Request, wait_ms: float, throttle: Any, context: Any
    ) -> None:
        waits.append(wait_ms)
        raise HTTPException(429, f"Try again in {math.ceil(wait_ms / 1000)} seconds")

    throttle = HTTPThrottle(
        "api:floor",
        rate="2/s",
        min_wait_period=5000,  # 1.x: milliseconds
        handle_throttled=handle_throttled,  # type: ignore[arg-type]  # typed for Request
        registry=ThrottleRegistry(),
    )
    app = FastAPI(lifespan=backend.lifespan)
    app.get("/items", dependencies=[Depends(throttle)])(lambda: {"ok": True})
    client = client_for(app)
    responses = [client.get("/items") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert waits == [5000.0]  # the window ends in 1 s; the floor says 5 s
    assert responses[2].json() == {"detail": "Try again in 5 seconds"}


def test_min_wait_period_sets_retry_after(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle(
        "api:floor", rate="2/s", min_wait_period=5000, registry=ThrottleRegistry()
    )
    app = FastAPI(lifespan=backend.lifespan)
    app.get("/items", dependencies=[Depends(throttle)])(lambda: {"ok": True})
    client = client_for(app)
    responses = [client.get("/items") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[2].headers["Retry-After"] == "5"
    assert "Retry-After" not in responses[0].headers


# -- cache_ids, dynamic_rules -----------------------------------------------------------------


def test_dynamic_rules_is_taken_and_rules_added_later_apply(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    registry = ThrottleRegistry()
    throttle = HTTPThrottle("api:v1", rate="1/min", dynamic_rules=True, registry=registry)
    app = FastAPI(lifespan=backend.lifespan)
    app.get("/items", dependencies=[Depends(throttle)])(lambda: {"ok": True})
    app.get("/health", dependencies=[Depends(throttle)])(lambda: {"ok": True})
    client = client_for(app)
    assert client.get("/items").status_code == 200
    registry.add_rules("api:v1", Bypass(path="/health"))  # after the first hit
    assert [client.get("/health").status_code for _ in range(3)] == [200, 200, 200]
    assert client.get("/items").status_code == 429
    HTTPThrottle("api:v2", rate="1/min", dynamic_rules=False, registry=registry)


def test_cache_ids_true_is_taken_false_is_refused() -> None:
    HTTPThrottle("api:ids", rate="1/min", cache_ids=True, registry=ThrottleRegistry())
    with pytest.raises(LegacyError) as caught:
        HTTPThrottle("api:ids", rate="1/min", cache_ids=False, registry=ThrottleRegistry())  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"Throttle 'api:ids': cache_ids=... is traffik 1.x: {LEGACY_KEYWORDS['cache_ids']}"
    )


# -- ThrottleMiddleware(backend=...) and its other 1.x keywords ------------------------------


@pytest.mark.parametrize(
    ("keyword", "entry"),
    [
        ("backend", "middleware_backend"),
        ("exception_handler_getter", "exception_handler_getter"),
        ("context", "middleware_context"),
        ("sort", "sort"),
    ],
)
def test_middleware_1x_keywords_are_refused_naming_the_2x_way(keyword: str, entry: str) -> None:
    with pytest.raises(LegacyError) as caught:
        ThrottleMiddleware(FastAPI(), [], **{keyword: object()})  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"ThrottleMiddleware({keyword}=...) is traffik 1.x: {LEGACY_KEYWORDS[entry]}"
    )


def test_middleware_backend_is_refused_when_the_app_starts(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    app = FastAPI(lifespan=backend.lifespan)
    app.add_middleware(ThrottleMiddleware, middleware_throttles=[], backend=backend)  # type: ignore[arg-type]
    with pytest.raises(LegacyError, match=r"FastAPI\(lifespan=backend\.lifespan\)"):
        client_for(app)


# -- throttled(route=), as_middleware, add_rules ---------------------------------------------


def test_throttled_with_route(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    throttle = HTTPThrottle("api:decorated", rate="2/min", registry=ThrottleRegistry())

    async def list_items() -> dict[str, bool]:
        return {"ok": True}

    app = FastAPI(lifespan=backend.lifespan)
    app.get("/items")(throttled(throttle, route=list_items))
    client = client_for(app)
    assert [client.get("/items").status_code for _ in range(3)] == [200, 200, 429]


def test_as_middleware(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    throttle = HTTPThrottle("api:as-mw", rate="2/min", registry=ThrottleRegistry())

    async def items(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[Route("/api/items", items), Route("/other", items)],
        middleware=[throttle.as_middleware(path="/api/")],
        lifespan=backend.lifespan,
    )
    client = client_for(app)
    assert [client.get("/api/items").status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/other").status_code == 200
    with pytest.raises(LegacyError, match=r"as_middleware\(backend=\.\.\.\) is traffik 1\.x"):
        throttle.as_middleware(backend=backend)


def test_add_rules_on_a_throttle(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    registry = ThrottleRegistry()
    read = HTTPThrottle("api:read", rate="1/min", registry=registry)
    write = HTTPThrottle("api:write", rate="1/min", registry=registry)
    only_posts = Rule(methods={"POST"})
    read.add_rules("api:write", only_posts)
    assert registry.get_rules("api:write") == (only_posts,)
    app = FastAPI(lifespan=backend.lifespan)
    app.get("/items", dependencies=[Depends(write)])(lambda: {"ok": True})
    client = client_for(app)
    assert [client.get("/items").status_code for _ in range(3)] == [200, 200, 200]
    assert read.uid == "api:read"


# -- the registry ---------------------------------------------------------------------------


async def test_registry_switches_are_awaitable_as_in_1x() -> None:
    registry = ThrottleRegistry()
    throttle = HTTPThrottle("api:write", rate="50/min", registry=registry)
    found = await registry.disable("api:write")  # True if throttle is alive
    assert found is True
    assert throttle.is_disabled
    found = await registry.enable("api:write")
    assert found is True
    assert not throttle.is_disabled
    await registry.disable_all()
    assert throttle.is_disabled
    await registry.enable_all()
    await throttle.disable()
    assert throttle.is_disabled


def test_registry_register_1x_forms() -> None:
    registry = ThrottleRegistry()
    with pytest.raises(LegacyError, match=r"register\('api:v1'\) is traffik 1\.x: a throttle"):
        registry.register("api:v1")
    throttle = HTTPThrottle("api:v1", rate="1/min", registry=ThrottleRegistry())
    registry.register("api:v1", throttle)
    assert registry.get_throttle("api:v1") is throttle
    with pytest.raises(ConfigurationError, match="the throttle's uid is 'api:v1'"):
        registry.register("api:v2", throttle)
    registry.add_rules("api:v1", Bypass(path="/health"))
    registry.unregister("api:v1")  # 1.x: by uid, with its rules
    assert not registry.exists("api:v1")
    assert registry.get_rules("api:v1") == ()


async def test_update_handle_throttled_is_refused_naming_the_2x_way() -> None:
    throttle = HTTPThrottle("api:v1", rate="1/min", registry=ThrottleRegistry())
    with pytest.raises(LegacyError, match=r"HTTPThrottle\.update_handle_throttled\(\)"):
        await throttle.update_handle_throttled(None)
    with pytest.raises(LegacyError, match="pass rate= an async function"):
        await throttle.update_rate("200/min")

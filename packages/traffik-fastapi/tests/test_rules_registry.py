"""Rule / Bypass, switching throttles on and off, and the registry."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest
from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection
from starlette.testclient import TestClient

from traffik import (
    GLOBAL_REGISTRY,
    Bypass,
    ConfigurationError,
    HTTPThrottle,
    InMemoryBackend,
    Rule,
    ThrottleRegistry,
)

ClientFactory = Callable[..., TestClient]


def app_with(backend: InMemoryBackend, throttle: HTTPThrottle) -> FastAPI:
    app = FastAPI(lifespan=backend.lifespan)
    for path in ("/api/items", "/api/admin", "/health"):
        app.add_api_route(path, _ok, methods=["GET", "POST"], dependencies=[Depends(throttle)])
    return app


async def _ok() -> dict[str, bool]:
    return {"ok": True}


def statuses(client: TestClient, method: str, path: str, count: int, **kwargs: object) -> list[int]:
    return [client.request(method, path, **kwargs).status_code for _ in range(count)]  # type: ignore[arg-type]


def test_rules_limit_only_matching_requests(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("writes", rate="1/min", rules=[Rule("/api/**", methods=["POST"])])
    client = client_for(app_with(backend, throttle))
    assert statuses(client, "GET", "/api/items", 3) == [200, 200, 200]
    assert statuses(client, "POST", "/health", 3) == [200, 200, 200]
    assert statuses(client, "POST", "/api/items", 2) == [200, 429]
    assert len(backend) == 1  # requests the rules skip never reach the backend


def test_bypasses_skip_matching_requests(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    async def is_admin(connection: HTTPConnection) -> bool:
        return connection.headers.get("x-role") == "admin"

    throttle = HTTPThrottle(
        "bypassed", rate="1/min", rules=[Bypass("/health"), Bypass(predicate=is_admin)]
    )
    client = client_for(app_with(backend, throttle))
    assert statuses(client, "GET", "/health", 3) == [200, 200, 200]
    assert statuses(client, "GET", "/api/items", 3, headers={"x-role": "admin"}) == [200] * 3
    assert statuses(client, "GET", "/api/items", 2) == [200, 429]


def test_disable_and_enable(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    throttle = HTTPThrottle("switch", rate="1/min")
    client = client_for(app_with(backend, throttle))
    throttle.disable()
    assert statuses(client, "GET", "/health", 3) == [200, 200, 200]
    assert len(backend) == 0
    throttle.enable()
    assert statuses(client, "GET", "/health", 2) == [200, 429]


def test_the_registry_switches_and_rules_by_uid(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    registry = ThrottleRegistry()
    throttle = HTTPThrottle("managed", rate="1/min", registry=registry)
    client = client_for(app_with(backend, throttle))
    assert "managed" in registry
    assert registry.get_throttle("managed") is throttle
    assert (registry.count(), len(registry), registry.uids()) == (1, 1, ["managed"])

    registry.disable("managed")
    assert statuses(client, "GET", "/health", 2) == [200, 200]
    registry.enable("managed")
    registry.add_rules("managed", Bypass("/health"))
    assert registry.get_rules("managed") == (registry.get_rules("managed")[0],)
    assert statuses(client, "GET", "/health", 2) == [200, 200]
    assert statuses(client, "GET", "/api/items", 2) == [200, 429]

    # Rules added by uid reach throttles registered later too.
    later = HTTPThrottle("managed", rate="1/min", registry=registry)
    assert later.rules == registry.get_rules("managed")
    registry.clear_rules("managed")
    assert later.rules == ()

    registry.disable_all()
    assert throttle.is_disabled
    assert later.is_disabled
    registry.enable_all()
    assert not throttle.is_disabled


def test_the_registry_forgets_collected_throttles() -> None:
    registry = ThrottleRegistry()
    HTTPThrottle("ephemeral", rate="1/min", registry=registry)
    gc.collect()
    assert not registry.exists("ephemeral")
    with pytest.raises(KeyError, match="ephemeral"):
        registry.disable("ephemeral")


def test_throttles_register_globally_by_default() -> None:
    throttle = HTTPThrottle("global-one", rate="1/min")
    assert throttle in GLOBAL_REGISTRY.get_throttles("global-one")
    GLOBAL_REGISTRY.unregister(throttle)
    assert throttle not in GLOBAL_REGISTRY.get_throttles("global-one")


def test_bad_rules_are_named() -> None:
    with pytest.raises(ConfigurationError, match=r"'\['"):
        Rule("[")
    with pytest.raises(ConfigurationError, match="'GETS'"):
        Bypass(methods=["GETS"])
    with pytest.raises(ConfigurationError, match="'nope'"):
        ThrottleRegistry().add_rules("x", "nope")  # type: ignore[arg-type]
    assert repr(Rule("/a", methods=["get"])) == "Rule(path='/a', methods=['GET'], predicate=None)"

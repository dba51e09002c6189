from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from traffik import (
    EXEMPTED,
    ConfigurationError,
    ConnectionThrottled,
    Decision,
    ExemptedType,
    HTTPThrottle,
    InMemoryBackend,
    ManualClock,
    TokenBucket,
)
from traffik.fastapi import remote_address, throttled_exception_handler


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000.0)  # 40 s into a minute


@pytest.fixture
def backend(clock: ManualClock) -> InMemoryBackend:
    return InMemoryBackend(namespace="test", clock=clock)


def client_for(app: Any, host: str = "10.0.0.1") -> TestClient:
    return TestClient(app, client=(host, 50000))


def make_app(backend: InMemoryBackend, throttle: HTTPThrottle) -> FastAPI:
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/items", dependencies=[Depends(throttle)])
    async def list_items() -> dict[str, list[str]]:
        return {"items": ["widget"]}

    @app.get("/items/{item_id}", dependencies=[Depends(throttle)])
    async def get_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.post("/items", dependencies=[Depends(throttle)])
    async def create_item() -> dict[str, bool]:
        return {"created": True}

    return app


@pytest.fixture
def app(backend: InMemoryBackend) -> FastAPI:
    return make_app(backend, HTTPThrottle("api:items", rate="3/min"))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with client_for(app) as client:
        yield client


def test_over_the_limit_gets_429_with_retry_after_and_json(client: TestClient) -> None:
    assert [client.get("/items").status_code for _ in range(3)] == [200, 200, 200]
    response = client.get("/items")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "20"
    assert response.json() == {"detail": "Too many requests. Retry in 20 seconds."}


def test_retry_after_rounds_up(backend: InMemoryBackend, clock: ManualClock) -> None:
    clock.set(1_000.25)  # 19.75 s before the next minute
    with client_for(make_app(backend, HTTPThrottle("t", rate="1/min"))) as client:
        client.get("/items")
        assert client.get("/items").headers["Retry-After"] == "20"


def test_clients_are_limited_apart(app: FastAPI) -> None:
    with client_for(app, "10.0.0.1") as first, client_for(app, "10.0.0.2") as second:
        for _ in range(3):
            first.get("/items")
        assert first.get("/items").status_code == 429
        assert second.get("/items").status_code == 200


def test_route_templates_share_one_budget_and_methods_are_apart(client: TestClient) -> None:
    assert [client.get(f"/items/{i}").status_code for i in range(4)] == [200, 200, 200, 429]
    assert client.post("/items").status_code == 200


def test_use_method_false_shares_the_budget_across_methods(backend: InMemoryBackend) -> None:
    app = make_app(backend, HTTPThrottle("t", rate="2/min", use_method=False))
    with client_for(app) as client:
        assert client.get("/items").status_code == 200
        assert client.post("/items").status_code == 200
        assert client.get("/items").status_code == 429


def test_throttle_parameters_stay_out_of_the_openapi_schema(backend: InMemoryBackend) -> None:
    throttled = make_app(backend, HTTPThrottle("t", rate="2/min")).openapi()
    bare = FastAPI()

    @bare.get("/items")
    async def list_items() -> dict[str, list[str]]:
        return {"items": []}

    @bare.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @bare.post("/items")
    async def create_item() -> dict[str, bool]:
        return {"created": True}

    assert throttled["paths"] == bare.openapi()["paths"]


def test_the_lifespan_backend_is_used(app: FastAPI, backend: InMemoryBackend) -> None:
    with client_for(app) as client:
        client.get("/items")
        assert len(backend) == 1
    # Shutting down keeps the counters.
    assert len(backend) == 1


def test_an_explicit_backend_wins(backend: InMemoryBackend, clock: ManualClock) -> None:
    own = InMemoryBackend("own", clock=clock)
    app = make_app(backend, HTTPThrottle("t", rate="2/min", backend=own))
    with client_for(app) as client:
        client.get("/items")
    assert (len(own), len(backend)) == (1, 0)


def test_direct_await_on_plain_starlette(backend: InMemoryBackend) -> None:
    throttle = HTTPThrottle("plain", rate="2/min")

    async def homepage(request: Request) -> Response:
        decision = await throttle(request)
        return JSONResponse({"remaining": decision.remaining})

    app = Starlette(
        routes=[Route("/", homepage)],
        lifespan=backend.lifespan,
        exception_handlers={ConnectionThrottled: throttled_exception_handler},
    )
    with client_for(app) as client:
        assert client.get("/").json() == {"remaining": 1}
        assert client.get("/").json() == {"remaining": 0}
        refused = client.get("/")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "20"
        assert refused.json()["detail"].startswith("Too many requests")


def test_exempted_clients_pass_untouched(backend: InMemoryBackend) -> None:
    async def identify(connection: HTTPConnection) -> str | ExemptedType:
        if connection.headers.get("x-api-key") == "internal":
            return EXEMPTED
        return connection.client.host if connection.client else "anonymous"

    app = make_app(backend, HTTPThrottle("t", rate="1/min", identifier=identify))
    with client_for(app) as client:
        for _ in range(5):
            assert client.get("/items", headers={"x-api-key": "internal"}).status_code == 200
        assert len(backend) == 0
        assert client.get("/items").status_code == 200
        assert client.get("/items").status_code == 429


def test_custom_handle_throttled(backend: InMemoryBackend) -> None:
    seen: list[Decision] = []

    async def note(connection: HTTPConnection, decision: Decision, throttle: HTTPThrottle) -> None:
        seen.append(decision)  # let the request through, but remember

    app = make_app(backend, HTTPThrottle("t", rate="1/min", handle_throttled=note))
    with client_for(app) as client:
        assert [client.get("/items").status_code for _ in range(2)] == [200, 200]
    assert len(seen) == 1
    assert not seen[0].allowed


def test_strategies_plug_in(backend: InMemoryBackend) -> None:
    throttle = HTTPThrottle("t", rate="60/min", strategy=TokenBucket(burst_size=2))
    with client_for(make_app(backend, throttle)) as client:
        assert [client.get("/items").status_code for _ in range(3)] == [200, 200, 429]
        assert client.get("/items").headers["Retry-After"] == "1"


class TestProxies:
    def app(self, backend: InMemoryBackend, trusted: list[str]) -> FastAPI:
        throttle = HTTPThrottle("t", rate="1/min", identifier=remote_address(trusted))
        return make_app(backend, throttle)

    def test_a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(
        self, backend: InMemoryBackend
    ) -> None:
        with client_for(self.app(backend, ["10.9.9.9"]), "203.0.113.7") as client:
            assert client.get("/items", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 200
            spoofed = client.get("/items", headers={"X-Forwarded-For": "2.2.2.2"})
            assert spoofed.status_code == 429

    def test_a_trusted_proxy_is_believed_and_walked_right_to_left(
        self, backend: InMemoryBackend
    ) -> None:
        with client_for(self.app(backend, ["10.0.0.0/8"]), "10.0.0.1") as proxy:
            # The client forged the leftmost entry; the proxies appended the real one.
            chain = {"X-Forwarded-For": "6.6.6.6, 198.51.100.4, 10.0.0.7"}
            assert proxy.get("/items", headers=chain).status_code == 200
            other = {"X-Forwarded-For": "7.7.7.7, 198.51.100.4, 10.0.0.7"}
            assert proxy.get("/items", headers=other).status_code == 429
            assert (
                proxy.get("/items", headers={"X-Forwarded-For": "198.51.100.5"}).status_code == 200
            )

    def test_forwarded_and_x_real_ip(self, backend: InMemoryBackend) -> None:
        with client_for(self.app(backend, ["10.0.0.1"]), "10.0.0.1") as proxy:
            forwarded = {"Forwarded": 'for="[2001:db8::1]:4711";proto=https, for=10.0.0.1'}
            assert proxy.get("/items", headers=forwarded).status_code == 200
            assert proxy.get("/items", headers={"X-Real-IP": "2001:db8::1"}).status_code == 429

    def test_bad_proxy_configuration_is_named(self) -> None:
        with pytest.raises(ConfigurationError, match=r"'10\.0\.0\.300'"):
            remote_address(["10.0.0.300"])
        with pytest.raises(ConfigurationError, match="'x-client'"):
            remote_address(["10.0.0.1"], headers=["x-client"])  # type: ignore[list-item]


def test_lifespan_composes_with_an_applications_own(backend: InMemoryBackend) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with backend.lifespan(app):
            events.append("started")
            yield
        events.append("stopped")

    throttle = HTTPThrottle("t", rate="1/min")
    app = FastAPI(lifespan=lifespan)

    @app.get("/", dependencies=[Depends(throttle)])
    async def index() -> dict[str, str]:
        return {}

    with client_for(app) as client:
        assert client.get("/").status_code == 200
        assert client.get("/").status_code == 429
    assert events == ["started", "stopped"]

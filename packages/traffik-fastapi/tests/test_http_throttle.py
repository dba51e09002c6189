"""HTTPThrottle as a FastAPI dependency: limits, keys, backends, customisation, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection, Request
from starlette.testclient import TestClient

from traffik import (
    EXEMPTED,
    ConfigurationError,
    Decision,
    ExemptedType,
    HTTPThrottle,
    InMemoryBackend,
    ManualClock,
    Rate,
    TokenBucket,
)
from traffik.fastapi import BaseHTTPThrottle, ThrottleRegistry, get_decision

ClientFactory = Callable[..., TestClient]


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


def test_over_the_limit_gets_429_with_retry_after_and_json(
    app: FastAPI, client_for: ClientFactory
) -> None:
    client = client_for(app)
    assert [client.get("/items").status_code for _ in range(3)] == [200, 200, 200]
    response = client.get("/items")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "20"
    assert response.json() == {"detail": "Too many requests. Retry in 20 seconds."}


def test_retry_after_rounds_up(
    backend: InMemoryBackend, clock: ManualClock, client_for: ClientFactory
) -> None:
    clock.set(1_000.25)  # 19.75 s before the next minute
    client = client_for(make_app(backend, HTTPThrottle("t", rate="1/min")))
    client.get("/items")
    assert client.get("/items").headers["Retry-After"] == "20"


def test_clients_are_limited_apart(app: FastAPI, client_for: ClientFactory) -> None:
    first, second = client_for(app, "10.0.0.1"), client_for(app, "10.0.0.2")
    for _ in range(3):
        first.get("/items")
    assert first.get("/items").status_code == 429
    assert second.get("/items").status_code == 200


def test_route_templates_share_one_budget_and_methods_are_apart(
    app: FastAPI, client_for: ClientFactory
) -> None:
    client = client_for(app)
    assert [client.get(f"/items/{i}").status_code for i in range(4)] == [200, 200, 200, 429]
    assert client.post("/items").status_code == 200


def test_key_by_path_counts_each_concrete_path(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    client = client_for(make_app(backend, HTTPThrottle("t", rate="1/min", key_by="path")))
    assert [client.get(f"/items/{i}").status_code for i in range(3)] == [200, 200, 200]
    assert client.get("/items/1").status_code == 429


def test_key_by_client_is_one_budget_across_routes(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("t", rate="2/min", key_by="client", use_method=False)
    client = client_for(make_app(backend, throttle))
    assert client.get("/items").status_code == 200
    assert client.post("/items").status_code == 200
    assert client.get("/items/7").status_code == 429


def test_use_method_false_shares_the_budget_across_methods(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    client = client_for(make_app(backend, HTTPThrottle("t", rate="2/min", use_method=False)))
    assert client.get("/items").status_code == 200
    assert client.post("/items").status_code == 200
    assert client.get("/items").status_code == 429


def test_keys_are_readable(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    client = client_for(make_app(backend, HTTPThrottle("api", rate="2/min")))
    client.get("/items/5")
    assert list(backend._entries) == ["api:{10.0.0.1}:GET:/items/{item_id}:fixed_window"]


def test_throttle_parameters_stay_out_of_the_openapi_schema(backend: InMemoryBackend) -> None:
    throttled_schema = make_app(backend, HTTPThrottle("t", rate="2/min")).openapi()
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

    assert throttled_schema == bare.openapi()


def test_the_lifespan_backend_is_used(
    app: FastAPI, backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    client = client_for(app)
    client.get("/items")
    assert len(backend) == 1
    client.__exit__(None, None, None)
    assert len(backend) == 1  # shutting down keeps the counters


def test_an_explicit_backend_wins(
    backend: InMemoryBackend, clock: ManualClock, client_for: ClientFactory
) -> None:
    own = InMemoryBackend("own", clock=clock)
    client = client_for(make_app(backend, HTTPThrottle("t", rate="2/min", backend=own)))
    client.get("/items")
    assert (len(own), len(backend)) == (1, 0)


def test_exempted_clients_pass_untouched(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    async def identify(connection: HTTPConnection) -> str | ExemptedType:
        if connection.headers.get("x-api-key") == "internal":
            return EXEMPTED
        return connection.client.host if connection.client else "anonymous"

    client = client_for(make_app(backend, HTTPThrottle("t", rate="1/min", identifier=identify)))
    for _ in range(5):
        response = client.get("/items", headers={"x-api-key": "internal"})
        assert response.status_code == 200
        assert "ratelimit" not in response.headers
    assert len(backend) == 0
    assert client.get("/items").status_code == 200
    assert client.get("/items").status_code == 429


def test_custom_on_throttled_and_context(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    seen: list[tuple[Decision, Mapping[str, Any]]] = []

    async def note(
        connection: HTTPConnection,
        decision: Decision,
        throttle: BaseHTTPThrottle,
        context: Mapping[str, Any],
    ) -> None:
        seen.append((decision, context))  # let the request through, but remember

    throttle = HTTPThrottle("t", rate="1/min", on_throttled=note, context={"scope": "x"})
    client = client_for(make_app(backend, throttle))
    assert [client.get("/items").status_code for _ in range(2)] == [200, 200]
    assert len(seen) == 1
    assert not seen[0][0].allowed
    assert seen[0][1] == {"scope": "x"}


def test_context_sets_status_detail_and_headers(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle(
        "t",
        rate="1/min",
        context={"status_code": 503, "detail": "Busy", "headers": {"X-Reason": "quota"}},
    )
    client = client_for(make_app(backend, throttle))
    client.get("/items")
    response = client.get("/items")
    assert response.status_code == 503
    assert response.json() == {"detail": "Busy"}
    assert response.headers["x-reason"] == "quota"
    assert response.headers["retry-after"] == "20"


def test_per_call_cost_and_context_on_a_direct_call(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("t", rate="10/min")
    app = FastAPI(lifespan=backend.lifespan)

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, int]:
        size = int(request.headers["x-size"])
        await throttle(request, cost=size, context={"detail": f"{size} is too many"})
        decision = get_decision(request, throttle)
        assert decision is not None
        return {"remaining": decision.remaining}

    client = client_for(app)
    assert client.post("/upload", headers={"x-size": "7"}).json() == {"remaining": 3}
    refused = client.post("/upload", headers={"x-size": "4"})
    assert refused.status_code == 429
    assert refused.json() == {"detail": "4 is too many"}
    assert client.post("/upload", headers={"x-size": "3"}).json() == {"remaining": 0}


def test_cost_and_rate_as_functions_of_the_request(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    async def rate(connection: HTTPConnection) -> str:
        return "5/min" if connection.headers.get("x-tier") == "pro" else "2/min"

    async def cost(connection: HTTPConnection) -> int:
        return int(connection.headers.get("x-cost", "1"))

    client = client_for(make_app(backend, HTTPThrottle("t", rate=rate, cost=cost)))
    assert client.get("/items", headers={"x-cost": "2"}).status_code == 200
    assert client.get("/items").status_code == 429
    pro = client_for(make_app(backend, HTTPThrottle("p", rate=rate, cost=cost)), "10.0.0.9")
    admitted = pro.get("/items", headers={"x-tier": "pro", "x-cost": "5"})
    assert admitted.status_code == 200
    assert admitted.headers["ratelimit-policy"] == '"p";q=5;w=60'  # the rate of this request
    assert pro.get("/items", headers={"x-tier": "pro"}).status_code == 429


def test_a_rate_function_returning_garbage_names_the_value(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    async def rate(connection: HTTPConnection) -> Any:
        return 42

    client = client_for(make_app(backend, HTTPThrottle("t", rate=rate)))
    with pytest.raises(ConfigurationError, match=r"returned 42"):
        client.get("/items")


def test_strategies_plug_in(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    throttle = HTTPThrottle("t", rate="60/min", strategy=TokenBucket(burst_size=2))
    client = client_for(make_app(backend, throttle))
    assert [client.get("/items").status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/items").headers["Retry-After"] == "1"


def test_lifespan_composes_with_an_applications_own(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
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

    client = client_for(app)
    assert client.get("/").status_code == 200
    assert client.get("/").status_code == 429
    client.__exit__(None, None, None)
    assert events == ["started", "stopped"]


def test_included_routers_key_by_their_full_template(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    from fastapi import APIRouter

    throttle = HTTPThrottle("t", rate="1/min")
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    app = FastAPI(lifespan=backend.lifespan)
    app.include_router(router, prefix="/v1", dependencies=[Depends(throttle)])
    app.include_router(router, prefix="/v2", dependencies=[Depends(throttle)])
    client = client_for(app)
    assert client.get("/v1/items/1").status_code == 200
    assert client.get("/v1/items/2").status_code == 429
    assert client.get("/v2/items/1").status_code == 200
    assert sorted(backend._entries) == [
        "t:{10.0.0.1}:GET:/v1/items/{item_id}:fixed_window",
        "t:{10.0.0.1}:GET:/v2/items/{item_id}:fixed_window",
    ]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"key_by": "host"}, "'host'"),
        ({"headers": ["X-Rate"]}, "'X-Rate'"),
        ({"headers": ["Retry-After"]}, "Retry-After"),
        ({"handle_throttled": 3}, "3"),
        ({"context": ["status_code"]}, "status_code"),
        ({"rules": ["/api"]}, "'/api'"),
        ({"registry": {}}, r"\{\}"),
    ],
)
def test_bad_configuration_names_the_value(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        HTTPThrottle("t", rate="1/s", **kwargs)


def test_a_uid_that_cannot_be_a_header_policy_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'café'"):
        HTTPThrottle("café", rate="1/s")
    HTTPThrottle("café", rate="1/s", headers=False)  # fine without headers


def test_repr_and_registry(backend: InMemoryBackend) -> None:
    registry = ThrottleRegistry()
    throttle = HTTPThrottle("t", rate=Rate(limit=5, seconds=2), registry=registry)
    assert repr(throttle) == "HTTPThrottle('t', rate=5/2s, strategy=FixedWindow())"
    assert registry.get_throttle("t") is throttle


def test_decorators_and_concurrency_limits_stay_out_of_the_openapi_schema() -> None:
    from traffik import ConcurrencyLimit, throttled

    throttle = HTTPThrottle("schema", rate="2/min")
    limit = ConcurrencyLimit("schema-slots", max_in_flight=2)
    throttled_app, bare = FastAPI(), FastAPI()

    async def search(q: str, page: int = 1) -> dict[str, Any]:
        return {"q": q, "page": page}

    def report(report_id: int) -> dict[str, int]:
        return {"id": report_id}

    throttled_app.get("/search")(throttled(throttle, limit)(search))
    throttled_app.get("/reports/{report_id}", dependencies=[Depends(limit)])(report)
    bare.get("/search")(search)
    bare.get("/reports/{report_id}")(report)
    assert throttled_app.openapi() == bare.openapi()

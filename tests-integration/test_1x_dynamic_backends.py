"""traffik 1.x's per-request backends (docs "Context-Aware Backends (Multi-Tenant)"),
written the 1.x way, on two real Redis databases: ``dynamic_backend=True`` and a middleware
entering ``async with tenant_backend(close_on_exit=False, persistent=True):``.

Only the backends' constructors are 2.x (1.x's ``persistent=`` keyword on them is another
item); the throttles, the lifespan, the middleware and the nested contexts are 1.x's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import Response

from traffik import HTTPThrottle, Limiter, ManualClock, hit_all
from traffik.backends.inmemory import InMemoryBackend
from traffik.backends.redis import RedisBackend
from traffik.exceptions import ConfigurationError

NOW = 1_800_000_010.0  # 10 s into a minute, 10 s into an hour


def database_url(redis_url: str, db: int) -> str:
    return f"{redis_url.rstrip('/')}/{db}"


async def keys_in(redis_url: str, db: int, namespace: str) -> list[str]:
    """The keys of ``namespace`` in logical database ``db``, read with a raw client."""
    client = aioredis.from_url(database_url(redis_url, db), decode_responses=True)
    try:
        return sorted([key async for key in client.scan_iter(match=f"*{namespace}*")])
    finally:
        await client.aclose()


def decode_tenant_tier(auth: str) -> str:
    return auth.removeprefix("Bearer ")


def test_1x_multi_tenant_middleware_routes_each_tenant_to_its_own_redis_database(
    redis_url: str, namespace: str
) -> None:
    # One throttle, three different backends depending on tenant tier (1.x docs).
    api_throttle = HTTPThrottle(uid="api:quota", rate="3/hour", dynamic_backend=True)
    assert api_throttle.backend is None

    clock = ManualClock(NOW)
    enterprise_backend = RedisBackend(
        database_url(redis_url, 1), namespace=f"{namespace}-enterprise", clock=clock
    )
    premium_backend = RedisBackend(
        database_url(redis_url, 2), namespace=f"{namespace}-premium", clock=clock
    )
    free_backend = InMemoryBackend(f"{namespace}-free", clock=clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            enterprise_backend(app, close_on_exit=False, persistent=True),
            premium_backend(app, close_on_exit=False, persistent=True),
            free_backend(app, close_on_exit=False, persistent=True),
        ):
            yield

    class TenantRoutingMiddleware(BaseHTTPMiddleware):
        async def dispatch(
            self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            auth = request.headers.get("authorization", "")
            tier = decode_tenant_tier(auth)
            if tier == "enterprise":
                async with enterprise_backend(close_on_exit=False, persistent=True):
                    return await call_next(request)
            elif tier == "premium":
                async with premium_backend(close_on_exit=False, persistent=True):
                    return await call_next(request)
            else:
                async with free_backend(close_on_exit=False, persistent=True):
                    return await call_next(request)

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(TenantRoutingMiddleware)

    @app.get("/api/data", dependencies=[Depends(api_throttle)])
    async def get_data() -> dict[str, str]:
        return {"data": "..."}

    def statuses(client: TestClient, tier: str, count: int) -> list[int]:
        headers = {"Authorization": f"Bearer {tier}"}
        return [client.get("/api/data", headers=headers).status_code for _ in range(count)]

    # Every tenant's client has the same address: only the backend tells them apart.
    with TestClient(app, client=("198.51.100.7", 40000)) as client:
        try:
            assert statuses(client, "enterprise", 4) == [200, 200, 200, 429]
            assert len(free_backend) == 0  # nothing reached the app's backend
            assert statuses(client, "premium", 4) == [200, 200, 200, 429]
            assert len(free_backend) == 0
            assert statuses(client, "free", 4) == [200, 200, 200, 429]
            assert len(free_backend) == 1
            assert statuses(client, "enterprise", 1) == [429]  # still counted in db 1
        finally:  # close_on_exit=False left them open: close them in the app's loop
            client.portal.call(_close, enterprise_backend, premium_backend)
    enterprise_keys = asyncio.run(keys_in(redis_url, 1, namespace))
    premium_keys = asyncio.run(keys_in(redis_url, 2, namespace))
    assert len(enterprise_keys) == 1
    assert f"{namespace}-enterprise" in enterprise_keys[0]
    assert len(premium_keys) == 1
    assert f"{namespace}-premium" in premium_keys[0]
    assert asyncio.run(keys_in(redis_url, 0, namespace)) == []


async def _close(*backends: RedisBackend) -> None:
    for backend in backends:
        await backend.close()


async def test_1x_nested_contexts_switch_backends(redis_url: str, namespace: str) -> None:
    """The 1.x docs' "Testing with Nested Contexts", on two Redis databases."""
    clock = ManualClock(NOW)
    throttle = Limiter(uid="test:dynamic", rate="2/min", dynamic_backend=True)
    backend_a = RedisBackend(database_url(redis_url, 1), namespace=f"{namespace}-a", clock=clock)
    backend_b = RedisBackend(database_url(redis_url, 2), namespace=f"{namespace}-b", clock=clock)
    async with backend_a():
        assert (await throttle.decide("request")).allowed  # backend_a - hit 1
        assert (await throttle.decide("request")).allowed  # backend_a - hit 2
        async with backend_b():
            # Inner context switches to backend_b - fresh counter
            assert (await throttle.decide("request")).allowed  # backend_b - hit 1
            assert (await throttle.decide("request")).allowed  # backend_b - hit 2
        # Back to backend_a - counter is still at 2: the third hit is throttled
        assert not (await throttle.decide("request")).allowed
    assert len(await keys_in(redis_url, 1, f"{namespace}-a")) == 1
    assert len(await keys_in(redis_url, 2, f"{namespace}-b")) == 1
    assert await keys_in(redis_url, 2, f"{namespace}-a") == []


def test_1x_dynamic_backend_with_an_explicit_backend_is_refused_at_construction() -> None:
    my_backend = InMemoryBackend("x")
    with pytest.raises(ConfigurationError, match="dynamic_backend"):
        HTTPThrottle(uid="bad", rate="100/min", dynamic_backend=True, backend=my_backend)


async def test_thousands_of_concurrent_hits_count_exactly_per_tenant_database(
    redis_url: str, namespace: str
) -> None:
    """Requests of two tenants interleaved: each tenant's limit is exact in its own db."""
    clock = ManualClock(NOW)
    throttle = Limiter(uid="api", rate="100/min", dynamic_backend=True)
    tenants = {
        1: RedisBackend(database_url(redis_url, 1), namespace=f"{namespace}-t1", clock=clock),
        2: RedisBackend(database_url(redis_url, 2), namespace=f"{namespace}-t2", clock=clock),
    }

    async def request(db: int) -> bool:
        async with tenants[db]:
            return (await throttle.decide("client")).allowed

    async with tenants[1], tenants[2]:  # started once, as a lifespan would
        results = await asyncio.gather(*(request(1 + i % 2) for i in range(2000)))
    admitted = {db: sum(ok for i, ok in enumerate(results) if 1 + i % 2 == db) for db in (1, 2)}
    assert admitted == {1: 100, 2: 100}
    assert len(await keys_in(redis_url, 1, f"{namespace}-t1")) == 1
    assert len(await keys_in(redis_url, 2, f"{namespace}-t2")) == 1


async def test_several_limits_of_one_request_are_all_or_nothing_on_the_tenants_backend(
    redis_url: str, namespace: str
) -> None:
    clock = ManualClock(NOW)
    per_minute = Limiter(uid="per-minute", rate="5/min", dynamic_backend=True)
    burst = Limiter(uid="burst", rate="2/min", dynamic_backend=True)
    tenant = RedisBackend(database_url(redis_url, 1), namespace=f"{namespace}-t", clock=clock)
    app_backend = InMemoryBackend(f"{namespace}-app", clock=clock)
    applied_many: list[int] = []
    original = tenant.apply_many

    async def counted(hits: Any) -> Any:
        applied_many.append(len(hits))
        return await original(hits)

    tenant.apply_many = counted  # type: ignore[method-assign]
    async with tenant, app_backend:
        async with tenant:
            calls = [(per_minute, "client"), (burst, "client")]
            assert [d.allowed for d in await hit_all(calls)] == [True, True]
            assert [d.allowed for d in await hit_all(calls)] == [True, True]
            assert [d.allowed for d in await hit_all(calls)] == [True, False]
            # The refused request consumed nothing of the other limit: 2 used of 5, and
            # a peeked request of cost 1 would leave 2.
            assert (await per_minute.peek("client")).remaining == 2
        assert len(app_backend) == 0
    assert applied_many == [2, 2, 2]  # one atomic step per request, on the tenant's backend
    assert len(await keys_in(redis_url, 1, f"{namespace}-t")) == 2

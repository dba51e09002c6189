"""Quota contexts on every backend kind (memory, a real Redis, a real Memcached): one
refusal consumes none of the throttles queued in the context — what 1.x did not promise
("QuotaContext is NOT atomic") — alone and under a thousand simultaneous contexts. And
the 1.x docs' bound-mode example as written there, on Redis.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from backend_kinds import BackendMaker
from fastapi import FastAPI, Request
from starlette.testclient import TestClient

from traffik import HTTPThrottle, Limiter, ManualClock, RateLimitExceeded
from traffik.quota_context import QuotaContext

NOW = 1_000.0  # 40 s into a minute


async def remaining(limiter: Limiter, key: str) -> int:
    stat = await limiter.stat(key)
    assert stat is not None
    return stat.remaining


async def test_one_refusal_consumes_none(make_backend: BackendMaker) -> None:
    backend = await make_backend(ManualClock(NOW))
    burst = Limiter("burst", "20/min", backend=backend)
    daily = Limiter("daily", "500/day", backend=backend)
    for _ in range(4):
        async with QuotaContext("client") as quota:
            await quota(burst, cost=5)
            await quota(daily, cost=5)

    async def fifth() -> None:
        async with QuotaContext("client") as quota:
            await quota(daily, cost=5)
            await quota(burst, cost=5)

    with pytest.raises(RateLimitExceeded):
        await fifth()
    assert await remaining(burst, "client") == 0
    assert await remaining(daily, "client") == 480  # 1.x consumed daily's 5 here


async def test_concurrent_contexts_consume_exactly_the_narrower_limit(
    make_backend: BackendMaker,
) -> None:
    backend = await make_backend(ManualClock(NOW))
    wide = Limiter("wide", "60/min", backend=backend)
    narrow = Limiter("narrow", "25/min", backend=backend)

    async def request() -> bool:
        try:
            async with QuotaContext("client") as quota:
                await quota(wide, cost=2)
                await quota(narrow)
        except RateLimitExceeded:
            return False
        return True

    results = await asyncio.gather(*(request() for _ in range(1000)))
    assert results.count(True) == 25
    assert await remaining(wide, "client") == 10  # only the 25 admitted took their 2
    assert await remaining(narrow, "client") == 0


def test_bound_mode_on_redis_as_in_the_1x_docs(redis_url: str, namespace: str) -> None:
    from traffik.backends.redis import RedisBackend

    backend = RedisBackend(redis_url, namespace=namespace)
    app = FastAPI(lifespan=backend.lifespan)

    throttle = HTTPThrottle("api:reports", rate="50/hour", backend=backend)
    generated: list[int] = []

    async def generate_expensive_report() -> str:
        generated.append(1)
        if len(generated) == 2:
            raise RuntimeError("report generation failed")
        return "report"

    @app.post("/reports/generate")
    async def generate_report(request: Request) -> Any:
        # Queue throttle hits — they are NOT consumed yet
        async with throttle.quota(request) as quota:
            await quota(cost=10)  # Queued: cost=10
            await quota(cost=5)  # Aggregated! Still one entry: cost=15

            # Do the expensive work
            report = await generate_expensive_report()

        # Context exits successfully -> quota consumed (15 units deducted)
        return {"report": report}

    with TestClient(app, raise_server_exceptions=False) as client:
        statuses = [client.post("/reports/generate").status_code for _ in range(5)]
    # The second failed (consumed nothing); three of 15 fit in 50; the fifth is refused.
    assert statuses == [200, 500, 200, 200, 429]

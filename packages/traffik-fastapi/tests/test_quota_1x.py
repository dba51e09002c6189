"""Quota contexts on HTTP throttles, written the traffik 1.x way, from the 1.x docs'
"Quota Context" page (bound and unbound mode, aggregation, apply_on_error,
apply_on_exit=False, check(), nesting), on the in-memory backend. The same on Redis:
tests-integration/test_quota_contexts.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Request
from starlette.testclient import TestClient

from traffik import HTTPThrottle, InMemoryBackend

ClientFactory = Callable[..., TestClient]


async def remaining(throttle: HTTPThrottle, path: str, method: str = "POST") -> int:
    """What is left of ``throttle`` for the test client on ``method path``."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [],
        "client": ("10.0.0.1", 50000),
    }
    stat = await throttle.stat(Request(scope))
    assert stat is not None
    return stat.remaining


async def generate_expensive_report(fail: bool) -> str:
    if fail:
        raise RuntimeError("report generation failed")
    return "report"


def test_bound_mode(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    app = FastAPI(lifespan=backend.lifespan)
    throttle = HTTPThrottle("api:reports", rate="50/hour", backend=backend, key_by="client")

    @app.post("/reports/generate")
    async def generate_report(request: Request, fail: bool = False) -> Any:
        # Queue throttle hits — they are NOT consumed yet
        async with throttle.quota(request) as quota:
            await quota(cost=10)  # Queued: cost=10
            await quota(cost=5)  # Aggregated! Still one entry: cost=15

            # Do the expensive work
            report = await generate_expensive_report(fail)

        # Context exits successfully -> quota consumed (15 units deducted)
        return {"report": report}

    client = client_for(app, raise_server_exceptions=False)
    assert client.post("/reports/generate").status_code == 200
    assert client.post("/reports/generate?fail=true").status_code == 500
    assert asyncio.run(remaining(throttle, "/reports/generate")) == 35  # the failure: free
    assert client.post("/reports/generate").status_code == 200
    assert client.post("/reports/generate").status_code == 200
    refused = client.post("/reports/generate")  # 5 left, 15 asked: 429, nothing consumed
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert asyncio.run(remaining(throttle, "/reports/generate")) == 5


def test_unbound_mode_consumes_both_or_neither(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    with pytest.warns(DeprecationWarning, match="traffik.quota_context"):
        from traffik.quotas import QuotaContext

    app = FastAPI(lifespan=backend.lifespan)
    burst_throttle = HTTPThrottle("api:burst", rate="20/min", backend=backend)
    daily_throttle = HTTPThrottle("api:daily", rate="500/day", backend=backend)
    exports: list[str] = []

    async def run_export() -> str:
        exports.append("done")
        return "export"

    @app.post("/exports")
    async def create_export(request: Request) -> Any:
        async with QuotaContext(request) as quota:
            # Must specify throttle explicitly in unbound mode
            await quota(burst_throttle, cost=5)
            await quota(daily_throttle, cost=5)

            result = await run_export()

        return {"export": result}

    client = client_for(app)
    assert [client.post("/exports").status_code for _ in range(5)] == [200] * 4 + [429]
    # The refused request consumed nothing of the daily limit either (1.x kept it).
    assert asyncio.run(remaining(daily_throttle, "/exports")) == 480
    assert asyncio.run(remaining(burst_throttle, "/exports")) == 0
    assert len(exports) == 5  # the work ran; its quota was refused at exit


def test_conditional_consumption(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    app = FastAPI(lifespan=backend.lifespan)
    throttle = HTTPThrottle("api:jobs", rate="20/min", backend=backend, key_by="client")

    async def risky_operation(kind: str) -> None:
        if kind == "value":
            raise ValueError("bad input")
        if kind == "other":
            raise KeyError("missing")

    @app.post("/jobs")
    async def job(request: Request, kind: str = "ok", valid: bool = True) -> Any:
        if kind != "ok":
            # Consume only for specific exception types
            async with throttle.quota(request, apply_on_error=(ValueError,)) as quota:
                await quota(cost=5)
                await risky_operation(kind)
        async with throttle.quota(request, apply_on_exit=False) as quota:
            await quota(cost=5)

            is_valid = valid
            if not is_valid:
                await quota.cancel()  # Discard — no quota consumed
                return {"error": "validation_failed"}

            result = "processed"
            await quota.apply()  # Manually consume quota after success
        return {"result": result}

    client = client_for(app, raise_server_exceptions=False)
    assert client.post("/jobs?kind=value").status_code == 500
    assert asyncio.run(remaining(throttle, "/jobs")) == 15  # ValueError: consumed
    assert client.post("/jobs?kind=other").status_code == 500
    assert asyncio.run(remaining(throttle, "/jobs")) == 15  # KeyError: not consumed
    assert client.post("/jobs?valid=false").json() == {"error": "validation_failed"}
    assert asyncio.run(remaining(throttle, "/jobs")) == 15
    assert client.post("/jobs").json() == {"result": "processed"}
    assert asyncio.run(remaining(throttle, "/jobs")) == 10


def test_check_inside_a_context(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    app = FastAPI(lifespan=backend.lifespan)
    throttle = HTTPThrottle("api:heavy", rate="25/min", backend=backend)

    @app.get("/heavy")
    async def heavy(request: Request) -> Any:
        # Check at the throttle level
        if not await throttle.check(request, cost=10):
            raise HTTPException(429, "Insufficient quota for this operation")

        # Check inside a quota context
        async with throttle.quota(request) as quota:
            await quota(cost=10)

            if not await quota.check():  # Check using the owner throttle
                await quota.cancel()
                raise HTTPException(429, "Rate limit would be exceeded")

        return {"ok": True}

    client = client_for(app)
    assert [client.get("/heavy").status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/heavy").json() == {"detail": "Insufficient quota for this operation"}


def test_nested_contexts(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    app = FastAPI(lifespan=backend.lifespan)
    throttle = HTTPThrottle("api:nested", rate="10/min", backend=backend)
    seen: dict[str, int] = {}

    @app.get("/nested")
    async def nested(request: Request) -> Any:
        async with throttle.quota(request) as parent:
            await parent(cost=2)

            async with parent.nested() as child:
                await child(cost=1)
                # child exits successfully -> merges cost=1 into parent's queue

            # Parent's queue now has cost=3 total
            await parent(cost=1)  # Aggregated: still same entry if config matches
            seen["queued"] = parent.queued_cost

        # All consumed here: 4 total units
        seen["applied"] = parent.applied_cost
        return seen

    client = client_for(app)
    assert client.get("/nested").json() == {"queued": 4, "applied": 4}
    assert [client.get("/nested").status_code for _ in range(2)] == [200, 429]


def test_the_refusal_handler_gets_the_wait_in_ms(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    app = FastAPI(lifespan=backend.lifespan)
    waits: list[tuple[float, Any]] = []

    async def handle_throttled(
        connection: Any, wait_ms: float, throttle: HTTPThrottle, context: Any
    ) -> None:
        waits.append((wait_ms, context.get("why")))
        raise HTTPException(503, "try later")

    throttle = HTTPThrottle(
        "api:handled", rate="2/min", backend=backend, handle_throttled=handle_throttled
    )

    @app.get("/handled")
    async def handled(request: Request) -> Any:
        async with throttle.quota(request, context={"why": "quota"}) as quota:
            await quota(cost=2)
        return {"ok": True}

    client = client_for(app)
    assert [client.get("/handled").status_code for _ in range(2)] == [200, 503]
    # 40 s into the minute (the clock fixture): 20 s to the next window, in ms.
    assert waits == [(20_000.0, "quota")]


def test_lock_is_refused_naming_the_2x_way(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("api:locked", rate="2/min", backend=backend)
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    with pytest.raises(ValueError, match="traffik 2 takes no locks"):
        throttle.quota(request, lock=True)
    with pytest.raises(ValueError, match="remove lock_config="):
        throttle.quota(request, lock_config={"ttl": 30, "blocking_timeout": 5})

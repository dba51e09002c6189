"""traffik 1.x's TieredRate and PriorityQueue configured the 1.x way — the tier and the
priority written in the identity after a marker — on memory, Redis and memcached.

The configurations are the 1.x docstring examples of ``TieredRateStrategy`` and
``PriorityQueueStrategy`` (``traffik.strategies.custom``), with smaller rates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest
from backend_kinds import BACKEND_KINDS, build_backend, server_url
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.requests import HTTPConnection

from traffik import HTTPThrottle, ManualClock, ThrottleBackend

with pytest.warns(DeprecationWarning, match="traffik 1.x spelling"):
    from traffik.strategies.custom import (
        Priority,
        PriorityQueueStrategy,
        TieredRateStrategy,
    )

NOW = 1_800_000_010.0  # 10 s into an hour


@dataclass
class User:
    id: str
    tier: str


def extract_user(connection: HTTPConnection) -> User:
    return User(connection.headers["x-user"], connection.headers.get("x-tier", "free"))


@pytest.fixture(params=BACKEND_KINDS)
def backend(request: pytest.FixtureRequest, namespace: str) -> ThrottleBackend:
    kind = request.param
    return build_backend(kind, ManualClock(NOW), namespace, server_url(kind, request))


def tiered_app(backend: ThrottleBackend) -> FastAPI:
    # Base rate: 2/hour. Free: 2/hour, Premium: 10/hour, Enterprise: 20/hour
    strategy = TieredRateStrategy(
        tier_multipliers={"free": 1.0, "premium": 5.0, "enterprise": 10.0},
        default_tier="free",
    )

    # Identifier should format as "tier:{tier}:user:{id}"
    async def tier_identifier(connection: HTTPConnection) -> str:
        user = extract_user(connection)
        return f"tier:{user.tier}:user:{user.id}"

    throttle = HTTPThrottle(
        uid="api",
        rate="2/hour",  # Base rate for free tier
        strategy=strategy,
        identifier=tier_identifier,
    )
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    return app


def admitted(client: TestClient, headers: dict[str, str], tries: int) -> int:
    """How many of ``tries`` requests got a 200 (the rest got 429s)."""
    statuses = [client.get("/items", headers=headers).status_code for _ in range(tries)]
    assert set(statuses) <= {200, 429}
    assert statuses == sorted(statuses)  # admitted first, then refused
    return statuses.count(200)


def test_1x_tier_in_the_identity_scales_the_limit(backend: ThrottleBackend) -> None:
    with TestClient(tiered_app(backend)) as client:
        assert admitted(client, {"x-user": "1", "x-tier": "free"}, 5) == 2
        assert admitted(client, {"x-user": "2", "x-tier": "premium"}, 15) == 10
        assert admitted(client, {"x-user": "3", "x-tier": "enterprise"}, 25) == 20
        # No tier written: the default tier, as in 1.x.
        assert admitted(client, {"x-user": "4", "x-tier": ""}, 5) == 2


def test_1x_unknown_tier_gets_the_default_and_is_said(
    backend: ThrottleBackend, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="traffik"), TestClient(tiered_app(backend)) as c:
        assert admitted(c, {"x-user": "5", "x-tier": f"gold-{backend.namespace}"}, 4) == 2
    said = [r.getMessage() for r in caplog.records if "gold" in r.getMessage()]
    assert len(said) == 1  # once, not once per request
    assert f"'gold-{backend.namespace}' is not one of" in said[0]
    assert "default 'free'" in said[0]


def test_1x_priority_in_the_identity_sheds_lower_priorities_first(
    backend: ThrottleBackend,
) -> None:
    strategy = PriorityQueueStrategy(
        default_priority=Priority.NORMAL,
        max_queue_size=1000,  # Prevent unbounded growth
    )

    # Identifier encodes priority: "priority:{level}:user:{id}"
    async def priority_identifier(connection: HTTPConnection) -> str:
        user = extract_user(connection)
        priority = connection.headers.get("X-Priority", "2")
        return f"priority:{priority}:user:{user.id}"

    throttle = HTTPThrottle(
        uid="priority_api",
        rate="4/minute",
        strategy=strategy,
        identifier=priority_identifier,
    )
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app) as client:
        # HIGH requests use the user's whole budget...
        assert admitted(client, {"x-user": "7", "X-Priority": "3"}, 5) == 4
        # ...which LOW and NORMAL (the default, when none is written) requests of the
        # same user see: one budget per user, whatever the priority in its identity...
        assert admitted(client, {"x-user": "7", "X-Priority": "1"}, 1) == 0
        assert admitted(client, {"x-user": "7"}, 1) == 0
        # ...while CRITICAL requests see only CRITICAL usage, and pass.
        assert admitted(client, {"x-user": "7", "X-Priority": "4"}, 6) == 4
        # Another user has a budget of its own.
        assert admitted(client, {"x-user": "8", "X-Priority": "1"}, 1) == 1

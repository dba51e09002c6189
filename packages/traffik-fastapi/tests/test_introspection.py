"""Looking without consuming (stat, check), and queueing delays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection, Request
from starlette.testclient import TestClient

from traffik import FixedWindow, HTTPThrottle, InMemoryBackend, Rate, Rule
from traffik.fastapi import ledger
from traffik.strategies.base import IntTupleCodec, Params, Step

ClientFactory = Callable[..., TestClient]


async def tiered(connection: HTTPConnection) -> Rate:
    return Rate.parse("10/min" if connection.headers.get("x-tier") == "pro" else "3/min")


def test_stat_and_check_consume_nothing_also_with_a_rate_function(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("looked", rate=tiered)
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items(request: Request) -> dict[str, Any]:
        stat = await throttle.stat(request)
        assert stat is not None
        return {
            "limit": stat.limit,
            "remaining": stat.remaining,
            "reset": stat.reset_after,
            "retry": stat.retry_after,
            "strategy": stat.strategy,
            "check_1": await throttle.check(request),
            "check_5": await throttle.check(request, cost=5),
        }

    client = client_for(app)
    assert client.get("/items").json() == {
        "limit": 3,
        "remaining": 2,
        "reset": 20.0,
        "retry": 0.0,
        "strategy": "fixed_window",
        "check_1": True,
        "check_5": False,
    }
    assert client.get("/items").json()["remaining"] == 1  # looking consumed nothing
    assert client.get("/items", headers={"x-tier": "pro"}).json()["limit"] == 10


def test_stat_follows_the_rules(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    throttle = HTTPThrottle("ruled", rate="3/min", rules=[Rule("/api/")])
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        return {"stat": await throttle.stat(request), "check": await throttle.check(request)}

    assert client_for(app).get("/health").json() == {"stat": None, "check": True}


@dataclass(frozen=True)
class Queueing(IntTupleCodec):
    """A fixed window that admits a second request after a wait (a queueing strategy)."""

    name: ClassVar[str] = "queueing"

    def decide(
        self, state: tuple[int, ...] | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[tuple[int, ...]]:
        new_state, decision, ttl = FixedWindow().decide(state, now, rate, cost, params)  # type: ignore[arg-type]
        if decision.allowed and decision.remaining < rate.limit - 1:
            decision = decision._replace(delay=0.25)
        return new_state, decision, ttl

    def refund(
        self, state: tuple[int, ...] | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[tuple[int, ...] | None, int]:
        return FixedWindow().refund(state, now, rate, cost, params)  # type: ignore[arg-type]


def test_a_queueing_delay_is_waited_out_before_the_request_proceeds(
    backend: InMemoryBackend, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[Any] = []

    async def sleep(seconds: float) -> None:
        events.append(("slept", seconds))

    monkeypatch.setattr(ledger, "sleep", sleep)
    throttle = HTTPThrottle("queued", rate="5/min", strategy=Queueing())
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items() -> dict[str, bool]:
        events.append("handled")
        return {"ok": True}

    client = client_for(app)
    client.get("/items")
    client.get("/items")
    assert events == ["handled", ("slept", 0.25), "handled"]

"""How several limits on one request are decided: one atomic step where possible.

(The outcome — a refused request consumes nothing — is checked for every combination and
every backend kind in tests-integration/test_http_multi_limit.py. These tests check the
mechanism: which backend calls each combination makes.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Depends, FastAPI
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from traffik import (
    Decision,
    HTTPThrottle,
    InMemoryBackend,
    ManualClock,
    MiddlewareThrottle,
    ThrottleMiddleware,
    throttled,
)
from traffik.backends.base import Hit
from traffik.rates import Rate
from traffik.strategies.base import Params, Strategy

ClientFactory = Callable[..., TestClient]


class SpyBackend(InMemoryBackend):
    """An in-memory backend that records its calls."""

    def __init__(self, namespace: str, clock: ManualClock) -> None:
        super().__init__(namespace, clock=clock)
        self.calls: list[str] = []

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        self.calls.append(f"apply {key.split(':')[0]}")
        return await super().apply(key, strategy, rate, cost, params)

    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        self.calls.append("apply_many " + " ".join(hit.key.split(":")[0] for hit in hits))
        return await super().apply_many(hits)

    async def refund(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> None:
        self.calls.append(f"refund {key.split(':')[0]}")
        await super().refund(key, strategy, rate, cost, params)


def test_route_limits_are_decided_in_one_step(
    clock: ManualClock, client_for: ClientFactory
) -> None:
    spy = SpyBackend("spy", clock)
    burst = HTTPThrottle("burst", rate="1/min", backend=spy)
    daily = HTTPThrottle("daily", rate="5/d", backend=spy)
    hourly = HTTPThrottle("hourly", rate="5/h", backend=spy)
    app = FastAPI()

    # A local throttle in an annotation would not resolve (postponed annotations).
    async def sub_dependency(_: Any = Depends(hourly)) -> None:  # noqa: B008
        return None

    @app.get("/items", dependencies=[Depends(burst), Depends(sub_dependency)])
    @throttled(daily)
    async def items() -> dict[str, bool]:
        return {"ok": True}

    client = client_for(app)
    assert [client.get("/items").status_code for _ in range(2)] == [200, 429]
    # Dependencies, sub-dependencies and decorators: one atomic call per request, and
    # nothing to give back when refused.
    assert spy.calls == ["apply_many burst hourly daily"] * 2


def test_limits_on_two_backends_give_back_on_refusal(
    clock: ManualClock, client_for: ClientFactory
) -> None:
    first, second = SpyBackend("one", clock), SpyBackend("two", clock)
    daily = HTTPThrottle("daily", rate="5/d", backend=first)
    burst = HTTPThrottle("burst", rate="1/min", backend=second)
    app = FastAPI()
    app.get("/items", dependencies=[Depends(daily), Depends(burst)])(ok)
    client = client_for(app)
    assert [client.get("/items").status_code for _ in range(2)] == [200, 429]
    assert first.calls == ["apply daily", "apply daily", "refund daily"]
    assert second.calls == ["apply burst", "apply burst"]


def test_middleware_limits_are_given_back_when_the_route_refuses(
    clock: ManualClock, client_for: ClientFactory
) -> None:
    spy = SpyBackend("spy", clock)
    prefix = HTTPThrottle("prefix", rate="5/d", backend=spy)
    route = HTTPThrottle("route", rate="1/min", backend=spy)
    app = FastAPI(
        middleware=[
            Middleware(ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(prefix)])
        ]
    )
    app.get("/items", dependencies=[Depends(route)])(ok)
    client = client_for(app)
    assert [client.get("/items").status_code for _ in range(2)] == [200, 429]
    assert spy.calls == [
        "apply prefix",
        "apply route",
        "apply prefix",
        "apply route",
        "refund prefix",
    ]


def test_a_throttle_used_twice_on_a_route_counts_once(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("twice", rate="2/min")
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/items", dependencies=[Depends(throttle)])
    @throttled(throttle)
    async def items() -> dict[str, bool]:
        return {"ok": True}

    client = client_for(app)
    assert [client.get("/items").status_code for _ in range(3)] == [200, 200, 429]


async def ok() -> dict[str, bool]:
    return {"ok": True}


def test_an_overridden_throttle_is_not_gathered(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    kept = HTTPThrottle("kept", rate="5/min")
    overridden = HTTPThrottle("overridden", rate="5/min")
    app = FastAPI(lifespan=backend.lifespan)
    app.get("/items", dependencies=[Depends(kept), Depends(overridden)])(ok)
    app.dependency_overrides[overridden] = ok
    client = client_for(app)
    assert client.get("/items").headers["ratelimit-policy"] == '"kept";q=5;w=60'
    assert [key.split(":")[0] for key in backend._entries] == ["kept"]

"""The pipeline's plain branch (`traffik.resolution.resolve_now`: nothing to await) and its
general branch (`resolve`: a user's identifier, observers listening) decide alike: the
same statuses and the same rate-limit headers over the same requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection
from starlette.testclient import TestClient

from traffik import InMemoryBackend, Limiter, ManualClock
from traffik.fastapi import HTTPThrottle, MiddlewareThrottle, ThrottleMiddleware
from traffik.fastapi.proxies import get_remote_address
from traffik.observability import observing
from traffik.strategies import SlidingWindowCounter, TokenBucket

ClientFactory = Callable[..., TestClient]


async def address(connection: HTTPConnection) -> str:
    """The default identity, as a user's identifier: the general branch."""
    return get_remote_address(connection)


def build(throttle: HTTPThrottle, middleware: bool) -> FastAPI:
    app = FastAPI()
    dependencies = [] if middleware else [Depends(throttle)]

    @app.get("/items", dependencies=dependencies)
    async def items() -> dict[str, bool]:
        return {"ok": True}

    if middleware:
        app.add_middleware(ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(throttle)])
    return app


def run(
    client_for: ClientFactory, make: Callable[..., HTTPThrottle], middleware: bool
) -> list[tuple[int, list[tuple[str, str]]]]:
    clock = ManualClock(1_000.0)
    throttle = make(backend=InMemoryBackend(clock=clock))
    client = client_for(build(throttle, middleware))
    seen = []
    for step in range(12):
        response = client.get("/items")
        headers = sorted(
            (name, value)
            for name, value in response.headers.items()
            if name.lower().startswith(("ratelimit", "retry-after"))
        )
        seen.append((response.status_code, headers))
        clock.advance(7.0 if step % 4 == 3 else 0.5)
    return seen


STRATEGIES: dict[str, Any] = {
    "fixed window": None,
    "sliding window counter": SlidingWindowCounter(),
    "token bucket": TokenBucket(),
}


@pytest.mark.parametrize("middleware", [False, True], ids=["depends", "middleware"])
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_plain_and_general_branches_decide_alike(
    client_for: ClientFactory, strategy: str, middleware: bool
) -> None:
    def plain(**kwargs: Any) -> HTTPThrottle:
        throttle = HTTPThrottle(
            f"plain:{strategy}", rate="3/10s", strategy=STRATEGIES[strategy], **kwargs
        )
        assert throttle._resolves_now
        return throttle

    def general(**kwargs: Any) -> HTTPThrottle:
        throttle = HTTPThrottle(
            f"plain:{strategy}",
            rate="3/10s",
            strategy=STRATEGIES[strategy],
            identifier=address,
            **kwargs,
        )
        assert not throttle._resolves_now
        return throttle

    expected = run(client_for, plain, middleware)
    assert {status for status, _ in expected} == {200, 429}
    assert run(client_for, general, middleware) == expected
    events: list[Any] = []
    with observing(events.append):
        assert run(client_for, plain, middleware) == expected
    assert len(events) == len(expected)


async def test_a_limiter_decides_alike_on_both_branches() -> None:
    async def same(key: str) -> str:
        return key

    clock = ManualClock(1_000.0)
    plain = Limiter("agree", rate="2/s", backend=InMemoryBackend(clock=clock))
    general = Limiter("agree", rate="2/s", backend=InMemoryBackend(clock=clock), identifier=same)
    assert plain._resolves_now
    assert not general._resolves_now
    for step in range(10):
        assert await plain.decide("k") == await general.decide("k")
        clock.advance(0.3 if step % 3 else 0.8)

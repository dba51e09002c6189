"""Over HTTP, a failure that is no outage answers 500 (and is logged), never admits.

``on_error="allow"`` (the default) lets requests through when the store fails; a
strategy's error or a bug must not ride on it. Every way in, alone and with a second
throttle on the route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from traffik import (
    BackendError,
    Decision,
    HTTPThrottle,
    InMemoryBackend,
    MiddlewareThrottle,
    ThrottleMiddleware,
    throttled,
)
from traffik.strategies import FixedWindow

ClientFactory = Callable[..., TestClient]


def failing_strategy() -> FixedWindow:
    class Failing(FixedWindow):
        def decide(self, *args: Any) -> Any:
            raise RuntimeError("a bug in a strategy")

    return Failing()


class DownBackend(InMemoryBackend):
    async def apply(self, *args: Any) -> Decision:
        raise BackendError("store down")

    async def apply_many(self, *args: Any) -> list[Decision]:
        raise BackendError("store down")


def build(way: str, backend: InMemoryBackend, strategy: Any, ran: list[int]) -> FastAPI:
    broken = HTTPThrottle(f"broken-{way}", rate="2/min", strategy=strategy)
    other = HTTPThrottle(f"other-{way}", rate="5/min")
    middleware = [
        Middleware(
            ThrottleMiddleware,
            middleware_throttles=[MiddlewareThrottle(broken, "/items/")],
        )
    ]
    app = FastAPI(lifespan=backend.lifespan, middleware=middleware if way == "middleware" else None)

    async def endpoint(item_id: int) -> dict[str, int]:
        ran.append(item_id)
        return {"id": item_id}

    if way == "depends":
        app.get("/items/{item_id}", dependencies=[Depends(broken)])(endpoint)
    elif way == "depends-two":
        app.get("/items/{item_id}", dependencies=[Depends(other), Depends(broken)])(endpoint)
    elif way == "decorator":
        app.get("/items/{item_id}")(throttled(broken)(endpoint))
    elif way == "decorator-two":
        app.get("/items/{item_id}")(throttled(other, broken)(endpoint))
    else:
        app.get("/items/{item_id}")(endpoint)
    return app


WAYS = ["depends", "depends-two", "decorator", "decorator-two", "middleware"]


@pytest.mark.parametrize("way", WAYS)
def test_a_strategys_error_answers_500_never_200(way: str, client_for: ClientFactory) -> None:
    ran: list[int] = []
    app = build(way, InMemoryBackend(), failing_strategy(), ran)
    client = client_for(app, raise_server_exceptions=False)
    assert [client.get(f"/items/{n}").status_code for n in range(4)] == [500] * 4
    # The error reaches the server (which logs it with its traceback), unchanged.
    with pytest.raises(RuntimeError, match="a bug in a strategy"):
        client_for(app).get("/items/9")
    assert ran == []


@pytest.mark.parametrize("way", WAYS)
def test_a_store_outage_still_follows_on_error(way: str, client_for: ClientFactory) -> None:
    ran: list[int] = []
    app = build(way, DownBackend(), FixedWindow(), ran)
    client = client_for(app)
    assert [client.get(f"/items/{n}").status_code for n in range(4)] == [200] * 4
    assert ran == [0, 1, 2, 3]

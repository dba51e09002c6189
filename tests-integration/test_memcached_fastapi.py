"""A FastAPI app on memcached: the backend as the app's lifespan, shared by two app instances."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from traffik import ManualClock
from traffik.backends.memcached import MemcachedBackend
from traffik.fastapi import HTTPThrottle

# 10 s into a clock minute: a test that does not move the clock straddles no boundary.
START = 1_800_000_010.0


def make_app(memcached_url: str, namespace: str, clock: ManualClock) -> FastAPI:
    backend = MemcachedBackend(url=memcached_url, namespace=namespace, clock=clock)
    app = FastAPI(lifespan=backend.lifespan)
    throttle = HTTPThrottle("api:items", rate="3/min")

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items() -> dict[str, list[str]]:
        return {"items": ["widget"]}

    return app


def test_two_app_instances_share_one_limit(memcached_url: str, namespace: str) -> None:
    clock = ManualClock(START)
    first_app = make_app(memcached_url, namespace, clock)
    second_app = make_app(memcached_url, namespace, clock)
    client = ("198.51.100.7", 40000)
    with (
        TestClient(first_app, client=client) as first,
        TestClient(second_app, client=client) as second,
    ):
        codes = [first.get("/items").status_code, second.get("/items").status_code]
        codes += [first.get("/items").status_code, second.get("/items").status_code]
        assert codes == [200, 200, 200, 429]
        refused = second.get("/items")
        assert refused.headers["Retry-After"] == "50"
    # The apps stopped; the counters did not go with them.
    with TestClient(make_app(memcached_url, namespace, clock), client=client) as third:
        assert third.get("/items").status_code == 429
        clock.advance(50.0)
        assert third.get("/items").status_code == 200

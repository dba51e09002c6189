"""A FastAPI app on the Redis backend: lifespan, 429s, counters shared across app instances."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from traffik import HTTPThrottle, ManualClock
from traffik.backends.base import APP_STATE_ATTRIBUTE
from traffik.backends.redis import RedisBackend

NOW = 1_800_000_010.0  # 10 s into a minute


def make_app(backend: RedisBackend) -> FastAPI:
    app = FastAPI(lifespan=backend.lifespan)
    throttle = HTTPThrottle("api:items", rate="3/min")

    @app.get("/items", dependencies=[Depends(throttle)])
    async def list_items() -> dict[str, list[str]]:
        return {"items": ["widget"]}

    return app


def test_a_fastapi_app_on_redis_limits_and_survives_its_shutdown(
    redis_url: str, namespace: str
) -> None:
    backend = RedisBackend(redis_url, namespace=namespace, clock=ManualClock(NOW))
    app = make_app(backend)
    with TestClient(app, client=("198.51.100.1", 40000)) as client:
        assert getattr(app.state, APP_STATE_ATTRIBUTE) is backend
        statuses = [client.get("/items").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert client.get("/items").headers["Retry-After"] == "50"

    # Another app instance (another worker, or this one restarted) shares the counters.
    second = make_app(RedisBackend(redis_url, namespace=namespace, clock=ManualClock(NOW)))
    with TestClient(second, client=("198.51.100.1", 40000)) as client:
        assert client.get("/items").status_code == 429
    with TestClient(second, client=("198.51.100.2", 40000)) as client:
        assert client.get("/items").status_code == 200

"""Fixtures for the Redis backend's tests; the servers come from the root conftest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as redis

from traffik.backends.redis import RedisBackend

BackendFactory = Callable[..., Awaitable[RedisBackend]]

# The time budget for tests about decisions rather than failures. The default budget
# (50 ms of silence) is right for a Redis on a host of its own, but on a 2-core CI box
# redis-server can be starved of CPU for longer while a test floods it from several
# processes; the budget itself is tested with paused servers in test_failures.py.
DECISION_TEST_TIMEOUT = 5.0


@pytest.fixture
async def make_redis_backend(redis_url: str, namespace: str) -> AsyncIterator[BackendFactory]:
    """Initialized backends on the session's server (by default), each closed afterwards."""
    made: list[RedisBackend] = []

    async def make(url: str | None = None, **options: Any) -> RedisBackend:
        options.setdefault("namespace", namespace)
        options.setdefault("timeout", DECISION_TEST_TIMEOUT)
        backend = RedisBackend(url or redis_url, **options)
        await backend.initialize()
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[redis.Redis]:
    """A plain client, to look at what the backend stored."""
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()

"""When Redis misbehaves: bounded failures with a cause, and recovery without a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import pytest
import redis.asyncio as redis

from traffik import FixedWindow, Limiter, Rate, TokenBucket
from traffik.backends.redis import RedisBackend
from traffik.exceptions import BackendConnectionError, BackendError, BackendTimeoutError
from traffik.strategies import NO_PARAMS

BackendFactory = Callable[..., Awaitable[RedisBackend]]
RATE = Rate.parse("100/hour")


class Server(Protocol):
    """What these tests use of the root conftest's ServerProcess."""

    @property
    def url(self) -> str: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def stop(self) -> None: ...

    def start(self) -> None: ...

    def restart(self) -> None: ...


ServerFactory = Callable[..., Server]


async def test_a_paused_server_fails_calls_within_the_budget(
    server_factory: ServerFactory, make_redis_backend: BackendFactory
) -> None:
    server = server_factory("redis")
    backend = await make_redis_backend(server.url, timeout=0.25, max_connections=4)
    assert (await backend.apply("k", FixedWindow(), RATE, 1, NO_PARAMS)).allowed
    server.pause()
    try:
        started = time.monotonic()
        # More calls than connections: those waiting for one are bounded too.
        results = await asyncio.gather(
            *(backend.apply("k", FixedWindow(), RATE, 1, NO_PARAMS) for _ in range(40)),
            return_exceptions=True,
        )
        elapsed = time.monotonic() - started
        assert all(isinstance(result, BackendTimeoutError) for result in results), results
        assert all(
            result.cause is not None for result in results if isinstance(result, BackendError)
        )
        assert elapsed < 2.0
        error = results[0]
        assert isinstance(error, BackendTimeoutError)
        assert isinstance(error, TimeoutError)
        assert "250 ms" in str(error)
        assert server.url in str(error)
        assert not await backend.ready()

        # A throttle's on_error acts on it, still within the budget.
        limiter = Limiter("api", rate=RATE, backend=backend, on_error="throttle")
        started = time.monotonic()
        decision = await limiter.decide("alice")
        assert not decision.allowed
        assert decision.retry_after == 1.0
        assert time.monotonic() - started < 2.0
    finally:
        server.resume()
    # Back without a restart of anything.
    assert (await backend.apply("k", FixedWindow(), RATE, 1, NO_PARAMS)).allowed
    assert await backend.ready()


async def test_a_stopped_server_is_a_connection_error_and_its_return_recovers(
    server_factory: ServerFactory, make_redis_backend: BackendFactory
) -> None:
    server = server_factory("redis")
    backend = await make_redis_backend(server.url, timeout=0.5)
    await backend.apply("k", TokenBucket(), RATE, 1, NO_PARAMS)
    server.stop()
    with pytest.raises(BackendConnectionError) as caught:
        await backend.apply("k", TokenBucket(), RATE, 1, NO_PARAMS)
    assert caught.value.cause is not None
    limiter = Limiter("api", rate=RATE, backend=backend, on_error="raise")
    with pytest.raises(BackendError):
        await limiter.decide("alice")
    allowing = Limiter("api", rate=RATE, backend=backend)  # on_error="allow" by default
    assert not (await allowing.decide("alice")).limited
    server.start()
    assert (await backend.apply("k", TokenBucket(), RATE, 1, NO_PARAMS)).allowed


async def test_after_a_restart_the_next_request_succeeds(
    server_factory: ServerFactory, make_redis_backend: BackendFactory
) -> None:
    server = server_factory("redis")
    backend = await make_redis_backend(server.url)
    for strategy in (FixedWindow(), TokenBucket()):
        await backend.apply(strategy.name, strategy, RATE, 1, NO_PARAMS)
    server.restart()  # scripts and connections gone
    for strategy in (FixedWindow(), TokenBucket()):
        decision = await backend.apply(strategy.name, strategy, RATE, 1, NO_PARAMS)
        assert decision.allowed
        assert decision.remaining == 99


async def test_after_script_flush_the_next_request_succeeds(
    make_redis_backend: BackendFactory, raw_redis: redis.Redis
) -> None:
    backend = await make_redis_backend()
    assert (await backend.apply("k", FixedWindow(), RATE, 1, NO_PARAMS)).remaining == 99
    await raw_redis.script_flush()
    assert (await backend.apply("k", FixedWindow(), RATE, 1, NO_PARAMS)).remaining == 98
    await raw_redis.script_flush()
    assert (await backend.peek("k", FixedWindow(), RATE, 1, NO_PARAMS)).remaining == 97


async def test_any_other_redis_error_is_a_backend_error_with_its_cause(
    make_redis_backend: BackendFactory, raw_redis: redis.Redis, namespace: str
) -> None:
    backend = await make_redis_backend()
    await raw_redis.hset(f"{namespace}:k", "not", "a state")  # WRONGTYPE for the script's GET
    with pytest.raises(BackendError) as caught:
        await backend.apply("k", FixedWindow(), RATE, 1, NO_PARAMS)
    assert type(caught.value) is BackendError
    assert isinstance(caught.value.cause, redis.ResponseError)
    assert "WRONGTYPE" in str(caught.value)
    await raw_redis.delete(f"{namespace}:k")


async def test_invalid_input_is_a_bug_of_the_caller_never_a_backend_error(
    make_redis_backend: BackendFactory,
) -> None:
    # redis-py refuses a bool argument (DataError): not Redis's failure, so not on_error's.
    backend = await make_redis_backend()
    runner = backend._connect()
    with pytest.raises(redis.DataError):
        await runner.command("SET", "k", True)  # coalesced: packed in the caller's task
    with pytest.raises(redis.DataError):
        await runner.command("SET", "k", True, get=True)  # with options: redis-py sends it
    assert (await backend.apply("k", FixedWindow(), RATE, 1, NO_PARAMS)).allowed


async def test_a_strategys_own_error_propagates_unchanged(
    make_redis_backend: BackendFactory,
) -> None:
    class Faulty(FixedWindow):  # not native: decided in Python by the generic path
        def decide(self, *args: object) -> Any:
            raise ZeroDivisionError("a strategy's bug")

    backend = await make_redis_backend()
    with pytest.raises(ZeroDivisionError):
        await backend.apply("k", Faulty(), RATE, 1, NO_PARAMS)

"""Construction, lifecycle and ownership: clear errors, nothing half-open, nothing closed twice."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
import redis.asyncio as aredis
from redis.asyncio.sentinel import Sentinel

from traffik import ConfigurationError, FixedWindow, Rate
from traffik.backends.base import get_default_backend
from traffik.backends.redis import RedisBackend
from traffik.exceptions import BackendConnectionError
from traffik.strategies import NO_PARAMS

BackendFactory = Callable[..., Awaitable[RedisBackend]]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://localhost:6379", "http://localhost:6379"),
        ("localhost:6379", "localhost:6379"),
        ("redis://localhost:port", "redis://localhost:port"),
        ("redis://localhost:99999", "redis://localhost:99999"),
        ("redis://localhost:6379/zero", "zero"),
        ("redis://localhost:6379/0?socket_timeout=soon", "redis://localhost:6379/0?socket_timeout"),
        ("", "URL"),
    ],
)
def test_a_bad_url_fails_at_construction_naming_it(url: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match="URL") as caught:
        RedisBackend(url)
    assert named in str(caught.value)


def test_a_password_never_appears_in_messages_or_reprs() -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisBackend("redis://app:s3cret@localhost:6379/db")
    assert "s3cret" not in str(caught.value)
    assert "app:***@localhost" in str(caught.value)
    assert "s3cret" not in repr(RedisBackend("redis://app:s3cret@localhost:6379/0"))


def test_a_cluster_url_with_a_database_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="only database 0"):
        RedisBackend("redis://localhost:7000/3", cluster=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, "timeout must be above 0, got 0"),
        ({"timeout": -1.0}, "timeout must be a finite number >= 0, got -1.0"),
        ({"timeout": float("inf")}, "got inf"),
        ({"timeout": "1"}, "got '1'"),
        ({"timeout": True}, "got True"),
        ({"max_connections": 0}, "max_connections must be a whole number >= 1, got 0"),
        ({"max_connections": 2.5}, "got 2.5"),
        ({"max_conflict_retries": 0}, "max_conflict_retries"),
        ({"namespace": ""}, "namespace must be a non-empty string"),
        ({"namespace": "a{b}"}, "must not contain braces"),
        ({"clock": 12}, "clock must be callable or None, got 12"),
        ({"on_error": "ignore"}, "'ignore'"),
        ({"cluster": "yes"}, "cluster must be True or False, got 'yes'"),
        ({"client_kwargs": [("password", "x")]}, "client_kwargs must be a mapping"),
        ({"sentinel_service_name": "mymaster"}, "needs a redis.asyncio.sentinel.Sentinel"),
    ],
)
def test_bad_arguments_fail_at_construction_naming_the_value(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisBackend("redis://localhost:6379/0", **options)
    assert message in str(caught.value)


def test_bad_connections_are_named() -> None:
    with pytest.raises(ConfigurationError, match="got 6379"):
        RedisBackend(6379)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"use redis\.asyncio instead"):
        RedisBackend(redis.Redis())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="needs sentinel_service_name"):
        RedisBackend(Sentinel([("127.0.0.1", 26379)]))  # type: ignore[no-untyped-call,unused-ignore]
    with pytest.raises(ConfigurationError, match="cluster=True applies to a URL"):
        RedisBackend(aredis.Redis(), cluster=True)
    with pytest.raises(ConfigurationError, match="not to a client you pass"):
        RedisBackend(aredis.Redis(), client_kwargs={"password": "x"})


async def test_an_unreachable_server_fails_at_startup_naming_it() -> None:
    url = f"redis://127.0.0.1:{unused_port()}/0"
    backend = RedisBackend(url, timeout=0.5)
    with pytest.raises(BackendConnectionError, match="could not start") as caught:
        await backend.initialize()
    assert url in str(caught.value)
    assert caught.value.cause is not None
    assert not await backend.ready()
    await backend.close()


async def test_initialize_twice_close_and_start_again(redis_url: str, namespace: str) -> None:
    backend = RedisBackend(redis_url, namespace=namespace)
    await backend.initialize()
    await backend.initialize()
    assert await backend.ready()
    await backend.apply("k", FixedWindow(), Rate.parse("5/min"), 1, NO_PARAMS)
    await backend.close()
    await backend.close()
    await backend.initialize()
    assert (await backend.peek("k", FixedWindow(), Rate.parse("5/min"), 1, NO_PARAMS)).limited
    await backend.close()


async def test_it_closes_only_the_connections_it_created(redis_url: str, namespace: str) -> None:
    observer = aredis.Redis.from_url(redis_url)
    name = f"owned-{namespace}"

    async def connections_named(client_name: str) -> int:
        clients = await observer.client_list()
        return sum(client.get("name") == client_name for client in clients)

    owned = RedisBackend(redis_url, namespace=namespace, client_kwargs={"client_name": name})
    await owned.initialize()
    await owned.apply("k", FixedWindow(), Rate.parse("5/min"), 1, NO_PARAMS)
    assert await connections_named(name) >= 1
    await owned.close()
    assert await connections_named(name) == 0

    theirs = aredis.Redis.from_url(redis_url, client_name=f"theirs-{namespace}")
    borrowed = RedisBackend(theirs, namespace=namespace)
    await borrowed.initialize()
    await borrowed.close()
    assert await theirs.ping()  # still the caller's, still open
    assert await connections_named(f"theirs-{namespace}") >= 1
    await theirs.aclose()
    await observer.aclose()


class OwnFixedWindow(FixedWindow):
    """A subclass: decided through the generic path."""


async def test_a_client_decoding_responses_works_too(redis_url: str, namespace: str) -> None:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    backend = RedisBackend(client, namespace=namespace)
    rate = Rate.parse("3/min")
    async with backend:
        for strategy in (FixedWindow(), OwnFixedWindow()):
            key = type(strategy).__name__
            decisions = [await backend.apply(key, strategy, rate, 1, NO_PARAMS) for _ in range(4)]
            assert [d.allowed for d in decisions] == [True, True, True, False]
    await client.aclose()


async def test_async_with_makes_it_the_process_default(redis_url: str, namespace: str) -> None:
    backend = RedisBackend(redis_url, namespace=namespace)
    async with backend:
        assert get_default_backend() is backend
        assert await backend.ready()
    assert get_default_backend() is not backend

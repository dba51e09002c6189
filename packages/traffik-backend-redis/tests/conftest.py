"""Fixtures for the Redis backend's tests; the servers come from the root conftest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as redis

from traffik.backends.redis import RedisBackend

BackendFactory = Callable[..., Awaitable[RedisBackend]]


@pytest.fixture
async def make_redis_backend(redis_url: str, namespace: str) -> AsyncIterator[BackendFactory]:
    """Initialized backends on the session's server (by default), each closed afterwards.

    Every setting is the shipped default unless the test gives it: decisions are tested
    as users run them.
    """
    made: list[RedisBackend] = []

    async def make(url: str | None = None, **options: Any) -> RedisBackend:
        options.setdefault("namespace", namespace)
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


@dataclass
class SentLog:
    """What a counting client sent: each command (its name, and an EVALSHA's SHA), and
    each write, which is one round trip whether it carries one command or a batch.

    ``script_writes`` counts the writes that carry a script call: the round trips of the
    backend's calls, without the greetings (``CLIENT SETINFO``) of each new connection,
    which redis-py sends when its pool opens one (how many a burst opens differs between
    redis-py versions)."""

    commands: list[tuple[str, bytes]] = field(default_factory=list)
    writes: int = 0
    script_writes: int = 0

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.commands]

    def clear(self) -> None:
        self.commands.clear()
        self.writes = 0
        self.script_writes = 0


def _commands(buffer: bytes) -> Iterator[list[bytes]]:
    """The commands in a buffer of Redis's wire format (arrays of bulk strings)."""
    at = 0
    while at < len(buffer):
        end = buffer.index(b"\r\n", at)
        count, at = int(buffer[at + 1 : end]), end + 2
        arguments = []
        for _ in range(count):
            end = buffer.index(b"\r\n", at)
            size, at = int(buffer[at + 1 : end]), end + 2
            arguments.append(buffer[at : at + size])
            at += size + 2
        yield arguments


@pytest.fixture
def sent_log() -> SentLog:
    return SentLog()


@pytest.fixture
async def counting_redis(redis_url: str, sent_log: SentLog) -> AsyncIterator[redis.Redis]:
    """A client on the session's server whose connections record what they send."""

    class Counting(redis.Connection):
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            data = command if isinstance(command, bytes) else b"".join(command)
            sent_log.writes += 1
            names = []
            for name, *arguments in _commands(data):
                sha = arguments[0] if name.upper() == b"EVALSHA" else b""
                names.append(name.decode().upper())
                sent_log.commands.append((names[-1], sha))
            sent_log.script_writes += any(name.startswith("EVAL") for name in names)
            await super().send_packed_command(command, check_health)

    client = redis.Redis.from_pool(
        redis.ConnectionPool.from_url(redis_url, connection_class=Counting)
    )
    yield client
    await client.aclose()

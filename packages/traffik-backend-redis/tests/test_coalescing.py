"""Coalescing: concurrent calls share pipelined round trips, each keeping its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import pytest
import redis.asyncio as redis
from hypothesis import given
from hypothesis import strategies as st

from traffik import Decision, FixedWindow, ManualClock, Rate, TokenBucket
from traffik.backends.redis import RedisBackend
from traffik.backends.redis.coalescing import pack
from traffik.exceptions import BackendError
from traffik.strategies import NO_PARAMS

BackendFactory = Callable[..., Awaitable[RedisBackend]]
NOW = 1_700_001_800.0  # 1,000 s before an hour ends
HOURLY = Rate.parse("100/hour")


class SentLog(Protocol):
    """What the conftest's counting client sent (see conftest.SentLog)."""

    @property
    def names(self) -> list[str]: ...

    @property
    def writes(self) -> int: ...

    @property
    def script_writes(self) -> int: ...

    def clear(self) -> None: ...


async def test_a_burst_shares_a_few_round_trips_and_stays_exact(
    counting_redis: redis.Redis, sent_log: SentLog, namespace: str
) -> None:
    backend = RedisBackend(counting_redis, namespace=namespace, clock=ManualClock(NOW))
    async with backend:
        sent_log.clear()
        decisions = await asyncio.gather(
            *(backend.apply("k", FixedWindow(), HOURLY, 1, NO_PARAMS) for _ in range(5_000))
        )
    assert sum(decision.allowed for decision in decisions) == 100
    assert [name for name in sent_log.names if name.startswith("EVAL")] == ["EVALSHA"] * 5_000
    # The first goes out alone, the rest in batches of at most 512 on a second connection
    # (which greets the server first).
    assert sent_log.writes <= 20


async def test_calls_one_at_a_time_are_one_round_trip_each(
    counting_redis: redis.Redis, sent_log: SentLog, namespace: str
) -> None:
    backend = RedisBackend(counting_redis, namespace=namespace)
    async with backend:
        sent_log.clear()
        for _ in range(10):
            await backend.apply("k", TokenBucket(), HOURLY, 1, NO_PARAMS)
    assert sent_log.writes == 10


async def test_without_coalescing_every_call_is_a_round_trip_of_its_own(
    counting_redis: redis.Redis, sent_log: SentLog, namespace: str
) -> None:
    backend = RedisBackend(
        counting_redis, namespace=namespace, clock=ManualClock(NOW), coalesce=False
    )
    async with backend:
        sent_log.clear()
        decisions = await asyncio.gather(
            *(backend.apply("k", FixedWindow(), HOURLY, 1, NO_PARAMS) for _ in range(500))
        )
        assert sum(decision.allowed for decision in decisions) == 100
    # 500 script calls in 500 writes: each its own round trip (new connections' greetings,
    # however many the burst opens, are not calls).
    assert sent_log.names.count("EVALSHA") == 500
    assert sent_log.script_writes == 500


async def test_a_batch_mixing_outcomes_gives_each_caller_its_own(
    counting_redis: redis.Redis, sent_log: SentLog, raw_redis: redis.Redis, namespace: str
) -> None:
    # One connection: the first call goes out alone, the others queue behind it and then
    # share one round trip.
    backend = RedisBackend(counting_redis, namespace=namespace, clock=ManualClock(NOW),
                           max_connections=1)  # fmt: skip
    window, bucket, two = FixedWindow(), TokenBucket(), Rate.parse("2/hour")
    async with backend:
        for _ in range(2):
            await backend.apply("full", window, two, 1, NO_PARAMS)  # at its limit from now on
        await raw_redis.hset(f"{namespace}:broken", "not", "a state")  # WRONGTYPE for GET
        await raw_redis.set(f"{namespace}:gone", "1")
        await raw_redis.script_flush()  # every script forgotten: NOSCRIPT for each
        sent_log.clear()
        calls: list[Awaitable[Any]] = [
            backend.apply("first", window, two, 1, NO_PARAMS),  # alone; reloads its script
            backend.apply("a", window, two, 1, NO_PARAMS),  # allowed
            backend.apply("full", window, two, 1, NO_PARAMS),  # refused
            backend.apply("broken", window, two, 1, NO_PARAMS),  # its own error
            backend.apply("b1", bucket, two, 1, NO_PARAMS),  # NOSCRIPT, recovered
            backend.peek("a", window, two, 1, NO_PARAMS),  # sees the admission before it
            backend.delete("gone"),  # a plain command in the same round trip
            backend.apply("b2", bucket, two, 2, NO_PARAMS),  # NOSCRIPT, recovered
            backend.apply("b1", bucket, two, 2, NO_PARAMS),  # NOSCRIPT, recovered, refused
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert await raw_redis.exists(f"{namespace}:gone") == 0

    first, a, full, broken, b1, peek, deleted, b2, b1_again = results
    assert [outcome(first), outcome(a)] == [(True, 1), (True, 1)]
    assert isinstance(full, Decision)
    assert not full.allowed
    assert type(broken) is BackendError
    assert isinstance(broken.cause, redis.ResponseError)
    assert "WRONGTYPE" in str(broken)
    assert [outcome(b1), outcome(peek), outcome(b2)] == [(True, 1), (True, 0), (True, 0)]
    assert deleted is None
    assert isinstance(b1_again, Decision)
    assert not b1_again.allowed
    # The first call: EVALSHA, then EVAL. The rest: one write of eight commands, then one
    # more for the three calls whose script was gone, that script sent once.
    assert sent_log.writes == 4
    assert sent_log.names[:2] == ["EVALSHA", "EVAL"]
    assert sent_log.names[2:10] == ["EVALSHA"] * 5 + ["DEL"] + ["EVALSHA"] * 2
    assert sent_log.names[10:] == ["EVAL", "EVALSHA", "EVALSHA"]


def outcome(result: object) -> tuple[bool, int]:
    """Whether a decision allowed, and what remained."""
    assert isinstance(result, Decision), result
    return result.allowed, result.remaining


async def test_a_caller_that_gives_up_while_queued_is_never_sent(
    make_redis_backend: BackendFactory,
) -> None:
    backend = await make_redis_backend(clock=ManualClock(NOW), max_connections=1)
    window = FixedWindow()
    first = asyncio.ensure_future(backend.apply("first", window, HOURLY, 1, NO_PARAMS))
    queued = asyncio.ensure_future(backend.apply("queued", window, HOURLY, 1, NO_PARAMS))
    await asyncio.sleep(0)  # both started: the first on the wire, the other queued
    queued.cancel()
    assert (await first).remaining == 99
    with pytest.raises(asyncio.CancelledError):
        await queued
    # A peek tells what one more hit would leave: nothing was taken.
    assert (await backend.peek("queued", window, HOURLY, 1, NO_PARAMS)).remaining == 99


async def test_a_burst_uses_at_most_two_connections(
    make_redis_backend: BackendFactory, raw_redis: redis.Redis, namespace: str
) -> None:
    name = f"{namespace}-client"
    backend = await make_redis_backend(client_kwargs={"client_name": name})
    await asyncio.gather(
        *(backend.apply(f"k{index % 50}", TokenBucket(), HOURLY, 1, NO_PARAMS)
          for index in range(2_000))
    )  # fmt: skip
    clients = await raw_redis.client_list()
    assert 1 <= sum(client["name"] == name for client in clients) <= 2


async def test_closing_fails_queued_calls_and_returns_the_connections(
    redis_url: str, namespace: str
) -> None:
    pool = redis.ConnectionPool.from_url(redis_url)
    client = redis.Redis.from_pool(pool)
    backend = RedisBackend(client, namespace=namespace)
    await backend.initialize()
    await asyncio.gather(
        *(backend.apply("k", FixedWindow(), HOURLY, 1, NO_PARAMS) for _ in range(100))
    )
    await backend.close()
    # The client is the caller's: the backend gave back every connection it took.
    assert not pool._in_use_connections  # no public count of these
    assert await client.ping()
    await client.aclose()


_ARGUMENTS = st.one_of(
    st.text(max_size=600),
    st.binary(max_size=600),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=0, max_value=600),  # the looked-up heads and numbers, and past them
    st.floats(allow_nan=False),
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["EVALSHA", "EVAL", "PING", "SCRIPT LOAD", "UNLINK", b"GET"]),
            st.lists(_ARGUMENTS, max_size=70),
        ),
        max_size=4,
    )
)
def test_commands_are_packed_as_redis_py_packs_them(
    commands: list[tuple[str | bytes, list[Any]]],
) -> None:
    """`pack` writes the same bytes as redis-py's own packer, whatever the arguments."""
    connection = redis.Connection()
    flat = [(name, *arguments) for name, arguments in commands]
    expected = b"".join(connection.pack_commands(flat))
    assert pack(flat, connection.encoder) == expected

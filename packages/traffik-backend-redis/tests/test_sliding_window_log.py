"""SlidingWindowLog on Redis: a list with running totals, amortised O(1) per hit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as redis

from traffik import FixedWindow, InMemoryBackend, ManualClock, Rate, SlidingWindowLog
from traffik.backends.base import Hit
from traffik.backends.redis import RedisBackend
from traffik.strategies import NO_PARAMS

BackendFactory = Callable[..., Awaitable[RedisBackend]]
START = 1_700_000_000.0 + 1_800  # half-way through an hour


class Server(Protocol):
    @property
    def url(self) -> str: ...


async def test_a_sliding_window_log_costs_the_same_per_hit_however_long_it_is(
    server_factory: Callable[..., Server], namespace: str
) -> None:
    """The log is a Redis list: each hit touches its two ends, never the whole log.

    MONITOR shows every command the script runs, with its arguments: in the steady state
    of a full log of 1,000 entries, each hit runs the same few commands, and every read
    is of at most a few entries.
    """
    server = server_factory("redis")
    clock = ManualClock(START)
    backend = RedisBackend(server.url, namespace=namespace, clock=clock)
    observer = redis.Redis.from_url(server.url)
    rate = Rate.parse("1000/min")
    key = f"{namespace}:log"
    async with backend:
        for _ in range(1_000):  # a full log: one entry every 60 ms
            assert (await backend.apply("log", SlidingWindowLog(), rate, 1, NO_PARAMS)).allowed
            clock.advance(0.06)
        async with observer.monitor() as monitor:
            await observer.echo("begin")
            for _ in range(200):  # steady state: each hit pushes one entry, one expires
                hit = await backend.apply("log", SlidingWindowLog(), rate, 1, NO_PARAMS)
                assert hit.allowed
                await backend.peek("log", SlidingWindowLog(), rate, 1, NO_PARAMS)
                clock.advance(0.06)
            await observer.echo("end")
            ran: list[list[str]] = []  # what the scripts ran
            while (seen := await monitor.next_command())["command"] != "ECHO end":
                if seen["client_type"] == "lua":
                    ran.append(seen["command"].split())
        # An admission: LINDEX (the newest), LRANGE (the two oldest), LTRIM (one expired),
        # RPUSH, PEXPIRE; the peek after it, refused (the log is full): LINDEX, LRANGE, and
        # LRANGE for its retry time. (No TIME: the clock is injected.)
        names = [command[0] for command in ran]
        assert names == ["LINDEX", "LRANGE", "LTRIM", "RPUSH", "PEXPIRE",
                         "LINDEX", "LRANGE", "LRANGE"] * 200  # fmt: skip
        reads = [int(command[3]) - int(command[2]) + 1 for command in ran if command[0] == "LRANGE"]
        assert max(reads) <= 4  # never the whole log
        assert await observer.llen(key) == 1_000  # expired entries are gone
        # Hits of one millisecond share one entry.
        for _ in range(5):
            await backend.apply("burst", SlidingWindowLog(), rate, 2, NO_PARAMS)
        assert await observer.lrange(f"{namespace}:burst", 0, -1) == [
            f"{round(clock() * 1000)},10,10".encode()
        ]
    await observer.aclose()


async def test_a_log_refused_by_another_limit_is_left_as_it_was(
    make_redis_backend: BackendFactory, raw_redis: redis.Redis, namespace: str
) -> None:
    backend = await make_redis_backend(clock=ManualClock(START))
    log = Hit("log", SlidingWindowLog(), Rate.parse("3/min"), 2, NO_PARAMS)
    tight = Hit("tight", FixedWindow(), Rate.parse("1/min"), 1, NO_PARAMS)
    assert [d.allowed for d in await backend.apply_many([log, tight])] == [True, True]
    stored = await raw_redis.lrange(f"{namespace}:log", 0, -1)
    assert [d.allowed for d in await backend.apply_many([log, tight])] == [False, False]
    # A log pushed then undone within the script, and a key listed twice.
    loose_log = Hit("log", SlidingWindowLog(), Rate.parse("10/min"), 1, NO_PARAMS)
    refused = await backend.apply_many([loose_log, loose_log, tight])
    assert [d.allowed for d in refused] == [True, True, False]
    assert [d.remaining for d in refused[:2]] == [7, 6]
    assert await raw_redis.lrange(f"{namespace}:log", 0, -1) == stored
    assert (await backend.peek(*loose_log)).remaining == 7


async def test_a_log_key_holding_anything_else_starts_afresh(
    make_redis_backend: BackendFactory, raw_redis: redis.Redis, namespace: str
) -> None:
    backend = await make_redis_backend(clock=ManualClock(START))
    rate = Rate.parse("3/min")
    await raw_redis.set(f"{namespace}:old", b"1700000001000,5")  # a string, not a list
    assert (await backend.apply("old", SlidingWindowLog(), rate, 1, NO_PARAMS)).remaining == 2
    assert await raw_redis.type(f"{namespace}:old") == b"list"


async def test_a_log_limited_with_a_strategy_of_its_own_is_all_or_nothing(
    make_redis_backend: BackendFactory, raw_redis: redis.Redis, namespace: str
) -> None:
    """A log is always decided by its script (its list is not what the generic path reads),
    so with a limit of the user's own it is decided first, then refunded on refusal."""
    clock = ManualClock(START)
    backend = await make_redis_backend(clock=clock)
    memory = InMemoryBackend(clock=clock)
    own = type("OwnFixedWindow", (FixedWindow,), {})()
    log = Hit("log", SlidingWindowLog(), Rate.parse("10/min"), 1, NO_PARAMS)
    tight = Hit("own", own, Rate.parse("1/min"), 1, NO_PARAMS)
    assert await backend.apply_many([log, tight]) == await memory.apply_many([log, tight])
    stored = await raw_redis.lrange(f"{namespace}:log", 0, -1)
    for hits in ([log, tight], [tight, log]):
        refused = await backend.apply_many(hits)
        assert refused == await memory.apply_many(hits)
        assert not all(decision.allowed for decision in refused)
        assert await raw_redis.lrange(f"{namespace}:log", 0, -1) == stored  # given back
    assert await backend.peek(*log) == await memory.peek(*log)
    assert (await backend.peek(*log)).remaining == 8

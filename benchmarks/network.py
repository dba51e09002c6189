"""(d), (e) Checks on Redis and (f) on memcached, against a bare ``INCR`` / ``incr``.

Each runs against a private server the suite starts (see `benchmarks.servers`), on
loopback. The floors go through the same client libraries the backends use, one command
per operation: ``await redis.incr(key)`` on a ``redis.asyncio`` client, ``await
client.incr(key)`` on an ``aiomcache`` client.

(d) One call at a time (concurrency 1): one round trip is the floor.
(e) 50 callers at once, each with its own key, awaiting one check after another; the
    figure is checks per second over the whole burst, against 50 callers doing ``INCR``
    on one pooled client (no explicit pipelining in the floor). Higher is better.
(f) One call at a time, against ``incr`` on an aiomcache client. FixedWindow counts with
    ``incr`` itself (`traffik.backends.memcached.counters`): target ≤ 1.2x. The other
    strategies go through compare-and-swap (``gets`` + ``cas``), with no target.

The backends use the server's clock (Redis ``TIME``) or the local one (memcached), as in
production, with a time budget of 1 s so that a busy machine cannot fail a run.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import urlsplit

import aiomcache
import redis.asyncio as redis

from benchmarks.contenders import CALLS_PER_CHECK, QUICK_STRATEGIES, STRATEGIES, check_call
from benchmarks.harness import (
    Call,
    Contender,
    Section,
    Settings,
    Target,
    compare,
    concurrent,
    sequential,
)
from benchmarks.in_memory import refused_limiters
from benchmarks.servers import server_url
from traffik.backends.memcached import MemcachedBackend
from traffik.backends.redis import RedisBackend

__all__ = ["memcached_section", "redis_sections"]

SEQUENTIAL_PER_ROUND = 300
CALLERS = 50
PER_CALLER_PER_ROUND = 20
SEQUENTIAL_TARGET = Target(1.3)  # per round trip (see `_sequential_contender`)
MEMCACHED_COUNTED_TARGET = Target(1.2)  # FixedWindow on memcached: one `incr` per check
THROUGHPUT_TARGET = Target(1.5, at_least=True)


def _strategies(settings: Settings) -> list[str]:
    return list(QUICK_STRATEGIES) if settings.quick else list(STRATEGIES)


def _sequential_contender(
    name: str, call: Callable[..., Awaitable[object]], args: tuple[object, ...]
) -> Contender:
    """(d)'s row for strategy ``name``: against the floor's one round trip, a check of
    several calls (`CALLS_PER_CHECK`) is held to the same target per call."""
    calls = CALLS_PER_CHECK.get(name, 1)
    if calls == 1:
        return Contender(name, sequential(call, *args), SEQUENTIAL_TARGET)
    target = Target(SEQUENTIAL_TARGET.bound * calls)
    note = f"{calls} round trips a check: {SEQUENTIAL_TARGET} per call"
    return Contender(name, sequential(call, *args), target, note=note)


async def redis_sections(settings: Settings) -> list[Section]:
    one_at_a_time = Section(
        "d",
        "Redis check per strategy, one at a time",
        "time",
        "A private redis-server on loopback. Floor: `await redis.incr(key)` on a "
        "redis.asyncio client, one call at a time. A check is `await backend.apply(...)` "
        "on one key, admitted every time (Concurrency: a slot taken and given back). The refused "
        "rows go through `limiter.decide` on a client at its limit.",
    )
    burst = Section(
        "e",
        f"Redis throughput, {CALLERS} concurrent callers",
        "throughput",
        f"{CALLERS} callers at once, each on its own key, awaiting one call after another. "
        f"Floor: {CALLERS} callers doing `await redis.incr(key)` on one pooled redis.asyncio "
        "client. The ratio is checks per second over INCRs per second (higher is better).",
    )
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    names = _strategies(settings)
    with server_url("redis") as url:
        client = redis.Redis.from_url(url)
        backend = RedisBackend(url, namespace=namespace, timeout=1.0, max_connections=100)
        try:
            async with backend:
                await client.ping()
                floor = Contender("`INCR` (floor)", sequential(client.incr, "bench:incr"))
                contenders = []
                for name in names:
                    call, args = check_call(backend, name, f"seq:{{a}}:{name}")
                    contenders.append(_sequential_contender(name, call, args))
                contenders += await refused_limiters(backend)
                one_at_a_time.rows = await compare(
                    floor,
                    contenders,
                    rounds=settings.rounds,
                    ops=settings.ops(SEQUENTIAL_PER_ROUND),
                )

                def incr_for(index: int) -> Call:
                    return partial(client.incr, f"bench:incr:{index}")

                floor = Contender(f"{CALLERS} x `INCR` (floor)", concurrent(CALLERS, incr_for))
                contenders = []
                for name in names:

                    def check_for(index: int, name: str = name) -> Call:
                        call, args = check_call(backend, name, f"burst:{{c{index}}}:{name}")
                        return partial(call, *args)

                    contenders.append(
                        Contender(name, concurrent(CALLERS, check_for), THROUGHPUT_TARGET)
                    )
                burst.rows = await compare(
                    floor,
                    contenders,
                    rounds=settings.rounds,
                    ops=settings.ops(PER_CALLER_PER_ROUND),
                    kind="throughput",
                )
                await backend.clear()
        finally:
            await client.aclose()
    if settings.quick:
        for section in (one_at_a_time, burst):
            section.notes.append(f"--quick: {', '.join(names)} only.")
    return [one_at_a_time, burst]


async def memcached_section(settings: Settings) -> Section:
    section = Section(
        "f",
        "Memcached check per strategy, one at a time",
        "time",
        "A private memcached on loopback. Floor: `await client.incr(key)` on an aiomcache "
        "client, one call at a time. A check is `await backend.apply(...)` on one key, "
        "admitted every time (Concurrency: a slot taken and given back). FixedWindow counts "
        "with `incr` (target ≤ 1.2x); the others use compare-and-swap. The refused rows go "
        "through `limiter.decide` on a client at its limit.",
    )
    names = _strategies(settings)
    with server_url("memcached") as url:
        parts = urlsplit(url)
        client = aiomcache.Client(parts.hostname or "127.0.0.1", parts.port or 11211)
        backend = MemcachedBackend(url=url, namespace=f"bench-{uuid.uuid4().hex[:8]}", timeout=1.0)
        try:
            await client.set(b"bench:incr", b"0")
            async with backend:
                floor = Contender("`incr` (floor)", sequential(client.incr, b"bench:incr"))
                contenders = []
                for name in names:
                    call, args = check_call(backend, name, f"seq:{{a}}:{name}")
                    target = MEMCACHED_COUNTED_TARGET if name == "FixedWindow" else None
                    contenders.append(Contender(name, sequential(call, *args), target))
                contenders += await refused_limiters(backend)
                section.rows = await compare(
                    floor,
                    contenders,
                    rounds=settings.rounds,
                    ops=settings.ops(SEQUENTIAL_PER_ROUND),
                )
        finally:
            await client.close()
    if settings.quick:
        section.notes.append(f"--quick: {', '.join(names)} only.")
    return section

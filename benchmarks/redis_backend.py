"""Round trips and time per check on the Redis backend, against a bare INCR.

Run: ``hatch run python benchmarks/redis_backend.py`` (starts a private redis-server on a
free loopback port; needs redis-server on the PATH).

1. Round trips: MONITOR on the private server records every command a client sends;
   commands a script runs show as ``lua`` and are not round trips. Each strategy's
   checks are bracketed by ECHO markers and counted.
2. Time: sequential checks (one at a time), rounds interleaved across the contenders so
   drift affects all alike; the median of the per-round means, in microseconds, with the
   ratio to a bare ``INCR`` (redis-py, a client of default settings) in the same run.
3. Server time: what Redis itself spends per check (``INFO commandstats``: the time of
   the commands the check sends, which includes what its script runs).
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis

from traffik import Rate
from traffik.backends.base import Hit
from traffik.backends.redis import RedisBackend
from traffik.strategies import (
    GCRA,
    NO_PARAMS,
    AdaptiveThrottle,
    Concurrency,
    CostBasedTokenBucket,
    FixedWindow,
    LeakyBucket,
    LeakyBucketWithQueue,
    PriorityQueue,
    QuotaWithRollover,
    SlidingWindowCounter,
    SlidingWindowLog,
    Strategy,
    TieredRate,
    TimeOfDay,
    TokenBucket,
    TokenBucketWithDebt,
)

RATE = Rate.parse("10000000/hour")  # never refuses during the run: every check writes
ROUNDS = 15
PER_ROUND = 400


class OwnFixedWindow(FixedWindow):
    """A subclass: the generic optimistic path (read, decide in Python, compare-and-set)."""


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not on the PATH")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", tempfile.mkdtemp()],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    process.kill()
    sys.exit("redis-server did not start")


# Every built-in strategy at a rate it never refuses during the run (so every check
# writes), with the params it reads. Concurrency takes a slot and gives it back: a check
# and a refund, two calls (its line says so).
STRATEGIES: list[tuple[Strategy[Any], dict[str, object]]] = [
    (FixedWindow(), {}),
    (SlidingWindowLog(), {}),
    (SlidingWindowCounter(), {}),
    (TokenBucket(), {}),
    (TokenBucketWithDebt(max_debt=10), {}),
    (LeakyBucket(), {}),
    (LeakyBucketWithQueue(), {}),
    (GCRA(burst_tolerance_ms=3_600_000), {}),
    (TieredRate(), {"tier": "premium"}),
    (AdaptiveThrottle(), {}),
    (PriorityQueue(max_queue_size=10**9), {"priority": "high"}),
    (QuotaWithRollover(), {}),
    (TimeOfDay(), {}),
    (CostBasedTokenBucket(), {}),
]


def contenders(backend: RedisBackend, raw: redis.Redis) -> dict[str, Callable[[], Awaitable[Any]]]:
    tight = Rate.parse("1000000/min")
    checks: dict[str, Callable[[], Awaitable[Any]]] = {
        "INCR (floor)": lambda: raw.incr("bench:floor"),
    }
    for strategy, params in STRATEGIES:
        key = f"{strategy.name}:{{a}}"
        checks[type(strategy).__name__] = functools.partial(
            backend.apply, key, strategy, RATE, 1, params
        )
    concurrency = Concurrency()
    slots = Rate.parse("100/min")  # 100 slots, leased for a minute

    async def slot() -> None:
        await backend.apply("slots:{a}", concurrency, slots, 1, NO_PARAMS)
        await backend.refund("slots:{a}", concurrency, slots, 1, NO_PARAMS)

    checks[CONCURRENCY] = slot
    checks["2 limits, apply_many"] = lambda: backend.apply_many(
        [
            Hit("m1:{a}", FixedWindow(), tight, 1, NO_PARAMS),
            Hit("m2:{a}", TokenBucket(), RATE, 1, NO_PARAMS),
        ]
    )
    checks["subclass (generic path)"] = lambda: backend.apply(
        "own:{a}", OwnFixedWindow(), RATE, 1, NO_PARAMS
    )
    return checks


Checks = dict[str, Callable[[], Awaitable[Any]]]

# A concurrency slot is taken by one call and given back by another: its figures are per
# call (half of each take-and-give).
CONCURRENCY = "Concurrency (per call)"
CALLS_PER_CHECK = {CONCURRENCY: 2}


async def round_trips(url: str, checks: Checks) -> dict[str, float]:
    monitor_client = redis.Redis.from_url(url)
    marker_client = redis.Redis.from_url(url)
    counts: dict[str, float] = {}
    async with monitor_client.monitor() as monitor:
        for name, check in checks.items():
            await marker_client.echo(f"begin {name}")
            for _ in range(10):
                await check()
            await marker_client.echo(f"end {name}")
            seen, counting = 0, False
            while True:
                command = await monitor.next_command()
                text = command["command"]
                if text == f"ECHO begin {name}":
                    counting = True
                elif text == f"ECHO end {name}":
                    break
                elif counting and command["client_type"] != "lua":
                    seen += 1
            counts[name] = seen / 10
    await monitor_client.aclose()
    await marker_client.aclose()
    return counts


# The commands a check sends (not those its script runs, which its EVALSHA time includes).
_TOP_LEVEL = {"cmdstat_evalsha", "cmdstat_eval", "cmdstat_incr", "cmdstat_incrby"}


async def server_time(raw: redis.Redis, checks: Checks) -> dict[str, float]:
    """Microseconds Redis itself spends per check (INFO commandstats), one check at a time."""
    spent: dict[str, float] = {}
    for name, check in checks.items():
        await raw.config_resetstat()
        for _ in range(PER_ROUND):
            await check()
        stats = await raw.info("commandstats")
        spent[name] = sum(stats[key]["usec"] for key in _TOP_LEVEL if key in stats) / PER_ROUND
    return spent


async def timings(checks: dict[str, Callable[[], Awaitable[Any]]]) -> dict[str, float]:
    per_round: dict[str, list[float]] = {name: [] for name in checks}
    for _ in range(3):  # warm up connections, script caches, code paths
        for check in checks.values():
            await check()
    for _ in range(ROUNDS):
        for name, check in checks.items():
            started = time.perf_counter()
            for _ in range(PER_ROUND):
                await check()
            per_round[name].append((time.perf_counter() - started) / PER_ROUND * 1e6)
    return {name: statistics.median(values) for name, values in per_round.items()}


async def main() -> None:
    process, url = start_server()
    try:
        backend = RedisBackend(url, namespace="bench")  # server time: the production path
        raw = redis.Redis.from_url(url)
        async with backend:
            await raw.ping()  # connect first: the handshake is not part of a check
            checks = contenders(backend, raw)
            for check in checks.values():  # a new combination's script is loaded once
                await check()
            trips = await round_trips(url, checks)
            on_server = await server_time(raw, checks)
            micros = await timings(checks)
        await raw.aclose()
    finally:
        process.kill()
        process.wait()
    floor = micros["INCR (floor)"]
    print(f"{'check':<28}{'round trips':>12}{'µs/check':>11}{'x INCR':>9}{'server µs':>11}")
    for name in checks:
        calls = CALLS_PER_CHECK.get(name, 1)
        trip, micro, server = trips[name] / calls, micros[name] / calls, on_server[name] / calls
        print(f"{name:<28}{trip:>12g}{micro:>11.1f}{micro / floor:>9.2f}{server:>11.1f}")
    print(f"(median of {ROUNDS} interleaved rounds of {PER_ROUND} sequential checks, loopback)")


if __name__ == "__main__":
    asyncio.run(main())

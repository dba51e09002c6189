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
4. Throughput: ``CALLERS`` (50) callers at once, each on its own key, each awaiting one
   check after another; checks per second over the whole burst, the median of
   interleaved rounds, with the ratio to the same number of callers doing
   ``await redis.incr(key)`` on one pooled redis-py client (no explicit pipelining).

Rows ending in ``uncoalesced`` use a backend made with ``coalesce=False`` (every call a
round trip of its own through redis-py's ``execute_command``), for comparison.
``--only trips,time,server,throughput`` runs some of the sections.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
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
CALLERS = 50  # concurrent callers in the throughput section
PER_CALLER = 40  # checks each caller awaits, one after another, per throughput round
SECTIONS = ("trips", "time", "server", "throughput")


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


def contenders(
    backend: RedisBackend, plain: RedisBackend, raw: redis.Redis
) -> dict[str, Callable[[], Awaitable[Any]]]:
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
    for strategy in (FixedWindow(), TokenBucket()):
        checks[f"{type(strategy).__name__}, uncoalesced"] = functools.partial(
            plain.apply, f"{strategy.name}:{{a}}", strategy, RATE, 1, NO_PARAMS
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


# A contender of the throughput section: given a caller's index, that caller's check.
CheckFor = Callable[[int], Callable[[], Awaitable[Any]]]


def concurrent_contenders(
    backend: RedisBackend, plain: RedisBackend, raw: redis.Redis
) -> dict[str, CheckFor]:
    """The same checks as `contenders`, each caller on a key of its own."""
    checks: dict[str, CheckFor] = {
        "INCR (floor)": lambda caller: functools.partial(raw.incr, f"bench:floor:{caller}"),
    }
    for strategy, params in STRATEGIES:

        def check_for(
            caller: int, strategy: Strategy[Any] = strategy, params: dict[str, object] = params
        ) -> Callable[[], Awaitable[Any]]:
            key = f"{strategy.name}:{{c{caller}}}"
            return functools.partial(backend.apply, key, strategy, RATE, 1, params)

        checks[type(strategy).__name__] = check_for
    concurrency, slots = Concurrency(), Rate.parse("100/min")

    def slot_for(caller: int) -> Callable[[], Awaitable[Any]]:
        async def slot() -> None:
            await backend.apply(f"slots:{{c{caller}}}", concurrency, slots, 1, NO_PARAMS)
            await backend.refund(f"slots:{{c{caller}}}", concurrency, slots, 1, NO_PARAMS)

        return slot

    checks[CONCURRENCY] = slot_for
    tight = Rate.parse("1000000/min")
    checks["2 limits, apply_many"] = lambda caller: functools.partial(
        backend.apply_many,
        [
            Hit(f"m1:{{c{caller}}}", FixedWindow(), tight, 1, NO_PARAMS),
            Hit(f"m2:{{c{caller}}}", TokenBucket(), RATE, 1, NO_PARAMS),
        ],
    )
    checks["subclass (generic path)"] = lambda caller: functools.partial(
        backend.apply, f"own:{{c{caller}}}", OwnFixedWindow(), RATE, 1, NO_PARAMS
    )
    for strategy in (FixedWindow(), TokenBucket()):

        def plain_for(
            caller: int, strategy: Strategy[Any] = strategy
        ) -> Callable[[], Awaitable[Any]]:
            key = f"{strategy.name}:{{c{caller}}}"
            return functools.partial(plain.apply, key, strategy, RATE, 1, NO_PARAMS)

        checks[f"{type(strategy).__name__}, uncoalesced"] = plain_for
    return checks


async def burst(check_for: CheckFor) -> float:
    """Checks per second: CALLERS callers at once, each awaiting PER_CALLER checks in turn."""
    calls = [check_for(caller) for caller in range(CALLERS)]

    async def caller(call: Callable[[], Awaitable[Any]]) -> None:
        for _ in range(PER_CALLER):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(caller(call) for call in calls))
    return CALLERS * PER_CALLER / (time.perf_counter() - started)


async def throughputs(checks: dict[str, CheckFor]) -> dict[str, float]:
    per_round: dict[str, list[float]] = {name: [] for name in checks}
    for check_for in checks.values():  # warm up: every caller's connection, every script
        await burst(check_for)
    for _ in range(ROUNDS):
        for name, check_for in checks.items():
            per_round[name].append(await burst(check_for))
    return {name: statistics.median(values) for name, values in per_round.items()}


async def main(sections: set[str]) -> None:
    process, url = start_server()
    trips: dict[str, float] = {}
    on_server: dict[str, float] = {}
    micros: dict[str, float] = {}
    per_second: dict[str, float] = {}
    try:
        backend = RedisBackend(url, namespace="bench")  # the production path
        plain = RedisBackend(url, namespace="bench-plain", coalesce=False)  # one call per trip
        raw = redis.Redis.from_url(url)  # a client of default settings: the floor
        async with backend, plain:
            await raw.ping()  # connect first: the handshake is not part of a check
            checks = contenders(backend, plain, raw)
            for check in checks.values():  # a new combination's script is loaded once
                await check()
            if "trips" in sections:
                trips = await round_trips(url, checks)
            if "server" in sections:
                on_server = await server_time(raw, checks)
            if "time" in sections:
                micros = await timings(checks)
            if "throughput" in sections:
                per_second = await throughputs(concurrent_contenders(backend, plain, raw))
        await raw.aclose()
    finally:
        process.kill()
        process.wait()
    if trips or on_server or micros:
        floor = micros.get("INCR (floor)", math.nan)
        print(f"{'check':<28}{'round trips':>12}{'µs/check':>11}{'x INCR':>9}{'server µs':>11}")
        for name in checks:
            calls = CALLS_PER_CHECK.get(name, 1)
            trip = trips.get(name, math.nan) / calls
            micro = micros.get(name, math.nan) / calls
            server = on_server.get(name, math.nan) / calls
            print(f"{name:<28}{trip:>12g}{micro:>11.1f}{micro / floor:>9.2f}{server:>11.1f}")
        print(f"(median of {ROUNDS} interleaved rounds of {PER_ROUND} sequential checks, loopback)")
    if per_second:
        floor = per_second["INCR (floor)"]
        print(f"\n{CALLERS} concurrent callers, each on its own key")
        print(f"{'check':<28}{'checks/s':>11}{'x INCR/s':>10}")
        for name, rate in per_second.items():
            rate *= CALLS_PER_CHECK.get(name, 1)  # calls per second
            print(f"{name:<28}{rate:>11,.0f}{rate / floor:>10.2f}")
        print(f"(median of {ROUNDS} interleaved rounds, {CALLERS} callers x {PER_CALLER} checks)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections: {', '.join(SECTIONS)}")  # fmt: skip
    chosen = set(parser.parse_args().only.split(","))
    if not chosen <= set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(chosen - set(SECTIONS)))}")
    asyncio.run(main(chosen))

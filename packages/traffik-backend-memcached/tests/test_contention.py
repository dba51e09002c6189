"""Exact under contention: simultaneous hits from many backends and many processes.

The strategies are looked up by name in `STRATEGIES`, so built-in strategies join these
tests by adding a line there (with a naive reference model in `ORACLES`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from traffik import ManualClock, Rate
from traffik.backends.memcached import CasStatistics
from traffik.strategies import FixedWindow, SlidingWindowCounter, TokenBucket
from traffik.strategies.base import Strategy

if TYPE_CHECKING:
    from conftest import BackendFactory

STRATEGIES: dict[str, Callable[[], Strategy[Any]]] = {
    "FixedWindow": FixedWindow,
    "TokenBucket": TokenBucket,
    "SlidingWindowCounter": SlidingWindowCounter,
}


# -- naive reference models: lists of admitted timestamps, exact fractions -------------


class Oracle:
    def __init__(self, rate: Rate) -> None:
        self.limit, self.period = rate.limit, rate.period_ms
        self.admitted: list[int] = []  # timestamps (ms) of admitted unit-cost hits

    def hit(self, now: int) -> bool:
        if self.allows(now):
            self.admitted.append(now)
            return True
        return False

    def allows(self, now: int) -> bool:
        raise NotImplementedError


class FixedWindowOracle(Oracle):
    def allows(self, now: int) -> bool:
        start = now - now % self.period
        return sum(start <= t for t in self.admitted) + 1 <= self.limit


class TokenBucketOracle(Oracle):
    def allows(self, now: int) -> bool:
        capacity = Fraction(self.limit)
        tokens, last = capacity, None
        for t in [*self.admitted, now]:
            if last is not None:
                refill = Fraction((t - last) * self.limit, self.period)
                tokens = min(capacity, tokens + refill)
            last = t
            tokens -= 1
        return tokens >= 0


class SlidingWindowCounterOracle(Oracle):
    def allows(self, now: int) -> bool:
        start = now - now % self.period
        current = sum(start <= t for t in self.admitted)
        previous = sum(start - self.period <= t < start for t in self.admitted)
        weighted = previous * (start + self.period - now) // self.period
        return weighted + current + 1 <= self.limit


ORACLES: dict[str, type[Oracle]] = {
    "FixedWindow": FixedWindowOracle,
    "TokenBucket": TokenBucketOracle,
    "SlidingWindowCounter": SlidingWindowCounterOracle,
}


# -- contention tests ----------------------------------------------------------------


def combined(stats: list[CasStatistics], before: list[CasStatistics] | None = None) -> str:
    """Retries per operation over several backends, counted since ``before``.

    Printed, not asserted (run with -s to see them): they measure, the counts assert.
    """
    start = before or [CasStatistics() for _ in stats]
    operations = sum(s.operations - b.operations for s, b in zip(stats, start, strict=True))
    retries = sum(s.retries - b.retries for s, b in zip(stats, start, strict=True))
    conflicts = sum(s.conflicts - b.conflicts for s, b in zip(stats, start, strict=True))
    rounds = sum(s.rounds - b.rounds for s, b in zip(stats, start, strict=True))
    most = max(s.max_retries for s in stats)
    return (
        f"{operations} operations in {rounds} rounds, {conflicts} conflicts; retries per "
        f"operation mean {retries / max(operations, 1):.2f}, max {most}"
    )


@pytest.mark.parametrize("app_instances", [1, 8])
@pytest.mark.parametrize("strategy_name", sorted(STRATEGIES))
async def test_simultaneous_hits_just_after_a_rollover_admit_what_the_model_admits(
    backends: BackendFactory, clock: ManualClock, strategy_name: str, app_instances: int
) -> None:
    rate, strategy = Rate.parse("40/10s"), STRATEGIES[strategy_name]()
    oracle = ORACLES[strategy_name](rate)
    instances = [await backends() for _ in range(app_instances)]
    rollover = (int(clock() * 1000) // rate.period_ms + 1) * rate.period_ms

    # 20 hits in the previous window, 5 s before the rollover...
    clock.set((rollover - 5_000) / 1000)
    for i in range(20):
        assert (await instances[i % app_instances].apply("hot", strategy, rate, 1, {})).allowed
        assert oracle.hit(rollover - 5_000)
    # ...then 80 simultaneous hits 500 ms after it.
    clock.set((rollover + 500) / 1000)
    before = [dataclasses.replace(backend.cas_stats) for backend in instances]
    decisions = await asyncio.gather(
        *(instances[i % app_instances].apply("hot", strategy, rate, 1, {}) for i in range(80))
    )
    expected = sum(oracle.hit(rollover + 500) for _ in range(80))
    assert sum(decision.allowed for decision in decisions) == expected
    if strategy_name == "SlidingWindowCounter":
        assert expected == 21  # 20 previous hits weigh 20 * 9.5 s / 10 s = 19; 40 - 19 = 21
    stats = combined([backend.cas_stats for backend in instances], before)
    print(f"\n80 hits, {strategy_name}, {app_instances} instance(s): {stats}")


WORKER = Path(__file__).with_name("_contention_worker.py")


@pytest.mark.slow
@pytest.mark.parametrize(("instances_per_process", "servers"), [(1, 1), (10, 1), (10, 3)])
@pytest.mark.parametrize("strategy_name", sorted(STRATEGIES))
async def test_four_processes_with_1250_simultaneous_hits_each_admit_exactly_the_limit(
    memcached_url: str,
    namespace: str,
    clock: ManualClock,
    strategy_name: str,
    instances_per_process: int,
    servers: int,
    request: pytest.FixtureRequest,
) -> None:
    # One server, or three (the key then lives on one of them: `MemcachedBackend(servers=)`).
    where = memcached_url
    if servers == 3:
        where = ",".join(request.getfixturevalue("memcached_servers").addresses)
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            where,
            namespace,
            strategy_name,
            "1250",
            "100/hour",
            repr(clock()),
            str(instances_per_process),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    try:
        for process in processes:  # each has connected and read the namespace's generation
            assert process.stdout is not None
            assert await asyncio.wait_for(process.stdout.readline(), 60) == b"ready\n"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
        outputs = await asyncio.wait_for(
            asyncio.gather(*(process.communicate() for process in processes)), 120
        )
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    results = [json.loads(stdout) for stdout, _ in outputs]
    assert [r["errors"] for r in results] == [{}, {}, {}, {}]
    assert sum(r["allowed"] for r in results) == 100
    assert sum(r["refused"] for r in results) == 4 * 1250 - 100
    stats = [CasStatistics(**each) for r in results for each in r["stats"]]
    print(
        f"\n4 x 1250 hits, {strategy_name}, {len(stats)} instances, {servers} server(s): "
        f"{combined(stats)}"
    )


async def test_equal_strategies_share_a_round(backends: BackendFactory) -> None:
    backend = await backends()
    rate = Rate.parse("10/min")
    decisions = await asyncio.gather(
        *(backend.apply("shared", TokenBucket(), rate, 1, {}) for _ in range(30))
    )
    assert sum(d.allowed for d in decisions) == 10
    assert backend.cas_stats.rounds == 1
    assert backend.cas_stats.conflicts == 0

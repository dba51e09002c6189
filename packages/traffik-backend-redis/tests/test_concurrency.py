"""Exactness under load: thousands of simultaneous checks, from one process or several."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, TypedDict

import pytest

from traffik import FixedWindow, ManualClock, Rate, TokenBucket
from traffik.backends.redis import RedisBackend
from traffik.strategies import NO_PARAMS

BackendFactory = Callable[..., Awaitable[RedisBackend]]

WORKER = Path(__file__).with_name("_burst_worker.py")

# Every built-in strategy (all native) at "100/hour", and what exactly it admits at NOW:
# the limit, except where the strategy reads the rate otherwise. A newly ported strategy
# joins by name (see _burst_worker.make_strategy for options).
EXACTLY: dict[str, int] = {
    "FixedWindow": 100,
    "SlidingWindowLog": 100,
    "SlidingWindowCounter": 100,
    "TokenBucket": 100,
    "TokenBucketWithDebt": 100,  # max_debt=0 by default
    "LeakyBucket": 100,
    "LeakyBucketWithQueue": 100,  # a queue of the limit, each request told its delay
    "GCRA:burst_tolerance_ms=3564000": 100,  # 99 emission intervals of 36 s: a burst of 100
    "TieredRate": 100,  # the default tier, "free", multiplies by 1
    "AdaptiveThrottle": 100,  # a new client starts at the full limit
    "PriorityQueue": 100,
    "QuotaWithRollover": 100,  # nothing to roll over from a previous hour
    "TimeOfDay": 150,  # 22:00 UTC: the default evening multiplier is 1.5
    "CostBasedTokenBucket": 100,
    "Concurrency": 100,  # 100 slots, each leased for an hour
}

# Half-way through an hour: a "100/hour" window cannot roll over during the test.
NOW = 1_700_001_800.0


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "one call per round trip"])
async def test_five_thousand_simultaneous_checks_wait_for_connections_and_stay_exact(
    make_redis_backend: BackendFactory, coalesce: bool
) -> None:
    # The shipped defaults: a burst queued behind the pool is never the store's silence.
    backend = await make_redis_backend(clock=ManualClock(NOW), coalesce=coalesce)
    rate = Rate.parse("100/hour")
    for strategy in (FixedWindow(), TokenBucket()):
        # Errors propagate (no on_error here): a pool error would fail the gather.
        decisions = await asyncio.gather(
            *(backend.apply(strategy.name, strategy, rate, 1, NO_PARAMS) for _ in range(5_000))
        )
        assert sum(d.allowed for d in decisions) == 100


class Report(TypedDict):
    """What a worker prints after each burst."""

    allowed: int
    errors: list[str]
    error_count: int


def fire_from_four_processes(
    redis_url: str, namespace: str, specs: list[str]
) -> dict[str, list[Report]]:
    """Each of 4 processes fires 1,250 simultaneous checks per strategy, all at once.

    Each process's backend has the shipped defaults (coalescing on, the time budget).

    The processes start once for every strategy (starting Python is the slow part); for
    each strategy in turn, every process is told to fire at the same moment.
    """
    command = [sys.executable, str(WORKER), redis_url, namespace, "1250", "100/hour", str(NOW)]
    workers = [
        subprocess.Popen(
            [*command, *specs], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    reports: dict[str, list[Report]] = {}
    try:
        for worker in workers:
            assert _stdout(worker).readline().strip() == "ready"
        for spec in specs:
            for worker in workers:  # every process is connected and idle: fire together
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            reports[spec] = [json.loads(_stdout(worker).readline()) for worker in workers]
        for worker in workers:
            worker.communicate(timeout=120)
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    return reports


@pytest.mark.slow
def test_four_processes_of_1250_simultaneous_checks_admit_exactly_the_limit(
    redis_url: str, namespace: str
) -> None:
    reports = fire_from_four_processes(redis_url, namespace, list(EXACTLY))
    errors = {spec: [r["error_count"] for r in runs] for spec, runs in reports.items()}
    assert all(counts == [0] * 4 for counts in errors.values()), reports
    admitted = {spec: sum(r["allowed"] for r in runs) for spec, runs in reports.items()}
    assert admitted == EXACTLY, reports


@pytest.mark.slow
def test_the_generic_path_is_exact_across_processes_too(redis_url: str, namespace: str) -> None:
    reports = fire_from_four_processes(redis_url, namespace, ["subclass:FixedWindow"])
    runs = reports["subclass:FixedWindow"]
    assert [r["error_count"] for r in runs] == [0] * 4, runs
    assert sum(r["allowed"] for r in runs) == 100, runs


def _stdout(worker: subprocess.Popen[str]) -> IO[str]:
    assert worker.stdout is not None
    return worker.stdout

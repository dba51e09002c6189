"""Exactness under load: thousands of simultaneous checks, from one process or several."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from traffik import FixedWindow, ManualClock, Rate, TokenBucket
from traffik.backends.redis import RedisBackend
from traffik.strategies import NO_PARAMS

BackendFactory = Callable[..., Awaitable[RedisBackend]]

WORKER = Path(__file__).with_name("_burst_worker.py")

# Every window and bucket strategy with a native script; a newly ported one joins by name.
NATIVE_STRATEGIES = ["FixedWindow", "TokenBucket"]

# Half-way through an hour: a "100/hour" window cannot roll over during the test.
NOW = 1_700_001_800.0


async def test_five_thousand_simultaneous_checks_wait_for_connections_and_stay_exact(
    make_redis_backend: BackendFactory,
) -> None:
    # The default settings but the budget (see conftest.py); that a busy event loop never
    # reads as a silent store is tested on the watchdog itself, in traffik-core.
    backend = await make_redis_backend(clock=ManualClock(NOW))
    rate = Rate.parse("100/hour")
    for strategy in (FixedWindow(), TokenBucket()):
        # Errors propagate (no on_error here): a pool error would fail the gather.
        decisions = await asyncio.gather(
            *(backend.apply(strategy.name, strategy, rate, 1, NO_PARAMS) for _ in range(5_000))
        )
        assert sum(d.allowed for d in decisions) == 100


@pytest.mark.slow
@pytest.mark.parametrize("strategy", [*NATIVE_STRATEGIES, "subclass:FixedWindow"])
def test_four_processes_of_1250_simultaneous_checks_admit_exactly_the_limit(
    redis_url: str, namespace: str, strategy: str
) -> None:
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                redis_url,
                namespace,
                strategy,
                "1250",
                "100/hour",
                str(NOW),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:  # every process is connected: fire together
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reports = [json.loads(worker.communicate(timeout=120)[0]) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert [report["error_count"] for report in reports] == [0] * 4, reports
    assert sum(report["allowed"] for report in reports) == 100, reports

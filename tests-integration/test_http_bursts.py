"""5,000 simultaneous requests with every setting as shipped: exactly the limit passes.

Four app instances (OS processes), each a FastAPI app limiting ``GET /<uid>`` with
``Depends(HTTPThrottle(uid, rate="100/hour", strategy=...))`` on ``RedisBackend(url)`` or
``MemcachedBackend(url)`` with nothing else set, each send 1,250 simultaneous requests
from one client through ``httpx.ASGITransport``, against one server: exactly 100 are
admitted, whatever the load on the machine (the time budget times the store, never our
queues). On memcached, one process's 5,000 simultaneous `Limiter.decide` calls too.

Windows follow the real clock, so a burst that straddles an hour boundary is fired again
on fresh keys (the next boundary is an hour away); a burst lasting over 36 s would let the
buckets refill a unit, and says how long it took.

CI runs each burst once. ``pytest -m burst_repeat`` runs every one ten times in a row and
prints the admitted counts and the worst settle time (first request to last answer).
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from traffik import FixedWindow, Limiter, SlidingWindowCounter, Strategy, TokenBucket
from traffik.backends.memcached import MemcachedBackend

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("_http_burst_worker.py")
INSTANCES = 4
REQUESTS_EACH = 1_250
LIMIT = 100
HOUR = 3_600.0
REPEATS = 10

REDIS_STRATEGIES = [
    "FixedWindow",
    "SlidingWindowLog",
    "SlidingWindowCounter",
    "TokenBucket",
    "LeakyBucket",
    # A burst of 100 at "100/hour" needs 99 emission intervals (36 s each) of tolerance.
    "GCRA:burst_tolerance_ms=3564000",
]
MEMCACHED_STRATEGIES = ["FixedWindow", "SlidingWindowCounter", "TokenBucket"]
LIMITER_STRATEGIES: list[Strategy[Any]] = [FixedWindow(), SlidingWindowCounter(), TokenBucket()]


@dataclass
class Burst:
    """What one burst came to, over every instance."""

    what: str
    admitted: int
    others: Counter[str] = field(default_factory=Counter)  # anything but 200 and 429
    errors: list[str] = field(default_factory=list)
    settle: float = 0.0  # seconds from the first request to the last answer


def same_hour(started: float, ended: float) -> bool:
    return math.floor(started / HOUR) == math.floor(ended / HOUR)


class Instances:
    """``INSTANCES`` app processes on one server, told to fire together."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.workers = [
            subprocess.Popen(
                [sys.executable, str(WORKER), kind, url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(INSTANCES)
        ]
        self._all_say("ready")

    def fire(self, spec: str) -> Burst:
        """Every instance sends its requests to a fresh route limited by ``spec``, at once."""
        while True:
            uid = f"burst-{uuid.uuid4().hex[:12]}"
            self._tell(f"route {uid} {spec}")
            self._all_say("ready")
            self._tell(f"go {uid} {REQUESTS_EACH}")  # every instance is idle: all fire now
            reports = [json.loads(_stdout(worker).readline()) for worker in self.workers]
            started = min(report["started"] for report in reports)
            ended = max(report["ended"] for report in reports)
            if same_hour(started, ended):
                break
        statuses: Counter[str] = Counter()
        for report in reports:
            statuses.update(report["statuses"])
        admitted = statuses.pop("200", 0)
        statuses.pop("429", None)
        errors = [error for report in reports for error in report["errors"]]
        return Burst(f"{self.kind} {spec}", admitted, statuses, errors, ended - started)

    def close(self) -> None:
        for worker in self.workers:
            if worker.stdin is not None:
                worker.stdin.close()
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            if worker.stdout is not None:
                worker.stdout.close()

    def _tell(self, line: str) -> None:
        for worker in self.workers:
            assert worker.stdin is not None
            worker.stdin.write(line + "\n")
            worker.stdin.flush()

    def _all_say(self, expected: str) -> None:
        for worker in self.workers:
            answer = _stdout(worker).readline().strip()
            assert answer == expected, f"a {self.kind} instance said {answer!r}"


def _stdout(worker: subprocess.Popen[str]) -> IO[str]:
    assert worker.stdout is not None
    return worker.stdout


@pytest.fixture(scope="module")
def redis_instances(redis_url: str) -> Iterator[Instances]:
    instances = Instances("redis", redis_url)
    yield instances
    instances.close()


@pytest.fixture(scope="module")
def memcached_instances(memcached_url: str) -> Iterator[Instances]:
    instances = Instances("memcached", memcached_url)
    yield instances
    instances.close()


async def limiter_burst(url: str, strategy: Strategy[Any], hits: int) -> Burst:
    """``hits`` simultaneous `Limiter.decide` calls in this process, on one key."""
    async with MemcachedBackend(url) as backend:
        while True:
            uid = f"burst-{uuid.uuid4().hex[:12]}"
            limiter = Limiter(uid, rate="100/hour", strategy=strategy, backend=backend)
            started = time.time()
            decisions = await asyncio.gather(*(limiter.decide("client") for _ in range(hits)))
            ended = time.time()
            if same_hour(started, ended):
                break
    admitted = sum(decision.allowed for decision in decisions)
    return Burst(f"memcached Limiter.decide {strategy.name}", admitted, settle=ended - started)


def assert_exact(burst: Burst) -> None:
    assert not burst.others, burst
    assert burst.admitted == LIMIT, burst


HTTP_BURSTS = [
    *(pytest.param("redis", spec, marks=pytest.mark.redis) for spec in REDIS_STRATEGIES),
    *(pytest.param("memcached", s, marks=pytest.mark.memcached) for s in MEMCACHED_STRATEGIES),
]


@pytest.mark.parametrize(("kind", "spec"), HTTP_BURSTS)
def test_four_instances_of_1250_requests_admit_exactly_the_limit(
    kind: str, spec: str, request: pytest.FixtureRequest
) -> None:
    instances: Instances = request.getfixturevalue(f"{kind}_instances")
    assert_exact(instances.fire(spec))


@pytest.mark.memcached
@pytest.mark.parametrize("strategy", LIMITER_STRATEGIES, ids=lambda strategy: strategy.name)
async def test_5000_simultaneous_limiter_hits_on_memcached_admit_exactly_the_limit(
    memcached_url: str, strategy: Strategy[Any]
) -> None:
    assert_exact(await limiter_burst(memcached_url, strategy, INSTANCES * REQUESTS_EACH))


@pytest.mark.burst_repeat
@pytest.mark.timeout(7200)
async def test_every_burst_ten_times_in_a_row(
    redis_instances: Instances, memcached_instances: Instances, memcached_url: str
) -> None:
    runs: dict[str, list[Burst]] = {}
    for run in range(REPEATS):
        bursts = [redis_instances.fire(spec) for spec in REDIS_STRATEGIES]
        bursts += [memcached_instances.fire(spec) for spec in MEMCACHED_STRATEGIES]
        for strategy in LIMITER_STRATEGIES:
            bursts.append(await limiter_burst(memcached_url, strategy, 5_000))
        for burst in bursts:
            runs.setdefault(burst.what, []).append(burst)
        progress = ", ".join(f"{burst.admitted} in {burst.settle:.1f} s" for burst in bursts)
        print(f"\nrun {run + 1}: {progress}", flush=True)
    print(
        f"\n{REPEATS} runs in a row: admitted per run; worst settle (first request to last answer)"
    )
    for what, bursts in runs.items():
        admitted = [burst.admitted for burst in bursts]
        worst = max(burst.settle for burst in bursts)
        print(f"  {what:48} {admitted}  worst settle {worst:.1f} s")
    misses = [burst for bursts in runs.values() for burst in bursts if burst.admitted != LIMIT]
    assert not misses, misses
    assert not [burst for bursts in runs.values() for burst in bursts if burst.others]

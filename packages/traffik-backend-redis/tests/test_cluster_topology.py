"""A live Cluster changing under load: a busy slot resharded, a primary killed.

Each test forms a Cluster of its own, 3 primaries with a replica each (the root
conftest's ``redis_cluster_with_replicas``), and changes it while checks run, with the
backend's shipped defaults. What the tests measured is printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

import pytest
import redis
from redis.crc import key_slot

from traffik import FixedWindow, Limiter, ManualClock, Rate
from traffik.backends.base import Hit
from traffik.backends.redis import RedisBackend
from traffik.error_policy import ErrorContext
from traffik.exceptions import BackendError
from traffik.keys import storage_prefix
from traffik.resolution import resolve
from traffik.strategies import NO_PARAMS

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("_cluster_worker.py")
NOW = 1_700_001_800.0  # half-way through an hour: a window cannot roll over meanwhile
PATIENCE = 60.0  # seconds a phase may take before the test gives up (a stuck cluster)


class Node(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    def stop(self) -> None: ...


class Cluster(Protocol):
    """What these tests use of the root conftest's RedisClusterServers."""

    @property
    def url(self) -> str: ...

    @property
    def nodes(self) -> Sequence[Node]: ...

    def wait_until_ok(self, timeout: float = ...) -> float: ...


def client(node: Node) -> redis.Redis:
    return redis.Redis(node.host, node.port, single_connection_client=True)


def command(node: Node, *args: Any, connection: redis.Redis | None = None) -> Any:
    """Send one command to ``node`` (on ``connection``, when given) and return its reply."""
    connection = connection or client(node)
    return connection.execute_command(*args)  # type: ignore[no-untyped-call]


def primaries(cluster: Cluster) -> list[Node]:
    return [node for node in cluster.nodes if client(node).info("replication")["role"] == "master"]


def owner(cluster: Cluster, key: str) -> Node:
    """The primary that serves ``key``'s slot (the others answer MOVED)."""
    for node in primaries(cluster):
        try:
            client(node).exists(key)
        except redis.ResponseError:
            continue
        return node
    raise AssertionError(f"no primary serves {key!r}")


def used(node: Node, key: str, *, asking: bool = False) -> int:
    """The count a FixedWindow stored at ``key`` on ``node`` (``"window,used"``)."""
    connection = client(node)
    if asking:  # the slot is being imported: ASKING lets the next command through
        command(node, "ASKING", connection=connection)
    value = command(node, "GET", key, connection=connection)
    return 0 if value is None else int(value.split(b",")[1])


def wait_for(condition: Callable[[], bool], what: str) -> float:
    """Poll the servers until ``condition`` holds; the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > PATIENCE:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.005)  # polling the servers while the load runs; not a test's timing
    return time.monotonic() - started


def _stdout(worker: subprocess.Popen[str]) -> IO[str]:
    assert worker.stdout is not None
    return worker.stdout


def _tell(workers: list[subprocess.Popen[str]], line: str) -> None:
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(line + "\n")
        worker.stdin.flush()


def test_a_busy_slot_resharded_under_load_admits_exactly_the_limit(
    redis_cluster_with_replicas: Cluster, namespace: str
) -> None:
    """4 processes of 20 callers each hit one FixedWindow key at "20000/hour" while its slot
    moves to another primary by hand, as ``redis-cli --cluster reshard`` moves it:
    IMPORTING and MIGRATING, the key MIGRATEd (callers then get ASK), the slot given to
    the target on every primary (MOVED). Every phase sees thousands of checks."""
    cluster, limit, phase = redis_cluster_with_replicas, 20_000, 2_000
    key = "hot:{reshard}"
    stored = storage_prefix(namespace) + key
    slot = key_slot(stored.encode())
    source = owner(cluster, stored)
    target = next(node for node in primaries(cluster) if node is not source)
    ids = {node.port: command(node, "CLUSTER MYID").decode() for node in primaries(cluster)}
    argv = [sys.executable, str(WORKER), cluster.url, namespace, key, f"{limit}/hour",
            str(NOW), "20"]  # fmt: skip
    workers = [
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    counts: dict[str, int] = {}
    started = time.monotonic()
    try:
        for worker in workers:
            assert _stdout(worker).readline().strip() == "ready"
        _tell(workers, "go")
        wait_for(lambda: used(source, stored) >= phase, "the first checks")
        command(target, f"CLUSTER SETSLOT {slot} IMPORTING {ids[source.port]}")
        command(source, f"CLUSTER SETSLOT {slot} MIGRATING {ids[target.port]}")
        counts["at MIGRATING"] = mark = used(source, stored)
        wait_for(lambda: used(source, stored) >= mark + phase, "checks while MIGRATING")
        keys = command(source, f"CLUSTER GETKEYSINSLOT {slot} 100")
        assert keys == [stored.encode()]
        command(source, "MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)
        counts["at MIGRATE"] = mark = used(target, stored, asking=True)
        wait_for(lambda: used(target, stored, asking=True) >= mark + phase, "checks after ASK")
        for node in [target, source, *(n for n in primaries(cluster) if n not in (source, target))]:
            command(node, f"CLUSTER SETSLOT {slot} NODE {ids[target.port]}")
        counts["at SETSLOT NODE"] = used(target, stored)
        wait_for(lambda: used(target, stored) >= limit, "the limit")
        _tell(workers, "stop")
        reports = [json.loads(_stdout(worker).readline()) for worker in workers]
        for worker in workers:
            worker.communicate(timeout=60)
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    elapsed = time.monotonic() - started
    print(f"\nresharding: counts {counts}, reports {reports}, {elapsed:.1f} s")
    assert [report["error_count"] for report in reports] == [0] * 4, reports
    assert sum(report["allowed"] for report in reports) == limit, reports
    assert sum(report["refused"] for report in reports) > 0  # the limit was reached
    assert counts["at MIGRATING"] < counts["at MIGRATE"] < counts["at SETSLOT NODE"] < limit
    assert owner(cluster, stored) is target
    assert used(target, stored) == limit


def replica_of(cluster: Cluster, primary: Node) -> Node:
    for node in cluster.nodes:
        info = client(node).info("replication")
        if info["role"] == "slave" and int(info["master_port"]) == primary.port:
            return node
    raise AssertionError(f"no replica of {primary}")


def is_primary(node: Node) -> bool:
    try:
        return bool(client(node).info("replication")["role"] == "master")
    except redis.ConnectionError:
        return False


async def elsewhere(limiter: Limiter, namespace: str, cluster: Cluster, avoided: Node) -> str:
    """An identity whose key on ``limiter`` another primary than ``avoided`` serves."""
    for number in range(100):
        hit = (await resolve(limiter, f"other-{number}")).hit
        assert hit is not None
        if owner(cluster, storage_prefix(namespace) + hit.key) is not avoided:
            return f"other-{number}"
    raise AssertionError("every identity is on one primary")


async def test_a_killed_primary_fails_over_and_limiting_resumes_without_a_restart(
    redis_cluster_with_replicas: Cluster, namespace: str
) -> None:
    """The primary of a busy key is killed (SIGKILL) while 10 callers hit it, and 10 more
    hit a key on another primary, through a throttle whose ``on_error`` lets requests
    through. Each check either is decided or goes to ``on_error``, within the time budget
    (the other primary's keys too: the whole Cluster answers CLUSTERDOWN while a slot has
    no primary); once the replica is promoted, the same backend limits again, exactly,
    from the state the replica had received."""
    cluster, limit = redis_cluster_with_replicas, 1000
    backend = RedisBackend(cluster.url, cluster=True, namespace=namespace, clock=ManualClock(NOW))
    budget = backend.timeout
    errors: list[BaseException] = []

    async def let_through(context: ErrorContext) -> float:
        errors.append(context.exception)
        return 0  # the request goes through; counted here

    limiter = Limiter("failover", rate=f"{limit}/hour", backend=backend, on_error=let_through)
    hit = (await resolve(limiter, "client")).hit
    assert hit is not None
    stored = storage_prefix(namespace) + hit.key
    async with backend:
        before = await asyncio.gather(*(limiter.decide("client") for _ in range(200)))
        assert sum(decision.allowed for decision in before) == 200
        victim = owner(cluster, stored)
        heir = replica_of(cluster, victim)
        bystander = await elsewhere(limiter, namespace, cluster, victim)
        decided: list[float] = []  # seconds each decided check took
        failed: list[float] = []  # seconds each check that went to on_error took
        aside = {"decided": 0, "failed": 0}  # the bystander's checks
        admitted = 0
        stop = asyncio.Event()

        async def caller(identity: str) -> None:
            nonlocal admitted
            while not stop.is_set():
                started, seen = time.monotonic(), len(errors)
                decision = await limiter.decide(identity)
                took = time.monotonic() - started
                if decision.limit == 0:  # on_error let it through (limit 0: no limit applied)
                    assert len(errors) > seen
                    failed.append(took)
                elif identity == "client":
                    decided.append(took)
                    admitted += decision.allowed
                aside[("decided", "failed")[decision.limit == 0]] += identity == bystander
                await asyncio.sleep(0.002)  # a request's own pace, not a wait for a result

        callers = [
            asyncio.create_task(caller(identity)) for identity in ["client"] * 10 + [bystander] * 10
        ]
        killed = time.monotonic()
        victim.stop()  # SIGKILL
        loop = asyncio.get_running_loop()
        promoted = await loop.run_in_executor(
            None, wait_for, lambda: is_primary(heir), "the promotion"
        )
        settled = await loop.run_in_executor(None, cluster.wait_until_ok)
        recovered_from = len(decided)
        await loop.run_in_executor(None, wait_for, lambda: len(decided) >= recovered_from + 50,
                                   "checks decided on the new primary")  # fmt: skip
        stop.set()
        await asyncio.gather(*callers)
        outage = time.monotonic() - killed
        kept = used(heir, stored)
        # Limiting resumes, exactly, on what the new primary holds.
        after = await asyncio.gather(*(limiter.decide("client") for _ in range(limit - kept + 100)))
        assert sum(decision.allowed for decision in after) == limit - kept
        assert len(errors) == len(failed)  # every error went to on_error, and only errors
    lost = 200 + admitted - kept
    causes = sorted({type(getattr(error, "cause", error)).__name__ for error in errors})
    print(
        f"\nfailover: promoted after {promoted:.2f} s, cluster ok {settled:.2f} s later; "
        f"{len(decided)} checks decided ({admitted} admitted), {len(failed)} to on_error "
        f"(slowest {max(failed, default=0):.3f} s, budget {budget} s); state kept {kept} "
        f"of {200 + admitted} admitted ({lost} lost); {outage:.1f} s under load; "
        f"on another primary: {aside}; causes: {causes}"
    )
    assert aside["decided"] > 0
    assert failed, "no check met the failover"
    assert all(isinstance(error, BackendError) for error in errors), errors[:3]
    assert max(failed) <= 3 * budget  # each within about the budget, never stuck
    assert lost >= 0  # a failover may lose the newest writes, never invent any


async def test_redirected_checks_count_once_and_split_keys_retry_within_the_budget(
    redis_cluster_with_replicas: Cluster, namespace: str
) -> None:
    """One client's two limits (one slot, one script) while that slot migrates: with one
    key moved and the other not, the script's node answers TRYAGAIN until the budget is
    spent, then `BackendError`; once both keys moved (ASK) and the slot is given away
    (MOVED), every check counts exactly once."""
    cluster = redis_cluster_with_replicas
    backend = RedisBackend(cluster.url, cluster=True, namespace=namespace, clock=ManualClock(NOW))
    hourly = Rate.parse("100/hour")
    hits = [Hit(f"{name}:{{alice}}", FixedWindow(), hourly, 1, NO_PARAMS) for name in "ab"]
    stored = [storage_prefix(namespace) + hit.key for hit in hits]
    slot = key_slot(stored[0].encode())
    async with backend:
        for _ in range(3):
            assert all(decision.allowed for decision in await backend.apply_many(hits))
        source = owner(cluster, stored[0])
        target = next(node for node in primaries(cluster) if node is not source)
        ids = {node.port: command(node, "CLUSTER MYID").decode()
               for node in primaries(cluster)}  # fmt: skip
        command(target, f"CLUSTER SETSLOT {slot} IMPORTING {ids[source.port]}")
        command(source, f"CLUSTER SETSLOT {slot} MIGRATING {ids[target.port]}")
        migrate = ["MIGRATE", target.host, target.port, "", 0, 5000, "KEYS"]
        command(source, *migrate, stored[0])  # the keys now split
        started = time.monotonic()
        with pytest.raises(BackendError) as raised:
            await backend.apply_many(hits)
        waited = time.monotonic() - started
        assert "still answered TRYAGAIN after 0.4s" in str(raised.value)
        assert isinstance(raised.value.cause, redis.ResponseError)
        command(source, *migrate, stored[1])  # both on the target: ASK
        remaining = [(await backend.apply(*hits[0])).remaining for _ in range(3)]
        decisions = await backend.apply_many(hits)
        for node in primaries(cluster):  # the slot is the target's: MOVED
            command(node, f"CLUSTER SETSLOT {slot} NODE {ids[target.port]}")
        remaining += [(await backend.apply(*hits[0])).remaining for _ in range(3)]
    print(f"\nTRYAGAIN for {waited:.3f} s (budget {backend.timeout} s)")
    assert waited >= backend.timeout  # retried for the whole budget before giving up
    assert [decision.remaining for decision in decisions] == [93, 96]
    assert remaining == [96, 95, 94, 92, 91, 90]
    assert used(target, stored[0]) == 10
    assert used(target, stored[1]) == 4

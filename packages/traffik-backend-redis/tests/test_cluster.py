"""A real 3-master Redis Cluster: decisions, several limits in one script, clearing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import pytest
import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

import traffik.strategies
from traffik import (
    Decision,
    FixedWindow,
    InMemoryBackend,
    Limiter,
    ManualClock,
    Rate,
    TokenBucket,
    hit_all,
)
from traffik.backends.base import Hit
from traffik.backends.redis import RedisBackend
from traffik.exceptions import BackendTimeoutError
from traffik.keys import storage_prefix
from traffik.resolution import resolve
from traffik.strategies import NO_PARAMS

NOW = 1_700_001_800.0  # half-way through an hour
MINUTE = Rate.parse("5/min")


class Node(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def port(self) -> int: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class Cluster(Protocol):
    """What these tests use of the root conftest's RedisClusterServers."""

    @property
    def url(self) -> str: ...

    @property
    def nodes(self) -> Sequence[Node]: ...


@pytest.fixture
async def backend(redis_cluster: Cluster, namespace: str) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend(
        redis_cluster.url, cluster=True, namespace=namespace, clock=ManualClock(NOW)
    )
    async with backend:
        yield backend


async def keys_per_node(cluster: Cluster, pattern: str) -> list[int]:
    counts = []
    for node in cluster.nodes:
        client = redis.Redis.from_url(node.url)
        counts.append(len([key async for key in client.scan_iter(match=pattern, count=500)]))
        await client.aclose()
    return counts


async def test_limits_are_exact_for_clients_spread_over_every_node(
    backend: RedisBackend, redis_cluster: Cluster, namespace: str
) -> None:
    for strategy in (FixedWindow(), TokenBucket()):
        limiter = Limiter(f"api-{strategy.name}", rate=MINUTE, backend=backend, strategy=strategy,
                          on_error="raise")  # fmt: skip
        for client in range(30):
            decisions = [await limiter.decide(f"client-{client}") for _ in range(6)]
            assert [d.allowed for d in decisions] == [True] * 5 + [False]
            assert decisions[-1].retry_after > 0
    assert all(count > 0 for count in await keys_per_node(redis_cluster, f"{namespace}:*"))


async def test_several_limits_of_one_client_share_a_slot_and_one_script(
    backend: RedisBackend, namespace: str
) -> None:
    tight = Limiter("tight", rate="2/min", backend=backend, on_error="raise")
    loose = Limiter("loose", rate="10/min", backend=backend, strategy=TokenBucket(),
                    on_error="raise")  # fmt: skip
    slots = set()
    for limiter in (tight, loose):
        hit = (await resolve(limiter, "alice")).hit
        assert hit is not None
        slots.add(key_slot(f"{namespace}:{hit.key}".encode()))
    assert len(slots) == 1  # so one script decides both
    for _ in range(2):
        assert all(d.allowed for d in await hit_all([(tight, "alice"), (loose, "alice")]))
    assert [d.allowed for d in await hit_all([(tight, "alice"), (loose, "alice")])] == [False, True]
    stat = await loose.stat("alice")
    assert stat is not None
    assert stat.remaining == 8


@pytest.mark.parametrize(
    "identity", ["a{b}c", "}{", "x\ud800", "nul\x00", "%7B", "y" * 10_000, "日本"]
)
async def test_any_identity_keeps_one_clients_limits_in_one_slot(
    backend: RedisBackend, namespace: str, identity: str
) -> None:
    limiters = [
        Limiter(f"slot-{index}", rate="1/min", backend=backend, on_error="raise")
        for index in range(3)
    ]
    slots = set()
    for limiter in limiters:
        hit = (await resolve(limiter, identity)).hit
        assert hit is not None
        slots.add(key_slot((storage_prefix(namespace) + hit.key).encode()))
    assert len(slots) == 1  # one script decides them all: no CROSSSLOT error
    pairs = [(limiter, identity) for limiter in limiters]
    assert all(d.allowed for d in await hit_all(pairs))
    assert not any(d.allowed for d in await hit_all(pairs))


@pytest.mark.parametrize("tight_first", [True, False])
async def test_limits_in_different_slots_are_all_or_nothing_by_refunding(
    backend: RedisBackend, namespace: str, tight_first: bool
) -> None:
    tight = Hit("by-ip", FixedWindow(), Rate.parse("1/min"), 1, NO_PARAMS)
    loose = Hit("by-user", TokenBucket(), Rate.parse("10/min"), 1, NO_PARAMS)
    assert key_slot(f"{namespace}:by-ip".encode()) != key_slot(f"{namespace}:by-user".encode())
    hits = [tight, loose] if tight_first else [loose, tight]
    assert all(d.allowed for d in await backend.apply_many(hits))
    refused = await backend.apply_many(hits)
    assert sorted(d.allowed for d in refused) == [False, True]
    assert (await backend.peek(*loose)).remaining == 8  # the second request gave its unit back


async def test_every_strategy_decides_on_the_cluster_alone_and_together(
    backend: RedisBackend,
) -> None:
    """Each built-in strategy per client, spread over the nodes; and all the limits of one
    client (one slot) in one composed script, all-or-nothing: as in memory, every time."""
    assert backend.clock is not None
    memory = InMemoryBackend(clock=backend.clock)
    strategies = [
        getattr(traffik.strategies, name)()
        for name in traffik.strategies.__all__
        if name not in {"DEFAULT_STRATEGY", "NO_PARAMS", "Params", "Priority", "Step", "Strategy"}
    ]
    assert len(strategies) == 15
    params = {"tier": "premium", "priority": "high"}
    for client in range(12):
        singles = [
            Hit(f"{strategy.name}:{{client-{client}}}", strategy, MINUTE, 1, params)
            for strategy in strategies
        ]
        for hit in singles:
            for _ in range(2):
                assert await backend.apply(*hit) == await memory.apply(*hit), hit
        together = [Hit(f"all:{hit.key}", *hit[1:]) for hit in singles]
        tight = Hit(f"tight:{{client-{client}}}", FixedWindow(), Rate.parse("2/min"), 1, params)
        for _ in range(4):  # the third and fourth are refused by the tight limit
            hits = [*together, tight]
            assert await backend.apply_many(hits) == await memory.apply_many(hits)
        for hit in together:
            assert await backend.peek(*hit) == await memory.peek(*hit), hit


async def test_a_strategy_of_its_own_works_on_the_cluster(backend: RedisBackend) -> None:
    own = type("OwnFixedWindow", (FixedWindow,), {})()
    decisions = [await backend.apply("own:{x}", own, MINUTE, 1, NO_PARAMS) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]


async def test_clear_empties_the_namespace_on_every_primary(
    redis_cluster: Cluster, namespace: str
) -> None:
    mine = RedisBackend(redis_cluster.url, cluster=True, namespace=namespace)
    other = RedisBackend(redis_cluster.url, cluster=True, namespace=f"{namespace}-other")
    async with mine, other:
        limiter = Limiter("api", rate=MINUTE, backend=mine)
        for client in range(600):
            await limiter.decide(f"client-{client}")
        await other.apply("kept:{x}", FixedWindow(), MINUTE, 1, NO_PARAMS)
        assert all(count > 0 for count in await keys_per_node(redis_cluster, f"{namespace}:*"))
        await mine.clear()
    assert await keys_per_node(redis_cluster, f"{namespace}:*") == [0, 0, 0]
    assert sum(await keys_per_node(redis_cluster, f"{namespace}-other:*")) == 1


async def test_a_cluster_client_you_pass_and_a_script_flush(
    redis_cluster: Cluster, namespace: str
) -> None:
    client = RedisCluster.from_url(redis_cluster.url)
    backend = RedisBackend(client, namespace=namespace)
    assert backend.is_cluster
    async with backend:
        assert (await backend.apply("k:{a}", TokenBucket(), MINUTE, 1, NO_PARAMS)).remaining == 4
        await client.script_flush()  # every primary forgets the scripts
        assert (await backend.apply("k:{a}", TokenBucket(), MINUTE, 1, NO_PARAMS)).remaining == 3
    assert await client.ping()  # the caller's client stays open
    await client.aclose()


async def test_a_burst_over_every_primary_is_exact(backend: RedisBackend) -> None:
    """Thousands of simultaneous checks, on keys spread over the primaries: each
    primary's share goes out in pipelined round trips, and every key admits its limit."""
    hourly = Rate.parse("20/hour")
    clients = [f"client-{number}" for number in range(60)]
    decisions = await asyncio.gather(
        *(
            backend.apply(f"burst:{{{client}}}", FixedWindow(), hourly, 1, NO_PARAMS)
            for client in clients
            for _ in range(50)
        )
    )
    admitted = [sum(d.allowed for d in decisions[at : at + 50]) for at in range(0, 3000, 50)]
    assert admitted == [20] * 60
    slots = {key_slot(f"x:burst:{{{client}}}".encode()) for client in clients}
    assert len(slots) > 30  # spread, so every primary had its share


async def test_a_paused_primary_fails_only_its_own_calls_within_the_budget(
    redis_cluster: Cluster, namespace: str
) -> None:
    """Each primary has its own silence budget: while one is frozen (SIGSTOP), checks on
    its keys fail with BackendTimeoutError, and checks on the other primaries' keys go on."""
    backend = RedisBackend(redis_cluster.url, cluster=True, namespace=namespace)
    probe = RedisCluster.from_url(redis_cluster.url)
    async with backend:
        await probe.initialize()
        by_port: dict[int, str] = {}
        for number in range(200):
            key = f"paused:{{client-{number}}}"
            node = probe.get_node_from_key(storage_prefix(namespace) + key)
            assert node is not None
            by_port.setdefault(int(node.port), key)
        assert len(by_port) == 3
        frozen = redis_cluster.nodes[0]
        frozen_key = by_port[frozen.port]
        others = [key for port, key in by_port.items() if port != frozen.port]
        frozen.pause()
        try:
            outcomes = await asyncio.gather(
                *(backend.apply(key, FixedWindow(), MINUTE, 1, NO_PARAMS)
                  for key in [frozen_key, *others]),
                return_exceptions=True,
            )  # fmt: skip
        finally:
            frozen.resume()
        assert isinstance(outcomes[0], BackendTimeoutError), outcomes[0]
        assert all(isinstance(outcome, Decision) and outcome.allowed for outcome in outcomes[1:])
        # The same backend carries on once the node answers again.
        assert (await backend.apply(frozen_key, FixedWindow(), MINUTE, 1, NO_PARAMS)).allowed
    await probe.aclose()

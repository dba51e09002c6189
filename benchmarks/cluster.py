"""(h) Checks on a Redis Cluster, 50 concurrent callers, against a bare ``INCR`` on it.

A private Cluster of 3 primaries on loopback (see `benchmarks.servers.cluster_url`). As in
(e): 50 callers at once, each with its own key (so the keys spread over the primaries),
awaiting one check after another; the figure is checks per second over the whole burst,
against 50 callers doing ``await cluster.incr(key)`` on one ``redis.asyncio.RedisCluster``
(which sends each command as a round trip of its own). Higher is better. The backend is
made as in (e): a time budget of 1 s, so that a busy machine cannot fail a run.
"""

from __future__ import annotations

import uuid
from functools import partial

from redis.asyncio import RedisCluster

from benchmarks.contenders import check_call
from benchmarks.harness import Call, Contender, Section, Settings, Target, compare, concurrent
from benchmarks.servers import cluster_url
from traffik.backends.redis import RedisBackend

__all__ = ["CLUSTER_STRATEGIES", "UNCOALESCED", "cluster_section"]

CALLERS = 50
PER_CALLER_PER_ROUND = 20
CLUSTER_TARGET = Target(2.5, at_least=True)
CLUSTER_STRATEGIES = ("FixedWindow", "TokenBucket", "GCRA")
"""Strategies measured on the Cluster: one per kind of state (a window, a bucket, a schedule)."""

UNCOALESCED = "FixedWindow, `coalesce=False`"
PLAIN_NOTE = "every check a round trip of its own through the Cluster client (as before coalescing)"


async def cluster_section(settings: Settings) -> Section:
    section = Section(
        "h",
        f"Redis Cluster throughput, {CALLERS} concurrent callers",
        "throughput",
        f"A private Redis Cluster of 3 primaries on loopback. {CALLERS} callers at once, each "
        "on its own key (spread over the primaries), awaiting one call after another. Floor: "
        f"{CALLERS} callers doing `await cluster.incr(key)` on one redis.asyncio.RedisCluster. "
        "The ratio is checks per second over INCRs per second (higher is better).",
    )
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    with cluster_url() as url:
        client = RedisCluster.from_url(url)
        backend = RedisBackend(
            url, cluster=True, namespace=namespace, timeout=1.0, max_connections=100
        )
        plain = RedisBackend(
            url, cluster=True, namespace=namespace, timeout=1.0, max_connections=100,
            coalesce=False,
        )  # fmt: skip
        try:
            async with backend, plain:
                await client.initialize()

                def incr_for(index: int) -> Call:
                    return partial(client.incr, f"bench:incr:{index}")

                def check_for(index: int, name: str, on: RedisBackend = backend) -> Call:
                    call, args = check_call(on, name, f"burst:{{c{index}}}:{name}:{id(on)}")
                    return partial(call, *args)

                floor = Contender(f"{CALLERS} x `INCR` (floor)", concurrent(CALLERS, incr_for))
                contenders = [
                    Contender(
                        name,
                        concurrent(CALLERS, partial(check_for, name=name)),
                        CLUSTER_TARGET,
                    )
                    for name in CLUSTER_STRATEGIES
                ]
                contenders.append(
                    Contender(
                        UNCOALESCED,
                        concurrent(CALLERS, partial(check_for, name="FixedWindow", on=plain)),
                        note=PLAIN_NOTE,
                    )
                )
                section.rows = await compare(
                    floor,
                    contenders,
                    rounds=settings.rounds,
                    ops=settings.ops(PER_CALLER_PER_ROUND),
                    kind="throughput",
                )
                await backend.clear()
        finally:
            await client.aclose()
    return section

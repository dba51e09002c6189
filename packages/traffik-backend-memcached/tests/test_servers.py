"""Several memcached servers: keys placed by ketama, exact per key, one server killed mid-load."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from traffik import ConfigurationError, Decision, Limiter, ManualClock, Rate
from traffik.backends.memcached import MemcachedBackend
from traffik.backends.memcached.keys import placement_key
from traffik.backends.memcached.ring import Ring
from traffik.backends.memcached.servers import ServerBreaker
from traffik.keys import hash_tag
from traffik.strategies import FixedWindow, TokenBucket

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import RawMemcached, Server


class Servers(Protocol):
    """What the tests use of the root conftest's ``MemcachedServers``."""

    @property
    def nodes(self) -> list[Server]: ...

    @property
    def addresses(self) -> list[str]: ...


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ([], r"at least one server, got \[\]"),
        ("127.0.0.1:11211", "a list of 'host:port' strings, got '127.0.0.1:11211'"),
        (["127.0.0.1:1", "127.0.0.1:1"], "'127.0.0.1:1' is given twice"),
        (["127.0.0.1:1", 11211], "must be a 'host:port' string, got 11211"),
        (["127.0.0.1:99999"], "'memcached://127.0.0.1:99999': its host and port cannot be read"),
        (["redis://127.0.0.1:1"], "the scheme must be memcached://"),
    ],
)
def test_bad_server_lists_fail_at_construction_naming_the_value(servers: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        MemcachedBackend(servers=servers)


def test_servers_exclude_the_other_ways_to_say_where() -> None:
    with pytest.raises(ConfigurationError, match="either servers="):
        MemcachedBackend("memcached://127.0.0.1:1", servers=["127.0.0.1:2"])
    with pytest.raises(ConfigurationError, match="server_failures must be a whole number"):
        MemcachedBackend(servers=["127.0.0.1:1", "127.0.0.1:2"], server_failures=0)


def test_one_server_in_a_list_is_one_server() -> None:
    backend = MemcachedBackend(servers=["memcached://10.0.0.1:11300"])
    assert (backend.host, backend.port, backend.servers) == ("10.0.0.1", 11300, ["10.0.0.1:11300"])


def limiter_key(identity: str) -> str:
    return f"api:{hash_tag(identity)}:fixed_window"


async def test_each_key_lives_on_the_server_ketama_names_and_is_exact_there(
    memcached_servers: Servers, raw_to: Callable[[str], RawMemcached], namespace: str
) -> None:
    addresses = memcached_servers.addresses
    backend = MemcachedBackend(servers=addresses, namespace=namespace, clock=ManualClock(1e9))
    ring = Ring([(a.rsplit(":")[0], int(a.rsplit(":")[1])) for a in addresses])
    rate, identities = Rate.parse("100/hour"), [f"client-{n}" for n in range(30)]
    async with backend:
        limiter = Limiter("api", rate=rate, backend=backend, on_error="raise")
        decisions = await asyncio.gather(
            *(limiter.decide(identity) for identity in identities for _ in range(150))
        )  # 4,500 at once, 150 per client
        admitted = Counter(
            identity for identity, d in zip(
                [i for i in identities for _ in range(150)], decisions, strict=True
            ) if d.allowed
        )  # fmt: skip
        assert admitted == dict.fromkeys(identities, 100)
        for strategy in (FixedWindow(), TokenBucket()):  # counters and compare-and-swap
            for identity in identities[:6]:
                key = f"{identity}:{strategy.name}"
                await backend.apply(key, strategy, rate, 1, {})
                owner = addresses[ring.owner(placement_key(namespace, key))]
                assert backend.server_for(key) == owner
                stored = await backend.storage_key(key, strategy, rate)
                holders = [a for a in addresses if raw_to(f"memcached://{a}").get(stored)]
                assert holders == [owner]
    assert len({backend.server_for(limiter_key(i)) for i in identities}) == 3


async def test_a_server_killed_mid_load_moves_only_its_keys(
    memcached_servers: Servers, namespace: str
) -> None:
    addresses = memcached_servers.addresses
    backend = MemcachedBackend(servers=addresses, namespace=namespace, clock=ManualClock(1e9))
    identities = [f"client-{n}" for n in range(30)]
    victim, victim_address = memcached_servers.nodes[0], addresses[0]
    async with backend:
        home = {i: backend.server_for(limiter_key(i)) for i in identities}
        on_victim = {i for i in identities if home[i] == victim_address}
        assert on_victim
        assert len(on_victim) < len(identities)
        limiter = Limiter("api", rate="100/hour", backend=backend)  # on_error "allow"

        async def burst(per_client: int, kill: bool = False) -> dict[str, Counter[str]]:
            callers = [i for i in identities for _ in range(per_client)]
            if kill:  # its commands stay in flight, unanswered, until it dies
                victim.pause()
            tasks = [asyncio.ensure_future(limiter.decide(i)) for i in callers]
            if kill:  # once every other server has answered
                await asyncio.wait(
                    [t for i, t in zip(callers, tasks, strict=True) if i not in on_victim]
                )
                victim.kill()
            results: list[Decision] = await asyncio.gather(*tasks)
            seen: dict[str, Counter[str]] = {i: Counter() for i in identities}
            for identity, d in zip(callers, results, strict=True):
                seen[identity]["admitted" if d.allowed and d.limited else
                               "on_error" if not d.limited else "refused"] += 1  # fmt: skip
            return seen

        first = await burst(150)
        assert all(seen == {"admitted": 100, "refused": 50} for seen in first.values())

        during = await burst(50, kill=True)
        for identity, seen in during.items():
            if identity in on_victim:  # killed with its hits in flight: on_error for each
                assert seen == {"on_error": 50}, identity
            else:  # untouched: their servers answer, and their windows are full
                assert seen == {"refused": 50}, identity

        # Out of the ring: only its keys move, each to a survivor.
        now = {i: backend.server_for(limiter_key(i)) for i in identities}
        moved = {i for i in identities if now[i] != home[i]}
        assert moved == on_victim
        assert victim_address not in now.values()
        share = len(moved) / len(identities)
        print(f"\n{len(moved)} of {len(identities)} clients moved ({share:.2f}) with 1 of 3 lost")

        after = await burst(150)
        for identity, seen in after.items():
            if identity in on_victim:  # limited afresh where they now live: exact again
                assert seen == {"admitted": 100, "refused": 50}, identity
            else:
                assert seen == {"refused": 150}, identity


def test_a_server_goes_out_after_failures_in_a_row_and_one_probe_brings_it_back() -> None:
    now = [0.0]
    breaker = ServerBreaker(3, 10.0, name="m", clock=lambda: now[0])
    for _ in range(2):
        assert breaker.allow_execution()
        breaker.record_failure()
    breaker.record_success()  # an answer in between: the count starts again
    for _ in range(3):
        assert breaker.allow_execution()
        breaker.record_failure()
    assert breaker.is_out
    assert not breaker.allow_execution()
    breaker.record_success()  # a call let through before it went out: not a probe
    assert breaker.is_out
    now[0] = 10.0
    assert breaker.allow_execution()  # the one probe...
    assert not breaker.allow_execution()  # ...at a time
    breaker.record_failure()  # failed: out for another 10 s
    assert not breaker.allow_execution()
    now[0] = 20.0
    assert breaker.allow_execution()
    breaker.record_abandoned()  # a probe given up counts as failed
    now[0] = 30.0
    assert breaker.allow_execution()
    breaker.record_success()
    assert not breaker.is_out
    assert breaker.allow_execution()

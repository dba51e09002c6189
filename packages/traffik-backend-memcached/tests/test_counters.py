"""Windows counted with ``incr``: one round trip per admitted check, exact, the same decisions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from traffik import Limiter, ManualClock, Rate
from traffik.backends.inmemory import InMemoryBackend
from traffik.backends.memcached import MemcachedBackend
from traffik.backends.memcached.keys import periods_key
from traffik.strategies import FixedWindow, TieredRate, TimeOfDay, TokenBucket
from traffik.strategies.base import Strategy

if TYPE_CHECKING:
    from conftest import BackendFactory, RawMemcached, Server

COUNTED: dict[str, Callable[[], Strategy[Any]]] = {
    "FixedWindow": FixedWindow,
    "TieredRate": TieredRate,
    "TimeOfDay": TimeOfDay,
}

# The commands memcached counts in its `stats`, summed: every request a client sends.
COMMANDS = (
    b"cmd_get", b"cmd_set", b"cmd_touch", b"incr_hits", b"incr_misses",
    b"decr_hits", b"decr_misses", b"delete_hits", b"delete_misses",
)  # fmt: skip


def commands_so_far(raw: RawMemcached) -> int:
    raw.sock.sendall(b"stats\r\n")
    stats: dict[bytes, bytes] = {}
    while (line := raw._line()) != b"END":
        _, name, value = line.split(b" ", 2)
        stats[name] = value
    return sum(int(stats[name]) for name in COMMANDS)


async def listed(raw: RawMemcached, namespace: str) -> None:
    """Wait for the namespace's list of periods, which a first check writes in the background."""
    for _ in range(5000):  # a few loop turns on an idle machine; a bound, not a timing
        if raw.get(periods_key(namespace)) is not None:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the period was never listed")


async def test_an_admitted_check_is_one_round_trip(
    server_factory: Callable[..., Server],
    raw_to: Callable[[str], RawMemcached],
    namespace: str,
    clock: ManualClock,
) -> None:
    server = server_factory("memcached")
    raw = raw_to(server.url)
    # The generation is re-read once a second (`generation_refresh`): not within this test.
    backend = MemcachedBackend(
        server.url, namespace=namespace, clock=clock, generation_refresh=3600
    )
    rate, window = Rate.parse("100/h"), FixedWindow()
    async with backend:
        assert (await backend.apply("warm", window, rate, 1, {})).allowed  # generation read
        await listed(raw, namespace)
        start = commands_so_far(raw)
        assert (await backend.apply("k", window, rate, 1, {})).allowed  # a new window: incr, add
        first = commands_so_far(raw) - start
        admitted = 50
        start = commands_so_far(raw)
        for _ in range(admitted):
            assert (await backend.apply("k", window, rate, 1, {})).allowed
        per_check = (commands_so_far(raw) - start) / admitted
        start = commands_so_far(raw)
        assert (await backend.apply("k", window, rate, 60, {})).allowed is False
        refused = commands_so_far(raw) - start
    print(f"\nround trips: first in a window {first}, admitted {per_check}, refused {refused}")
    assert first == 2
    assert per_check == 1.0
    assert refused == 2  # incr, then decr: the refusal consumes nothing


@pytest.mark.parametrize("name", sorted(COUNTED))
async def test_decisions_are_the_strategys_own(
    backends: BackendFactory, clock: ManualClock, name: str
) -> None:
    # The same program on memcached and in memory, on the same clock: the same decisions.
    strategy, rate = COUNTED[name](), Rate.parse("10/min")
    memcached = await backends()
    memory = InMemoryBackend(clock=clock)
    program: list[tuple[str, int, float]] = [
        ("apply", 4, 0), ("peek", 1, 1.5), ("apply", 7, 0.2), ("apply", 0, 0), ("apply", 6, 3),
        ("refund", 3, 0.001), ("apply", 6, 0), ("apply", 11, 0), ("peek", 0, 0),
        ("apply", 1, 61), ("refund", 5, 0), ("apply", 10, 1), ("apply", 1, 0.5),
    ]  # fmt: skip
    for operation, cost, later in program:
        clock.advance(later)
        if operation == "refund":
            await memcached.refund("k", strategy, rate, cost, {})
            await memory.refund("k", strategy, rate, cost, {})
            continue
        ours = await getattr(memcached, operation)("k", strategy, rate, cost, {})
        theirs = await getattr(memory, operation)("k", strategy, rate, cost, {})
        assert ours == theirs, (operation, cost)


async def test_a_refusal_consumes_nothing(
    backends: BackendFactory, raw: RawMemcached, clock: ManualClock
) -> None:
    backend, rate = await backends(), Rate.parse("10/min")
    assert (await backend.apply("k", FixedWindow(), rate, 9, {})).remaining == 1
    refused = await backend.apply("k", FixedWindow(), rate, 5, {})
    assert (refused.allowed, refused.remaining) == (False, 1)
    assert refused.retry_after == refused.reset_after > 0
    counter = await backend.storage_key("k", FixedWindow(), rate)
    assert int(raw.get(counter) or b"") == 9
    assert (await backend.apply("k", FixedWindow(), rate, 1, {})).remaining == 0


async def test_5000_simultaneous_hits_admit_exactly_the_limit(backends: BackendFactory) -> None:
    backend = await backends()
    limiter = Limiter("burst", rate="100/hour", backend=backend, on_error="raise")
    decisions = await asyncio.gather(*(limiter.decide("one-client") for _ in range(5000)))
    assert sum(d.allowed for d in decisions) == 100
    assert backend.cas_stats.rounds == 0  # counted with incr, not compare-and-swap
    assert (await limiter.decide("one-client")).remaining == 0


async def test_delete_reaches_the_counters_from_a_process_that_never_used_the_rate(
    backends: BackendFactory, raw: RawMemcached
) -> None:
    user, admin = await backends(), await backends()
    rate = Rate.parse("2/min")
    for _ in range(2):
        assert (await user.apply("k", FixedWindow(), rate, 1, {})).allowed
    await listed(raw, user.namespace)
    await admin.delete("k")  # knows the period from the namespace's list only
    assert (await user.apply("k", FixedWindow(), rate, 1, {})).remaining == 1


async def test_each_aligned_window_admits_its_limit_whatever_the_skew(
    backends: BackendFactory, clock: ManualClock
) -> None:
    # Two hosts 3 s apart straddle a window boundary. Each counts into the window its own
    # clock is in: the old window is full, the new one admits its 5, once.
    rate = Rate.parse("5/10s")
    boundary = clock() - clock() % 10 + 10
    slow_clock, fast_clock = ManualClock(boundary - 5), ManualClock(boundary - 2)
    slow = await backends(clock=slow_clock)
    fast = await backends(clock=fast_clock)
    for _ in range(5):
        assert (await slow.apply("skewed", FixedWindow(), rate, 1, {})).allowed
    slow_clock.advance(3.0)  # slow: 2 s before the boundary; fast: 1 s after it
    fast_clock.advance(3.0)
    admitted = [
        (await host.apply("skewed", FixedWindow(), rate, 1, {})).allowed
        for _ in range(10)
        for host in (fast, slow)
    ]
    assert sum(admitted) == 5
    slow_clock.advance(2.0)  # the slow host reaches the new window: it is full already
    assert not (await slow.apply("skewed", FixedWindow(), rate, 1, {})).allowed


async def test_other_strategies_keep_compare_and_swap(backends: BackendFactory) -> None:
    class MyWindow(FixedWindow):  # a subclass may decide otherwise: not counted with incr
        pass

    backend = await backends()
    for strategy in (MyWindow(), TokenBucket()):
        assert (
            await backend.apply(f"k:{strategy.name}", strategy, Rate.parse("3/min"), 1, {})
        ).allowed
    assert backend.cas_stats.writes == 2


async def test_simultaneous_checks_on_one_key_share_an_incr(
    server_factory: Callable[..., Server],
    raw_to: Callable[[str], RawMemcached],
    namespace: str,
    clock: ManualClock,
) -> None:
    # As compare-and-swap rounds are shared: checks arriving while a round is in flight
    # join the next one, one `incr` for them all, decided in turn as one limiter would.
    server = server_factory("memcached")
    raw = raw_to(server.url)
    backend = MemcachedBackend(server.url, namespace=namespace, clock=clock)
    rate = Rate.parse("300/h")
    async with backend:
        await backend.apply("warm", FixedWindow(), rate, 1, {})
        await listed(raw, namespace)
        start = commands_so_far(raw)
        costs = [1, 2, 3] * 200  # 1,200 units asked, 300 to give
        decisions = await asyncio.gather(
            *(backend.apply("hot", FixedWindow(), rate, cost, {}) for cost in costs)
        )
        commands = commands_so_far(raw) - start
        memory = InMemoryBackend(clock=clock)
        expected = [await memory.apply("hot", FixedWindow(), rate, cost, {}) for cost in costs]
    print(f"\n600 simultaneous checks on one key: {commands} memcached commands")
    assert decisions == expected  # in the order they were made, as one by one
    assert sum(cost for cost, d in zip(costs, decisions, strict=True) if d.allowed) == 300
    assert commands <= 12  # a few rounds of incr (+ decr for the refused), not 600

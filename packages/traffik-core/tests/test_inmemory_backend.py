from __future__ import annotations

import asyncio

import pytest

from traffik import ConfigurationError, FixedWindow, InMemoryBackend, ManualClock, Rate, TokenBucket
from traffik.backends.base import Hit, get_default_backend
from traffik.strategies import NO_PARAMS

RATE = Rate.parse("100/hour")


async def test_applies_and_counts() -> None:
    backend = InMemoryBackend(clock=ManualClock(0.0))
    strategy = FixedWindow()
    decisions = [await backend.apply("k", strategy, RATE, 1, NO_PARAMS) for _ in range(101)]
    assert [d.allowed for d in decisions].count(True) == 100
    assert decisions[99].remaining == 0
    assert not decisions[100].allowed


async def test_thousands_of_concurrent_hits_admit_exactly_the_limit() -> None:
    backend = InMemoryBackend(clock=ManualClock(10.0))
    strategy = TokenBucket()
    decisions = await asyncio.gather(
        *(backend.apply("k", strategy, RATE, 1, NO_PARAMS) for _ in range(5000))
    )
    assert sum(d.allowed for d in decisions) == 100


async def test_peek_stores_nothing() -> None:
    backend = InMemoryBackend(clock=ManualClock(0.0))
    for _ in range(3):
        decision = await backend.peek("k", FixedWindow(), RATE, 1, NO_PARAMS)
        assert decision.remaining == 99
    assert len(backend) == 0


async def test_entries_expire_with_their_state() -> None:
    clock = ManualClock(0.0)
    backend = InMemoryBackend(clock=clock)
    rate = Rate.parse("1/s")
    assert (await backend.apply("k", FixedWindow(), rate, 1, NO_PARAMS)).allowed
    assert not (await backend.apply("k", FixedWindow(), rate, 1, NO_PARAMS)).allowed
    clock.advance(1.0)
    assert (await backend.apply("k", FixedWindow(), rate, 1, NO_PARAMS)).allowed


async def test_memory_stays_bounded_with_many_distinct_clients() -> None:
    clock = ManualClock(0.0)
    backend = InMemoryBackend(max_keys=1000, clock=clock)
    rate = Rate.parse("5/s")
    for client in range(50_000):
        await backend.apply(f"client-{client}", FixedWindow(), rate, 1, NO_PARAMS)
        if client % 100 == 0:
            clock.advance(0.01)
        assert len(backend) <= 1000
    # Full for most of the run, so the least recently used were evicted ...
    assert backend.evictions > 40_000
    # ... and what is left is the most recent clients (older windows have expired).
    assert len(backend) >= 100
    assert (await backend.peek("client-49999", FixedWindow(), rate, 0, NO_PARAMS)).remaining == 4
    assert (await backend.peek("client-0", FixedWindow(), rate, 0, NO_PARAMS)).remaining == 5


async def test_expired_entries_drain_without_being_read() -> None:
    clock = ManualClock(0.0)
    backend = InMemoryBackend(max_keys=10_000, clock=clock)
    rate = Rate.parse("5/s")
    for client in range(1000):
        await backend.apply(f"old-{client}", FixedWindow(), rate, 1, NO_PARAMS)
    clock.advance(5.0)  # every old entry has expired
    for client in range(600):
        await backend.apply(f"new-{client}", FixedWindow(), rate, 1, NO_PARAMS)
    # Each insertion sweeps up to two expired entries from the old end.
    assert len(backend) == 600
    assert backend.evictions == 0


async def test_least_recently_used_is_evicted_first() -> None:
    backend = InMemoryBackend(max_keys=3, clock=ManualClock(0.0))
    rate = Rate.parse("10/min")
    for key in ("a", "b", "c"):
        await backend.apply(key, FixedWindow(), rate, 1, NO_PARAMS)
    await backend.apply("a", FixedWindow(), rate, 1, NO_PARAMS)  # a is now the most recent
    await backend.apply("d", FixedWindow(), rate, 1, NO_PARAMS)  # evicts b
    assert (await backend.peek("a", FixedWindow(), rate, 0, NO_PARAMS)).remaining == 8
    assert (await backend.peek("b", FixedWindow(), rate, 0, NO_PARAMS)).remaining == 10
    assert (await backend.peek("c", FixedWindow(), rate, 0, NO_PARAMS)).remaining == 9
    assert backend.evictions == 1


async def test_apply_many_is_all_or_nothing() -> None:
    backend = InMemoryBackend(clock=ManualClock(0.0))
    per_second = Hit("fast", FixedWindow(), Rate.parse("10/s"), 1, NO_PARAMS)
    per_day = Hit("slow", FixedWindow(), Rate.parse("3/d"), 1, NO_PARAMS)
    for _ in range(3):
        assert all(d.allowed for d in await backend.apply_many([per_second, per_day]))
    decisions = await backend.apply_many([per_second, per_day])
    assert [d.allowed for d in decisions] == [True, False]
    # The refused request consumed nothing from the per-second limit.
    assert (await backend.peek("fast", FixedWindow(), per_second.rate, 0, NO_PARAMS)).remaining == 7


async def test_apply_many_sees_the_same_key_twice() -> None:
    backend = InMemoryBackend(clock=ManualClock(0.0))
    hit = Hit("k", FixedWindow(), Rate.parse("3/s"), 2, NO_PARAMS)
    assert [d.allowed for d in await backend.apply_many([hit, hit])] == [True, False]
    assert (await backend.peek("k", FixedWindow(), hit.rate, 0, NO_PARAMS)).remaining == 3


async def test_delete_and_clear() -> None:
    backend = InMemoryBackend(clock=ManualClock(0.0))
    for key in ("a", "b"):
        await backend.apply(key, FixedWindow(), RATE, 1, NO_PARAMS)
    await backend.delete("a")
    assert len(backend) == 1
    await backend.clear()
    assert len(backend) == 0


async def test_context_manager_and_lifespan_set_and_restore_the_default() -> None:
    outer = InMemoryBackend("outer")
    inner = InMemoryBackend("inner")

    class App:
        class state:  # mimics Starlette's app.state
            pass

    app = App()
    assert get_default_backend() is None
    async with outer:
        assert get_default_backend() is outer
        async with inner.lifespan(app):
            assert get_default_backend() is inner
            assert app.state.traffik_backend is inner  # type: ignore[attr-defined]
        assert get_default_backend() is outer
        assert not hasattr(app.state, "traffik_backend")
    assert get_default_backend() is None


async def test_shutting_down_keeps_the_counters() -> None:
    backend = InMemoryBackend(clock=ManualClock(0.0))
    async with backend:
        await backend.apply("k", FixedWindow(), RATE, 1, NO_PARAMS)
    assert len(backend) == 1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"max_keys": 0}, "max_keys"),
        ({"max_keys": "10"}, "'10'"),
        ({"clock": 5}, "clock"),
        ({"namespace": ""}, "namespace"),
        ({"namespace": "a{b}"}, "a{b}"),
        ({"on_error": "ignore"}, "'ignore'"),
    ],
)
def test_bad_construction_names_the_value(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        InMemoryBackend(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_a_manual_clock_adds_up_exactly_and_reads_back_whole_milliseconds() -> None:
    from traffik.clock import milliseconds

    clock = ManualClock(1_700_000_000.0)
    for _ in range(10_000):
        clock.advance(0.001)
    assert milliseconds(clock) == 1_700_000_010_000
    for ms in range(1_700_000_000_000, 1_700_000_000_000 + 100_000, 7):
        clock.set(ms / 1000)
        assert milliseconds(clock) == ms

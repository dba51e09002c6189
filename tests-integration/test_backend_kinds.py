"""The backend protocol behaves the same on every backend kind (see conftest.BACKEND_KINDS)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from traffik import FixedWindow, Limiter, ManualClock, Rate, ThrottleBackend, TokenBucket, hit_all
from traffik.backends.base import Hit
from traffik.strategies import NO_PARAMS

BackendMaker = Callable[[ManualClock], Awaitable[ThrottleBackend]]  # the make_backend fixture

NOW = 1_700_001_800.0  # half-way through an hour
RATE = Rate.parse("10/min")


async def test_apply_peek_refund_delete_clear(make_backend: BackendMaker) -> None:
    clock = ManualClock(NOW)
    backend = await make_backend(clock)
    for strategy in (FixedWindow(), TokenBucket()):
        key = f"k:{strategy.name}"
        assert (await backend.apply(key, strategy, RATE, 4, NO_PARAMS)).remaining == 6
        assert (await backend.peek(key, strategy, RATE, 1, NO_PARAMS)).remaining == 5
        await backend.refund(key, strategy, RATE, 2, NO_PARAMS)
        assert (await backend.peek(key, strategy, RATE, 1, NO_PARAMS)).remaining == 7
        refused = await backend.apply(key, strategy, RATE, 9, NO_PARAMS)
        assert not refused.allowed
        assert refused.retry_after > 0
        await backend.delete(key)
        assert (await backend.peek(key, strategy, RATE, 1, NO_PARAMS)).remaining == 9
    await backend.apply("other", FixedWindow(), RATE, 10, NO_PARAMS)
    await backend.clear()
    assert (await backend.apply("other", FixedWindow(), RATE, 10, NO_PARAMS)).allowed
    clock.advance(60)
    assert (await backend.apply("other", FixedWindow(), RATE, 10, NO_PARAMS)).allowed


async def test_apply_many_is_all_or_nothing(make_backend: BackendMaker) -> None:
    backend = await make_backend(ManualClock(NOW))
    tight = Hit("tight", FixedWindow(), Rate.parse("1/min"), 1, NO_PARAMS)
    loose = Hit("loose", TokenBucket(), RATE, 1, NO_PARAMS)
    assert [d.allowed for d in await backend.apply_many([loose, tight])] == [True, True]
    assert [d.allowed for d in await backend.apply_many([loose, tight])] == [True, False]
    assert (await backend.peek(*loose)).remaining == 8


async def test_simultaneous_hits_admit_exactly_the_limit(make_backend: BackendMaker) -> None:
    backend = await make_backend(ManualClock(NOW))
    limiters = [
        Limiter("fw", rate="100/hour", backend=backend, on_error="raise"),
        Limiter("tb", rate="100/hour", backend=backend, strategy=TokenBucket(), on_error="raise"),
    ]
    for limiter in limiters:
        decisions = await asyncio.gather(*(limiter.hit("alice") for _ in range(1_000)))
        assert sum(d.allowed for d in decisions) == 100
    pairs = await asyncio.gather(
        *(hit_all([(limiters[0], "bob"), (limiters[1], "bob")]) for _ in range(300))
    )
    assert sum(all(d.allowed for d in pair) for pair in pairs) == 100

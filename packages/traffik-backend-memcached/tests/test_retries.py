"""When every compare-and-swap attempt loses, the error is clear and goes through on_error."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from traffik import BackendError, Decision, Limiter, Rate
from traffik.backends.memcached import ContentionError
from traffik.error_policy import ErrorContext
from traffik.keys import hash_tag
from traffik.strategies import FixedWindow, TokenBucket
from traffik.strategies.base import Params, Step

if TYPE_CHECKING:
    from conftest import BackendFactory, RawMemcached

RATE = Rate.parse("3/min")


@dataclass
class ContestedFixedWindow:
    """A fixed window whose key another writer changes between the backend's read and its
    write, the first ``times`` times it decides: a real conflict on the real server."""

    raw: RawMemcached
    key: bytes
    times: int
    inner: FixedWindow = field(default_factory=FixedWindow)
    name: ClassVar[str] = "fixed_window"

    def decide(
        self, state: tuple[int, int] | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[tuple[int, int]]:
        if self.times:
            self.times -= 1
            self.raw.set(self.key, b"another writer was here")
        return self.inner.decide(state, now, rate, cost, params)

    def refund(
        self, state: tuple[int, int] | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[tuple[int, int] | None, int]:
        return self.inner.refund(state, now, rate, cost, params)

    def encode(self, state: tuple[int, int]) -> bytes:
        return self.inner.encode(state)

    def decode(self, data: bytes) -> tuple[int, int]:
        return self.inner.decode(data)  # type: ignore[return-value]  # a 2-tuple


async def test_retries_running_out_raise_a_clear_backend_error(
    backends: BackendFactory, raw: RawMemcached
) -> None:
    backend = await backends(max_retries=0)
    key = await backend.storage_key("contested")
    with pytest.raises(ContentionError, match="max_retries=0 ran out") as info:
        await backend.apply("contested", ContestedFixedWindow(raw, key, times=1), RATE, 1, {})
    assert isinstance(info.value, BackendError)
    assert info.value.key == key
    assert info.value.attempts == 1
    assert key.decode() in str(info.value)
    assert backend.cas_stats.exhausted == 1


async def test_a_conflict_is_retried_on_the_fresh_value(
    backends: BackendFactory, raw: RawMemcached
) -> None:
    backend = await backends(max_retries=2)
    key = await backend.storage_key("contested")
    strategy = ContestedFixedWindow(raw, key, times=2)
    decision = await backend.apply("contested", strategy, RATE, 1, {})
    assert decision.allowed
    assert decision.remaining == 2  # the other writer's value is not ours: read as absent
    assert backend.cas_stats.conflicts == 2
    assert backend.cas_stats.max_retries == 2


@pytest.mark.parametrize("policy", ["raise", "throttle", "allow", "handler"])
async def test_the_throttle_routes_it_through_on_error(
    backends: BackendFactory, raw: RawMemcached, policy: str
) -> None:
    backend = await backends(max_retries=0)
    key = await backend.storage_key(f"contested:{hash_tag('alice')}:fixed_window")
    strategy = ContestedFixedWindow(raw, key, times=1)
    seen: list[ErrorContext] = []

    async def handler(context: ErrorContext) -> float:
        seen.append(context)
        return 7.0

    limiter = Limiter(
        "contested",
        rate=RATE,
        backend=backend,
        strategy=strategy,
        on_error=handler if policy == "handler" else policy,  # type: ignore[arg-type]
    )
    if policy == "raise":
        with pytest.raises(ContentionError):
            await limiter.decide("alice")
        return
    decision = await limiter.decide("alice")
    if policy == "allow":
        assert decision.allowed
        assert not decision.limited
    elif policy == "throttle":
        assert not decision.allowed
        assert decision.retry_after == 1.0
    else:
        assert decision.retry_after == 7.0
        assert isinstance(seen[0].exception, ContentionError)
        assert seen[0].backend is backend


async def test_concurrent_writers_without_retries_never_overrun(backends: BackendFactory) -> None:
    # Ten app instances hit one key at once and may not retry: some lose, none over-admits.
    # (A token bucket: FixedWindow counts with `incr`, which has no conflicts to lose.)
    instances = [await backends(max_retries=0) for _ in range(10)]
    for backend in instances:  # connected and ready, so that the hits really coincide
        await backend.storage_key("contested")
        assert await backend.ready()
    rate = Rate.parse("5/min")
    results: list[Any] = await asyncio.gather(
        *(b.apply("contested", TokenBucket(), rate, 1, {}) for b in instances),
        return_exceptions=True,
    )
    decisions = [r for r in results if isinstance(r, Decision)]
    failures = [r for r in results if not isinstance(r, Decision)]
    assert all(isinstance(f, ContentionError) for f in failures), failures
    assert failures, "ten simultaneous writers on one key, and not one conflict?"
    allowed = sum(d.allowed for d in decisions)
    assert allowed <= 5
    stored = await instances[0].peek("contested", TokenBucket(), rate, 1, {})
    assert stored.remaining == 5 - allowed - 1  # exactly the admitted hits were stored

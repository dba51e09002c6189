"""The hooks of `Throttle` that callers applying hits themselves rely on."""

from __future__ import annotations

from traffik import BackendError, Decision, InMemoryBackend, Limiter, ManualClock
from traffik.backends.base import Hit


async def test_prepare_takes_a_key_suffix_for_one_call() -> None:
    limiter = Limiter("emails", rate="2/min", backend=InMemoryBackend(clock=ManualClock()))
    prepared = await limiter.prepare("user:1", None, None, key_suffix=":digest")
    assert not isinstance(prepared, Decision)
    assert prepared[1].key == "emails:{user:1}:digest:fixed_window"
    prepared = await limiter.prepare("user:1", None, None)
    assert not isinstance(prepared, Decision)
    assert prepared[1].key == "emails:{user:1}:fixed_window"


async def test_failure_decision_follows_on_error() -> None:
    backend = InMemoryBackend(clock=ManualClock())
    limiter = Limiter("emails", rate="2/min", backend=backend, on_error="throttle")
    prepared = await limiter.prepare("user:1", None, None)
    assert not isinstance(prepared, Decision)
    hit: Hit = prepared[1]
    decision = await limiter.failure_decision(BackendError("down"), "user:1", hit, backend)
    assert not decision.allowed
    assert decision.retry_after == 1.0

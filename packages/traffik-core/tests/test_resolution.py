"""`traffik.resolution` and `traffik.error_policy.fail`: what the pipeline builds on."""

from __future__ import annotations

from traffik import BackendError, InMemoryBackend, Limiter, ManualClock
from traffik.error_policy import fail
from traffik.resolution import resolve


async def test_resolve_takes_a_key_suffix_for_one_call() -> None:
    limiter = Limiter("emails", rate="2/min", backend=InMemoryBackend(clock=ManualClock()))
    outcome = await resolve(limiter, "user:1", key_suffix=":digest")
    assert outcome.hit is not None
    assert outcome.hit.key == "emails:{user:1}:digest:fixed_window"
    outcome = await resolve(limiter, "user:1")
    assert outcome.hit is not None
    assert outcome.hit.key == "emails:{user:1}:fixed_window"


async def test_fail_follows_on_error() -> None:
    backend = InMemoryBackend(clock=ManualClock())
    limiter = Limiter("emails", rate="2/min", backend=backend, on_error="throttle")
    outcome = await resolve(limiter, "user:1")
    assert outcome.hit is not None
    decision = await fail(limiter, "user:1", BackendError("down"), outcome.hit, backend)
    assert not decision.allowed
    assert decision.retry_after == 1.0

"""The verbs every throttle shares, with one meaning on each class: `decide` consumes and
returns the `Decision` (refusing nothing); `hit` is traffik 1.x's "check and apply":
it refuses (here: `RateLimitExceeded`), waits out a queueing delay, and returns the
connection. The web throttles' `hit` calls their refusal handler instead (their tests)."""

from __future__ import annotations

import pytest

from traffik import (
    InMemoryBackend,
    LeakyBucketWithQueue,
    Limiter,
    ManualClock,
    RateLimitExceeded,
    Throttle,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000.0)  # 40 s into a minute


class Job:
    """A connection of the caller's own kind."""

    def __init__(self, owner: str) -> None:
        self.owner = owner


async def owner_of(job: Job) -> str:
    return job.owner


async def test_decide_returns_the_decision_and_refuses_nothing(clock: ManualClock) -> None:
    throttle = Throttle("jobs", "2/min", identifier=owner_of, backend=InMemoryBackend(clock=clock))
    job = Job("alice")
    decisions = [await throttle.decide(job) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[2].retry_after == 20.0


async def test_hit_applies_raises_over_the_limit_and_returns_the_connection(
    clock: ManualClock,
) -> None:
    throttle = Throttle("jobs", "2/min", identifier=owner_of, backend=InMemoryBackend(clock=clock))
    job = Job("alice")
    assert await throttle.hit(job) is job
    assert await throttle.hit(job, cost=1) is job
    with pytest.raises(RateLimitExceeded) as refused:
        await throttle.hit(job)
    assert refused.value.retry_after == 20.0
    assert "'jobs'" in str(refused.value)
    bob = Job("bob")
    assert await throttle.hit(bob) is bob  # another client, another budget


async def test_limiter_verbs(clock: ManualClock) -> None:
    limiter = Limiter("emails", rate="2/min", backend=InMemoryBackend(clock=clock))
    assert await limiter.hit("user:1") == "user:1"
    assert (await limiter.acquire("user:1")).remaining == 0
    with pytest.raises(RateLimitExceeded):
        await limiter.hit("user:1")
    with pytest.raises(RateLimitExceeded):
        await limiter.acquire("user:1")
    refused = await limiter.decide("user:1")
    assert (refused.allowed, refused.retry_after) == (False, 20.0)


async def test_a_shadow_throttle_hit_never_raises(clock: ManualClock) -> None:
    limiter = Limiter("trial", rate="1/min", backend=InMemoryBackend(clock=clock), shadow=True)
    assert [await limiter.hit("k") for _ in range(3)] == ["k"] * 3
    assert not (await limiter.decide("k")).allowed  # what the limit would have said


async def test_hit_waits_out_a_queued_slot(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def record(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr("traffik.throttle.asyncio.sleep", record)
    limiter = Limiter(
        "jobs", rate="10/s", strategy=LeakyBucketWithQueue(), backend=InMemoryBackend(clock=clock)
    )
    assert [await limiter.hit("q") for _ in range(3)] == ["q"] * 3
    assert slept == [0.1, 0.2]

from __future__ import annotations

import math

import pytest

from traffik import ConfigurationError, Decision, LeakyBucket, LeakyBucketWithQueue, Rate
from traffik.strategies import NO_PARAMS

RATE = Rate.parse("10/s")  # one unit leaks every 100 ms


def test_meter_admits_the_limit_at_once_then_the_rate() -> None:
    state = None
    for _ in range(10):
        state, decision, _ = LeakyBucket().decide(state, 0, RATE, 1, NO_PARAMS)
        assert decision.allowed
        assert decision.delay == 0
    _, refused, ttl = LeakyBucket().decide(state, 0, RATE, 1, NO_PARAMS)
    assert refused == Decision(False, 10, 0, 1.0, 0.1)
    assert ttl == 1_000
    _, decision, _ = LeakyBucket().decide(state, 100, RATE, 1, NO_PARAMS)
    assert decision.allowed
    assert math.isinf(LeakyBucket().decide(None, 0, RATE, 11, NO_PARAMS)[1].retry_after)


def test_queue_delays_each_request_to_its_slot() -> None:
    strategy = LeakyBucketWithQueue()
    rate = Rate.parse("3/s")  # a slot every 333.3 ms
    state = None
    delays = []
    for _ in range(3):
        state, decision, _ttl = strategy.decide(state, 0, rate, 1, NO_PARAMS)
        delays.append(decision.delay)
        assert decision.retry_after == 0
    assert delays == [0.0, 0.334, 0.667]  # rounded up to the millisecond
    _, full, _ = strategy.decide(state, 0, rate, 1, NO_PARAMS)
    assert (full.allowed, full.retry_after) == (False, 0.334)
    # Half a second later 1.5 units have drained: the next waits for the 1.5 left.
    _, decision, _ = strategy.decide(state, 500, rate, 1, NO_PARAMS)
    assert (decision.allowed, decision.delay) == (True, 0.5)


def test_queue_size_bounds_the_wait() -> None:
    strategy = LeakyBucketWithQueue(queue_size=2)
    state, first, _ = strategy.decide(None, 0, RATE, 1, NO_PARAMS)
    state, second, _ = strategy.decide(state, 0, RATE, 1, NO_PARAMS)
    _, third, _ = strategy.decide(state, 0, RATE, 1, NO_PARAMS)
    assert [first.delay, second.delay] == [0.0, 0.1]
    assert (third.allowed, third.limit) == (False, 2)
    assert math.isinf(strategy.decide(None, 0, RATE, 3, NO_PARAMS)[1].retry_after)


@pytest.mark.parametrize("size", [0, -1, 2.0, True])
def test_bad_queue_size_is_refused(size: object) -> None:
    with pytest.raises(ConfigurationError, match="queue_size"):
        LeakyBucketWithQueue(queue_size=size)  # type: ignore[arg-type]


def test_refund_drains_the_bucket() -> None:
    state, _, _ = LeakyBucket().decide(None, 0, RATE, 4, NO_PARAMS)
    refunded, ttl = LeakyBucket().refund(state, 100, RATE, 2, NO_PARAMS)
    # 4 - 1 leaked - 2 refunded = 1 unit: "10/s" is 1 unit per 100 ms in lowest terms,
    # so a unit is stored as 100.
    assert refunded == (100, 100)
    assert ttl == 100


def test_a_sliver_of_queued_work_still_delays_to_the_millisecond() -> None:
    strategy = LeakyBucketWithQueue()
    rate = Rate.parse("3/s")  # 1000 units per request, 3 units drain per ms
    state, _, _ = strategy.decide(None, 0, rate, 1, NO_PARAMS)
    _, decision, _ = strategy.decide(state, 333, rate, 1, NO_PARAMS)  # 1 unit left
    assert decision.delay == 0.001
    _, decision, _ = strategy.decide(state, 334, rate, 1, NO_PARAMS)
    assert decision.delay == 0.0

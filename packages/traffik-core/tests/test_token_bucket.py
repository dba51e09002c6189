from __future__ import annotations

import math

import pytest

from traffik import ConfigurationError, Rate, TokenBucket, TokenBucketWithDebt
from traffik.strategies import NO_PARAMS


def test_starts_full_then_refills_at_the_rate() -> None:
    strategy = TokenBucket()
    rate = Rate.parse("10/s")  # one token per 100 ms
    state = None
    for _ in range(10):
        state, decision, _ = strategy.decide(state, 0, rate, 1, NO_PARAMS)
        assert decision.allowed
    state, decision, _ = strategy.decide(state, 0, rate, 1, NO_PARAMS)
    assert not decision.allowed
    assert decision.retry_after == 0.1
    state, decision, _ = strategy.decide(state, 99, rate, 1, NO_PARAMS)
    assert not decision.allowed
    assert decision.retry_after == 0.001
    state, decision, _ = strategy.decide(state, 100, rate, 1, NO_PARAMS)
    assert decision.allowed


def test_refills_to_exactly_its_capacity() -> None:
    strategy = TokenBucket(burst_size=5)
    rate = Rate.parse("10/s")
    state, decision, ttl = strategy.decide(None, 0, rate, 5, NO_PARAMS)
    assert decision.remaining == 0
    assert ttl == 500
    # Long after: never more than the capacity.
    _, decision, _ = strategy.decide(state, 3_600_000, rate, 1, NO_PARAMS)
    assert decision.limit == 5
    assert decision.remaining == 4


def test_ten_per_second_with_burst_one() -> None:
    strategy = TokenBucket(burst_size=1)
    rate = Rate.parse("10/s")
    state = None
    admitted = []
    for now in range(0, 1000, 25):  # a hit every 25 ms for a second
        state, decision, ttl = strategy.decide(state, now, rate, 1, NO_PARAMS)
        assert ttl >= 1
        admitted.append(decision.allowed)
    assert sum(admitted) == 10
    assert admitted[:5] == [True, False, False, False, True]


def test_cost_above_capacity_waits_forever() -> None:
    _, decision, _ = TokenBucket(burst_size=3).decide(None, 0, Rate.parse("10/s"), 4, NO_PARAMS)
    assert not decision.allowed
    assert math.isinf(decision.retry_after)


def test_clock_going_backwards_does_not_refill() -> None:
    strategy = TokenBucket()
    rate = Rate.parse("1/s")
    state, _, _ = strategy.decide(None, 10_000, rate, 1, NO_PARAMS)
    state, decision, _ = strategy.decide(state, 5_000, rate, 1, NO_PARAMS)
    assert not decision.allowed
    _, decision, _ = strategy.decide(state, 11_000, rate, 1, NO_PARAMS)
    assert decision.allowed


@pytest.mark.parametrize("burst", [0, -1, 1.5, True, "3"])
def test_bad_burst_size_is_refused_naming_it(burst: object) -> None:
    with pytest.raises(ValueError, match=repr(burst).replace("(", r"\(")):
        TokenBucket(burst_size=burst)  # type: ignore[arg-type]


def test_debt_lets_a_bucket_overspend_then_repay() -> None:
    strategy = TokenBucketWithDebt(burst_size=5, max_debt=5)
    rate = Rate.parse("10/s")
    state = None
    for _ in range(10):
        state, decision, _ = strategy.decide(state, 0, rate, 1, NO_PARAMS)
        assert decision.allowed
    assert (decision.limit, decision.remaining) == (10, 0)
    _, refused, ttl = strategy.decide(state, 0, rate, 1, NO_PARAMS)
    assert (refused.allowed, refused.retry_after, refused.reset_after) == (False, 0.1, 1.0)
    assert ttl == 1_000  # from -5 tokens back to 5
    assert strategy.decide(state, 100, rate, 1, NO_PARAMS)[1].allowed
    assert math.isinf(strategy.decide(None, 0, rate, 11, NO_PARAMS)[1].retry_after)
    # Without debt it is a plain token bucket.
    plain = TokenBucketWithDebt(burst_size=3)
    assert [plain.decide(None, 0, rate, c, NO_PARAMS)[1].allowed for c in (3, 4)] == [True, False]


@pytest.mark.parametrize("debt", [-1, 1.5, None])
def test_bad_debt_is_refused(debt: object) -> None:
    with pytest.raises(ConfigurationError, match="max_debt"):
        TokenBucketWithDebt(max_debt=debt)  # type: ignore[arg-type]


def test_a_refund_never_overfills_the_bucket() -> None:
    strategy = TokenBucket(burst_size=4)
    rate = Rate.parse("1/s")
    state, _, _ = strategy.decide(None, 0, rate, 1, NO_PARAMS)
    refunded, ttl = strategy.refund(state, 0, rate, 3, NO_PARAMS)
    assert refunded == (4_000, 0)
    assert ttl == 1


def test_a_state_written_by_a_clock_ahead_is_kept_until_full_on_its_own_clock() -> None:
    # A bucket last refilled at 10 s, seen by a clock at 5 s: it stays where it is until
    # 10 s, then refills. Its ttl must count from 10 s, or the state (one token short of
    # full) would be forgotten — read as a full bucket — 5 s early.
    strategy = TokenBucket()
    rate = Rate.parse("1/s")
    state, _, _ = strategy.decide(None, 10_000, rate, 1, NO_PARAMS)
    _, _, ttl = strategy.decide(state, 5_000, rate, 0, NO_PARAMS)
    assert ttl == 6_000  # 5 s of lag + 1 s to refill the token taken
    assert strategy.refund(state, 5_000, rate, 0, NO_PARAMS)[1] == 6_000


def test_debt_admits_a_double_burst_then_one_per_token_as_it_drips_in() -> None:
    # The module docstring's example, step by step.
    from traffik.strategies import TokenBucketWithDebt

    strategy = TokenBucketWithDebt(burst_size=5, max_debt=5)
    rate = Rate.parse("10/s")
    state = None
    burst = []
    for _ in range(11):
        state, decision, _ = strategy.decide(state, 0, rate, 1, NO_PARAMS)
        burst.append(decision.allowed)
    assert burst == [True] * 10 + [False]
    for now in (100, 200, 300):  # one token every 100 ms, spent at once, still in debt
        state, decision, _ = strategy.decide(state, now, rate, 1, NO_PARAMS)
        assert decision.allowed
        state, decision, _ = strategy.decide(state, now, rate, 1, NO_PARAMS)
        assert not decision.allowed

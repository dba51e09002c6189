"""What every strategy promises: the contract of `traffik.strategies.base`, property-tested."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import traffik
import traffik.strategies
from traffik import ConfigurationError, Rate
from traffik.strategies import (
    GCRA,
    NO_PARAMS,
    AdaptiveThrottle,
    CostBasedTokenBucket,
    FixedWindow,
    LeakyBucket,
    LeakyBucketWithQueue,
    PriorityQueue,
    QuotaWithRollover,
    SlidingWindowCounter,
    SlidingWindowLog,
    Strategy,
    TieredRate,
    TimeOfDay,
    TokenBucket,
    TokenBucketWithDebt,
)
from traffik.strategies.base import check_rate

STRATEGY_CLASSES: list[type[Any]] = [
    FixedWindow,
    SlidingWindowLog,
    SlidingWindowCounter,
    TokenBucket,
    TokenBucketWithDebt,
    LeakyBucket,
    LeakyBucketWithQueue,
    GCRA,
    TieredRate,
    AdaptiveThrottle,
    PriorityQueue,
    QuotaWithRollover,
    TimeOfDay,
    CostBasedTokenBucket,
]
NAMES = {
    FixedWindow: "fixed_window",
    SlidingWindowLog: "sliding_window_log",
    SlidingWindowCounter: "sliding_window_counter",
    TokenBucket: "token_bucket",
    TokenBucketWithDebt: "token_bucket_with_debt",
    LeakyBucket: "leaky_bucket",
    LeakyBucketWithQueue: "leaky_bucket_with_queue",
    GCRA: "gcra",
    TieredRate: "tiered_rate",
    AdaptiveThrottle: "adaptive_throttle",
    PriorityQueue: "priority_queue",
    QuotaWithRollover: "quota_with_rollover",
    TimeOfDay: "time_of_day",
    CostBasedTokenBucket: "cost_based_token_bucket",
}
# Configurations beyond the defaults, so that debt, tolerance and small queues are covered.
STRATEGIES: list[Strategy[Any]] = [
    *(cls() for cls in STRATEGY_CLASSES),
    TokenBucket(burst_size=1),
    TokenBucketWithDebt(burst_size=2, max_debt=3),
    LeakyBucketWithQueue(queue_size=2),
    GCRA(burst_tolerance_ms=250),
    CostBasedTokenBucket(burst_size=3, cost_window=2),
]
IDS = [repr(strategy) for strategy in STRATEGIES]
START = 1_700_000_000_000

by_strategy = pytest.mark.parametrize("strategy", STRATEGIES, ids=IDS)

# A program: (ms to wait, cost, params) per request.
PARAMS = st.sampled_from(
    [NO_PARAMS, {"tier": "premium"}, {"tier": "nope"}, {"priority": 1}, {"priority": "critical"}]
)
PROGRAMS = st.lists(
    st.tuples(st.integers(0, 400), st.integers(0, 6), PARAMS), min_size=1, max_size=30
)
RATES = st.sampled_from(["1/ms", "3/10ms", "1000/s", "10/s", "5/s", "2/3s", "7/min", "100/h"])


def run(strategy: Strategy[Any], rate: Rate, program: list[tuple[int, int, Any]]) -> list[Any]:
    """Apply a program; return the states after each step (checking the ttl on the way)."""
    state, now, states = None, START, []
    for wait, cost, params in program:
        now += wait
        new_state, decision, ttl = strategy.decide(state, now, rate, cost, params)
        assert isinstance(ttl, int)
        assert ttl >= 1
        if not decision.allowed or cost == 0:
            assert new_state is state  # refused and free requests store nothing
        state = new_state
        states.append((now, state))
    return states


def test_every_strategy_is_exported_by_name() -> None:
    for cls in STRATEGY_CLASSES:
        assert getattr(traffik, cls.__name__) is cls
        assert getattr(traffik.strategies, cls.__name__) is cls
        assert cls().name == NAMES[cls]
    assert traffik.Priority is traffik.strategies.Priority
    assert len(set(NAMES.values())) == len(NAMES)


@by_strategy
def test_cost_zero_is_a_free_pass(strategy: Strategy[Any]) -> None:
    rate = Rate.parse("3/s")
    assert strategy.decide(None, START, rate, 0, NO_PARAMS)[:2][0] is None
    state, _, _ = strategy.decide(None, START, rate, 3, NO_PARAMS)
    for cost in (0, 0):
        new_state, decision, _ = strategy.decide(state, START + 1, rate, cost, NO_PARAMS)
        assert decision.allowed
        assert decision.retry_after == 0
        assert new_state is state


@by_strategy
def test_a_cost_beyond_the_capacity_waits_for_ever(strategy: Strategy[Any]) -> None:
    rate = Rate.parse("3/s")
    new_state, decision, ttl = strategy.decide(None, START, rate, 10**6, NO_PARAMS)
    assert not decision.allowed
    assert math.isinf(decision.retry_after)
    assert new_state is None
    assert ttl >= 1


@by_strategy
@settings(max_examples=40, deadline=None)
@given(program=PROGRAMS, rate_text=RATES)
def test_state_survives_encoding_exactly(
    strategy: Strategy[Any], program: list[tuple[int, int, Any]], rate_text: str
) -> None:
    rate = Rate.parse(rate_text)
    for now, state in run(strategy, rate, program):
        if state is None:
            continue
        data = strategy.encode(state)
        assert isinstance(data, bytes)
        assert data.isascii()
        decoded = strategy.decode(data)
        assert decoded == state
        assert strategy.encode(decoded) == data
        # The decoded state decides exactly as the original does.
        for cost in (1, 2):
            original = strategy.decide(state, now + 7, rate, cost, NO_PARAMS)[1]
            assert strategy.decide(decoded, now + 7, rate, cost, NO_PARAMS)[1] == original


@by_strategy
@settings(max_examples=40, deadline=None)
@given(program=PROGRAMS, rate_text=RATES)
def test_peeking_changes_nothing(
    strategy: Strategy[Any], program: list[tuple[int, int, Any]], rate_text: str
) -> None:
    """Deciding without storing (a peek, a refusal) leaves the state as it was."""
    rate = Rate.parse(rate_text)
    for now, state in run(strategy, rate, program):
        if state is None:
            continue
        before = strategy.encode(state)
        first = strategy.decide(state, now + 1, rate, 1, NO_PARAMS)[1]
        strategy.decide(state, now + 1, rate, 2, NO_PARAMS)
        assert strategy.encode(state) == before
        assert strategy.decide(state, now + 1, rate, 1, NO_PARAMS)[1] == first


@by_strategy
@settings(max_examples=40, deadline=None)
@given(program=PROGRAMS, rate_text=RATES, later=st.integers(0, 5_000))
def test_a_state_past_its_ttl_is_the_same_as_none(
    strategy: Strategy[Any], program: list[tuple[int, int, Any]], rate_text: str, later: int
) -> None:
    """Stores may keep a state longer than asked (memcached rounds up to seconds):
    once its ttl has passed, a state must decide exactly as no state does."""
    rate = Rate.parse(rate_text)
    state, now = None, START
    for wait, cost, params in program:
        now += wait
        new_state, _, ttl = strategy.decide(state, now, rate, cost, params)
        if new_state is state:
            continue
        state = new_state
        expired = now + ttl + later
        for probe_cost in (1, 3):
            from_state = strategy.decide(state, expired, rate, probe_cost, params)[1]
            assert from_state == strategy.decide(None, expired, rate, probe_cost, params)[1]


@by_strategy
@pytest.mark.parametrize(
    "garbage", [b"", b"abc", b"1,2,3,4,5,6,7", b"1,,2", b"-", b"1 2", b"1_0,2", b"1.5,2"]
)
def test_decoding_garbage_is_a_value_error(strategy: Strategy[Any], garbage: bytes) -> None:
    if isinstance(strategy, SlidingWindowLog) and garbage == b"1,2,3,4,5,6,7":
        garbage = b"1,2,-3"  # seven entries are a fine log; a negative delta is not
    with pytest.raises(ValueError):
        strategy.decode(garbage)


@by_strategy
def test_a_refund_gives_the_cost_back(strategy: Strategy[Any]) -> None:
    rate = Rate.parse("5/s")
    fresh = strategy.decide(None, START, rate, 1, NO_PARAMS)[1]
    state, _, _ = strategy.decide(None, START, rate, 2, NO_PARAMS)
    refunded, ttl = strategy.refund(state, START, rate, 2, NO_PARAMS)
    assert ttl >= 1
    again = strategy.decide(refunded, START, rate, 1, NO_PARAMS)[1]
    assert (again.allowed, again.remaining) == (fresh.allowed, fresh.remaining)
    assert strategy.refund(None, START, rate, 1, NO_PARAMS) == (None, 1)


@by_strategy
def test_a_lagging_clock_never_reopens_spent_budget(strategy: Strategy[Any]) -> None:
    """A client whose clock runs behind the state's writer gets no extra budget."""
    rate = Rate.parse("2/s")
    state, decision = None, None
    for _ in range(20):  # spend everything there is at 5 s
        new_state, decision, _ = strategy.decide(state, START + 5_000, rate, 1, NO_PARAMS)
        if not decision.allowed:
            break
        state = new_state
    assert decision is not None
    assert not decision.allowed
    for lag in (1, 999, 1_000, 4_000):
        _, decision, ttl = strategy.decide(state, START + 5_000 - lag, rate, 1, NO_PARAMS)
        assert not decision.allowed, lag
        assert ttl >= 1


@by_strategy
def test_rates_too_large_for_exact_arithmetic_are_refused(strategy: Strategy[Any]) -> None:
    huge = Rate(limit=2**61 - 1, days=1)  # a prime: no smaller terms to take it in
    with pytest.raises(ConfigurationError, match="2\\*\\*53") as refused:
        strategy.decide(None, START, huge, 1, NO_PARAMS)
    assert type(strategy).__name__ in str(refused.value)
    assert str(huge) in str(refused.value)
    with pytest.raises(ConfigurationError, match=str(huge)):
        check_rate(strategy, huge)
    # Large practical quotas are fine everywhere: a million a day, ten million a month.
    for rate in (Rate.parse("1000000/d"), Rate.parse("10000000/30d")):
        check_rate(strategy, rate)
        assert strategy.decide(None, START, rate, 1, NO_PARAMS)[1].allowed


@by_strategy
def test_a_period_too_long_for_exact_times_is_refused(strategy: Strategy[Any]) -> None:
    endless = Rate.parse("10/100000000000d")  # 8.6e18 ms: beyond 2**53 ms from now
    with pytest.raises(ConfigurationError, match=r"10/100000000000d") as refused:
        check_rate(strategy, endless)
    assert "beyond" in str(refused.value)


@pytest.mark.parametrize("cls", STRATEGY_CLASSES)
def test_strategies_compare_and_hash_by_configuration(cls: type[Any]) -> None:
    assert cls() == cls()
    assert hash(cls()) == hash(cls())

from __future__ import annotations

import pytest

from traffik import ConfigurationError, CostBasedTokenBucket, Rate
from traffik.strategies import NO_PARAMS

RATE = Rate.parse("100/min")


def test_costly_requests_slow_the_refill_down_to_the_floor() -> None:
    strategy = CostBasedTokenBucket()
    state, decision, ttl = strategy.decide(None, 0, RATE, 4, NO_PARAMS)
    assert state is not None
    assert state[2:] == (4_000, 1)  # average cost 4, one sample
    assert strategy.multiplier(4_000, 1) == 500  # max(0.5, 1/4)
    assert decision.reset_after == 4.8  # 4 tokens at 50 a minute, not 100
    assert ttl == 4_800


def test_the_average_is_exact_then_moving() -> None:
    strategy = CostBasedTokenBucket(burst_size=100, cost_window=2, min_refill_rate=0.1)
    state = None
    for cost in (1, 3, 5):
        state, _, _ = strategy.decide(state, 0, RATE, cost, NO_PARAMS)
    assert state is not None
    # Mean of (1, 3) is 2; then 2 + (5 - 2) / 2 = 3.5, with weight 1/2.
    assert state[2:] == (3_500, 2)
    assert strategy.multiplier(3_500, 2) == 285


def test_the_history_is_forgotten_once_the_bucket_is_full() -> None:
    strategy = CostBasedTokenBucket()
    state, _, ttl = strategy.decide(None, 0, RATE, 4, NO_PARAMS)
    almost, _, _ = strategy.decide(state, ttl - 1, RATE, 0, NO_PARAMS)
    assert almost is state
    after, decision, _ = strategy.decide(state, ttl, RATE, 1, NO_PARAMS)
    assert after is not None
    assert after[2:] == (1_000, 1)  # the cost-4 request no longer weighs
    assert decision.reset_after == 0.6  # one token at the full rate
    still, _, _ = strategy.decide(state, ttl - 1, RATE, 1, NO_PARAMS)
    assert still is not None
    assert still[2:] == (2_500, 2)  # not yet full: the history goes on


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"cost_window": 0}, "cost_window"),
        ({"min_refill_rate": 0}, "min_refill_rate"),
        ({"min_refill_rate": 1.5}, "min_refill_rate"),
        ({"burst_size": -3}, "burst_size"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        CostBasedTokenBucket(**kwargs)  # type: ignore[arg-type]

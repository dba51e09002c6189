from __future__ import annotations

import math

import pytest

from traffik import ConfigurationError, QuotaWithRollover, Rate
from traffik.strategies import NO_PARAMS

RATE = Rate.parse("100/min")
MINUTE = 60_000


def test_unused_quota_carries_over_capped() -> None:
    strategy = QuotaWithRollover(rollover_percentage=0.5, max_rollover=30)
    assert strategy.carry(40, RATE) == 30  # 60 unused * 0.5
    assert strategy.carry(90, RATE) == 5
    assert strategy.carry(0, RATE) == 30  # 50, capped
    assert strategy.carry(130, RATE) == 0
    _, decision, ttl = strategy.decide((0, 90, 0), MINUTE + 10, RATE, 1, NO_PARAMS)
    assert (decision.limit, decision.remaining) == (105, 104)
    assert ttl == 2 * MINUTE - 10  # kept through the next period: it feeds its rollover


def test_a_period_without_requests_carries_nothing() -> None:
    strategy = QuotaWithRollover()
    _, decision, _ = strategy.decide((0, 10, 0), 2 * MINUTE, RATE, 1, NO_PARAMS)
    assert decision.limit == 100


def test_retry_is_next_period_or_never() -> None:
    strategy = QuotaWithRollover(rollover_percentage=1, max_rollover=50)
    state = (0, 60, 0)
    _, decision, _ = strategy.decide(state, 1_000, RATE, 41, NO_PARAMS)
    assert decision.retry_after == 59  # next minute: 100 + 40
    _, decision, _ = strategy.decide(state, 1_000, RATE, 141, NO_PARAMS)
    assert math.isinf(decision.retry_after)
    # Without a state this period, the next one has no rollover.
    _, decision, _ = strategy.decide(None, 1_000, RATE, 101, NO_PARAMS)
    assert math.isinf(decision.retry_after)


@pytest.mark.parametrize(
    "kwargs",
    [{"rollover_percentage": 1.5}, {"rollover_percentage": -0.1}, {"max_rollover": -1}],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object]) -> None:
    (name,) = kwargs
    with pytest.raises(ConfigurationError, match=name):
        QuotaWithRollover(**kwargs)  # type: ignore[arg-type]

from __future__ import annotations

import math

import pytest

from traffik import GCRA, ConfigurationError, Decision, Rate
from traffik.strategies import NO_PARAMS

RATE = Rate.parse("10/s")  # T = 100 ms


def test_without_tolerance_requests_are_spaced_by_the_interval() -> None:
    strategy = GCRA()
    state, first, ttl = strategy.decide(None, 0, RATE, 1, NO_PARAMS)
    assert first == Decision(True, 1, 0, 0.1, 0.0)
    assert ttl == 100
    _, refused, _ = strategy.decide(state, 40, RATE, 1, NO_PARAMS)
    assert (refused.allowed, refused.retry_after) == (False, 0.06)
    assert strategy.decide(state, 100, RATE, 1, NO_PARAMS)[1].allowed


def test_tolerance_admits_a_burst_and_counts_in_retry() -> None:
    strategy = GCRA(burst_tolerance_ms=250)  # 1 + floor(250 / 100) = 3 at once
    state = None
    for _ in range(3):
        state, decision, _ = strategy.decide(state, 0, RATE, 1, NO_PARAMS)
        assert decision.allowed
    _, refused, _ = strategy.decide(state, 0, RATE, 1, NO_PARAMS)
    # TAT is 300 ms ahead; one more fits when it is 250 ms ahead: after 50 ms.
    assert (refused.allowed, refused.limit, refused.retry_after) == (False, 3, 0.05)


def test_cost_is_honoured_at_admission() -> None:
    strategy = GCRA(burst_tolerance_ms=150)  # a burst of 2
    assert strategy.decide(None, 0, RATE, 2, NO_PARAMS)[1].allowed
    refused = strategy.decide(None, 0, RATE, 3, NO_PARAMS)[1]
    assert (refused.allowed, refused.retry_after) == (False, math.inf)
    state, _, _ = strategy.decide(None, 0, RATE, 1, NO_PARAMS)
    _, decision, _ = strategy.decide(state, 0, RATE, 2, NO_PARAMS)
    assert (decision.allowed, decision.retry_after) == (False, 0.05)


def test_whole_float_tolerance_is_accepted() -> None:
    assert GCRA(burst_tolerance_ms=0.0).burst_tolerance_ms == 0  # type: ignore[arg-type]
    assert isinstance(GCRA(burst_tolerance_ms=5.0).burst_tolerance_ms, int)  # type: ignore[arg-type]


@pytest.mark.parametrize("tolerance", [-1, 1.5, "5", None, True])
def test_bad_tolerance_is_refused(tolerance: object) -> None:
    with pytest.raises(ConfigurationError, match="burst_tolerance_ms"):
        GCRA(burst_tolerance_ms=tolerance)  # type: ignore[arg-type]

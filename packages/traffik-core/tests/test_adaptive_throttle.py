from __future__ import annotations

import math

import pytest

from traffik import AdaptiveThrottle, ConfigurationError, Rate
from traffik.strategies import NO_PARAMS

RATE = Rate.parse("100/min")
MINUTE = 60_000


State = tuple[int, int, int] | None


def hammer(strategy: AdaptiveThrottle, state: State, window: int, count: int) -> tuple[State, int]:
    admitted = 0
    for _ in range(count):
        new_state, decision, ttl = strategy.decide(state, window * MINUTE, RATE, 1, NO_PARAMS)
        assert ttl >= 1
        if decision.allowed:
            state, admitted = new_state, admitted + 1
    return state, admitted


def test_the_limit_holds_for_a_whole_window_and_shrinks_between_windows() -> None:
    strategy = AdaptiveThrottle()
    state, admitted = hammer(strategy, None, 0, 500)
    assert admitted == 100  # never collapses within the window
    counts = []
    for window in range(1, 6):
        state, admitted = hammer(strategy, state, window, 200)
        counts.append(admitted)
    assert counts == [60, 36, 30, 30, 30]


def test_recovery_is_gradual_and_idle_windows_count() -> None:
    strategy = AdaptiveThrottle()
    state = (0, 30, 30)  # at the floor, fully used
    assert strategy.decide(state, MINUTE, RATE, 0, NO_PARAMS)[1].limit == 30
    _, decision, _ = strategy.decide(state, 2 * MINUTE, RATE, 0, NO_PARAMS)
    assert decision.limit == 40  # minute 1 keeps 30 (load was 1); idle minute 1: +10
    assert strategy.decide(state, 100 * MINUTE, RATE, 0, NO_PARAMS)[1].limit == 100


def test_retry_waits_for_a_window_whose_limit_fits() -> None:
    strategy = AdaptiveThrottle()
    state = (0, 30, 30)
    _, decision, ttl = strategy.decide(state, 30_000, RATE, 55, NO_PARAMS)
    # Next minute 30 (load was 1), then 40, 50, 60: the cost of 55 fits in minute 4.
    assert decision.retry_after == 30 + 3 * 60
    assert ttl == 30_000 + 7 * MINUTE  # until the limit is whole again
    assert math.isinf(strategy.decide(state, 30_000, RATE, 101, NO_PARAMS)[1].retry_after)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"load_threshold": 0},
        {"load_threshold": 1.5},
        {"reduction_factor": 1},
        {"recovery_rate": -0.1},
        {"min_limit_ratio": "0.3"},
    ],
)
def test_bad_ratios_are_refused(kwargs: dict[str, object]) -> None:
    (name,) = kwargs
    with pytest.raises(ConfigurationError, match=name):
        AdaptiveThrottle(**kwargs)  # type: ignore[arg-type]

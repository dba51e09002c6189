from __future__ import annotations

import math

import pytest

from traffik import ConfigurationError, Rate, TimeOfDay
from traffik.strategies import NO_PARAMS

HOUR = 3_600_000
MIDNIGHT = 1_800_000_000_000 - 1_800_000_000_000 % (24 * HOUR)  # UTC
RATE = Rate.parse("100/h")


def test_the_limit_follows_the_hour() -> None:
    strategy = TimeOfDay()
    assert strategy.limit_at(MIDNIGHT + 3 * HOUR, RATE) == 200
    assert strategy.limit_at(MIDNIGHT + 10 * HOUR, RATE) == 100
    assert strategy.limit_at(MIDNIGHT + 20 * HOUR, RATE) == 150
    shifted = TimeOfDay(timezone_offset=-5)  # 10:00 UTC is 05:00 there
    assert shifted.hour_of(MIDNIGHT + 10 * HOUR) == 5
    assert shifted.limit_at(MIDNIGHT + 10 * HOUR, RATE) == 200
    half = TimeOfDay(timezone_offset=5.5)
    assert half.hour_of(MIDNIGHT + 2 * HOUR + 30 * 60_000) == 8


def test_uncovered_hours_use_the_plain_limit_and_the_first_window_wins() -> None:
    strategy = TimeOfDay(time_windows=[(9, 12, 3), (10, 17, 0.5)])
    assert strategy.limit_at(MIDNIGHT + 8 * HOUR, RATE) == 100
    assert strategy.limit_at(MIDNIGHT + 11 * HOUR, RATE) == 300
    assert strategy.limit_at(MIDNIGHT + 12 * HOUR, RATE) == 50


def test_retry_when_the_limit_rises_within_the_window() -> None:
    strategy = TimeOfDay(time_windows=[(0, 12, 1), (12, 24, 2)])
    rate = Rate.parse("10/d")  # one window a day: 10 before noon, 20 after
    state, _, _ = strategy.decide(None, MIDNIGHT + HOUR, rate, 10, NO_PARAMS)
    _, decision, _ = strategy.decide(state, MIDNIGHT + HOUR, rate, 5, NO_PARAMS)
    assert (decision.allowed, decision.retry_after) == (False, 11 * 3600)  # at noon
    _, decision, _ = strategy.decide(None, MIDNIGHT + HOUR, rate, 15, NO_PARAMS)
    assert decision.retry_after == 11 * 3600  # fits only after noon
    _, decision, _ = strategy.decide(None, MIDNIGHT + HOUR, rate, 21, NO_PARAMS)
    assert math.isinf(decision.retry_after)


def test_retry_in_a_later_hour_after_the_window() -> None:
    strategy = TimeOfDay(time_windows=[(0, 1, 3), (1, 24, 1)])
    _, decision, _ = strategy.decide(None, MIDNIGHT + 2 * HOUR, RATE, 250, NO_PARAMS)
    assert decision.retry_after == 22 * 3600  # only the 00:00 hour allows 300


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"time_windows": []}, "time_windows"),
        ({"time_windows": [(5, 3, 1.0)]}, "0 <= start_hour"),
        ({"time_windows": [(0, 25, 1.0)]}, "0 <= start_hour"),
        ({"time_windows": [(0, 8)]}, "time window"),
        ({"time_windows": [(0, 8, 0)]}, "multiplier"),
        ({"timezone_offset": 15}, "timezone_offset"),
        ({"timezone_offset": 0.1234567}, "timezone_offset"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        TimeOfDay(**kwargs)  # type: ignore[arg-type]

"""The exact numbers strategies expose for a store deciding natively (a Redis script).

A script cannot call back into Python, so it receives every per-strategy number exactly:
fractions as numerator and denominator, hourly limits already scaled.
"""

from __future__ import annotations

from fractions import Fraction

from traffik import AdaptiveThrottle, CostBasedTokenBucket, QuotaWithRollover, Rate, TimeOfDay

HOUR_MS = 3_600_000


def test_adaptive_throttle_ratios_are_the_exact_decimal_values() -> None:
    strategy = AdaptiveThrottle(load_threshold=0.8, reduction_factor=0.6, recovery_rate=0.1)
    assert strategy.exact_ratios == (
        Fraction(4, 5),
        Fraction(3, 5),
        Fraction(1, 10),
        Fraction(3, 10),
    )


def test_quota_percentage_is_exact() -> None:
    assert QuotaWithRollover(rollover_percentage=0.75).exact_percentage == Fraction(3, 4)
    assert QuotaWithRollover(rollover_percentage=Fraction(1, 3)).exact_percentage == Fraction(1, 3)


def test_hourly_limits_are_the_limits_in_force_in_each_hour() -> None:
    rate = Rate.parse("100/hour")
    strategy = TimeOfDay(time_windows=((0, 6, 0.5), (20, 23, Fraction(4, 3))), timezone_offset=-5.5)
    assert strategy.offset_ms == -5.5 * HOUR_MS
    limits = strategy.hourly_limits(rate)
    assert limits[:6] == (50,) * 6
    assert limits[20:23] == (133,) * 3
    assert limits[6] == limits[23] == 100  # no window: multiplier 1
    for hour in range(24):  # a moment in that hour of the configured time zone
        now = 20 * 24 * HOUR_MS + hour * HOUR_MS - strategy.offset_ms + 1
        assert strategy.hour_of(now) == hour
        assert strategy.limit_at(now, rate) == limits[hour]


def test_cost_based_floor_is_in_thousandths() -> None:
    assert CostBasedTokenBucket().floor_multiplier == 500
    assert CostBasedTokenBucket(min_refill_rate=0.3).floor_multiplier == 300
    assert CostBasedTokenBucket(min_refill_rate=0.0001).floor_multiplier == 1  # never 0

from __future__ import annotations

from fractions import Fraction

import pytest

from traffik import ConfigurationError, Rate, TieredRate
from traffik.strategies import NO_PARAMS

RATE = Rate.parse("100/h")


def test_the_tier_comes_from_the_params() -> None:
    strategy = TieredRate()
    assert strategy.effective_limit(RATE, {"tier": "premium"}) == 500
    assert strategy.effective_limit(RATE, {"tier": "enterprise"}) == 1000
    assert strategy.effective_limit(RATE, NO_PARAMS) == 100
    # Unknown or malformed tiers get the default tier: least privilege, never an error.
    assert strategy.effective_limit(RATE, {"tier": "platinum"}) == 100
    assert strategy.effective_limit(RATE, {"tier": ["premium"]}) == 100
    _, decision, _ = strategy.decide(None, 0, RATE, 1, {"tier": "premium"})
    assert (decision.limit, decision.remaining) == (500, 499)


def test_multipliers_are_exact_and_ints_are_welcome() -> None:
    multipliers: dict[str, float | int | Fraction] = {
        "a": 0.57,
        "b": 2,
        "c": Fraction(1, 3),
        "d": 0.001,
    }
    strategy = TieredRate(tier_multipliers=multipliers, default_tier="a")
    assert strategy.effective_limit(RATE, {"tier": "a"}) == 57  # not 56.99999999999999
    assert strategy.effective_limit(RATE, {"tier": "b"}) == 200
    assert strategy.effective_limit(RATE, {"tier": "c"}) == 33
    assert strategy.effective_limit(RATE, {"tier": "d"}) == 1  # never below 1


def test_one_window_is_shared_across_tiers() -> None:
    strategy = TieredRate()
    state = None
    for _ in range(100):
        state, decision, _ = strategy.decide(state, 0, RATE, 1, {"tier": "free"})
        assert decision.allowed
    assert not strategy.decide(state, 0, RATE, 1, {"tier": "free"})[1].allowed
    upgraded = strategy.decide(state, 0, RATE, 1, {"tier": "premium"})[1]
    assert (upgraded.allowed, upgraded.remaining) == (True, 399)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"tier_multipliers": {}}, "non-empty"),
        ({"tier_multipliers": {"free": -1}}, "'free'"),
        ({"tier_multipliers": {"free": 0}}, "'free'"),
        ({"tier_multipliers": {"free": "2"}}, "'free'"),
        ({"tier_multipliers": {"free": float("nan")}}, "'free'"),
        ({"tier_multipliers": {"free": 1}, "default_tier": "gold"}, "'gold'"),
        ({"tier_multipliers": {"free": 1 / 3}}, "6 decimal places"),
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        TieredRate(**kwargs)  # type: ignore[arg-type]

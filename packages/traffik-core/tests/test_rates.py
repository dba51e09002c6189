from __future__ import annotations

import math
import pickle

import pytest

from traffik import ConfigurationError, Rate


@pytest.mark.parametrize(
    ("text", "limit", "period_ms"),
    [
        ("100/min", 100, 60_000),
        ("5/10s", 5, 10_000),
        ("2 per second", 2, 1_000),
        ("2 persecond", 2, 1_000),
        ("1000/500ms", 1000, 500),
        ("50/d", 50, 86_400_000),
        ("10/30 seconds", 10, 30_000),
        ("5 / min", 5, 60_000),
        ("5/M", 5, 60_000),
        ("3/HOUR", 3, 3_600_000),
        ("7/2hrs", 7, 7_200_000),
        ("1/1millisecond", 1, 1),
        ("1000/30days", 1000, 30 * 86_400_000),
        ("  4/s  ", 4, 1_000),
    ],
)
def test_parses_the_documented_forms(text: str, limit: int, period_ms: int) -> None:
    rate = Rate.parse(text)
    assert (rate.limit, rate.period_ms) == (limit, period_ms)
    assert rate == Rate(limit=limit, milliseconds=period_ms)


@pytest.mark.parametrize(
    "text", ["5/1.5s", "5/w", "abc", "-1/s", "0/s", "", "5", "5/sec/2", "10/s;100/min", "5/0s"]
)
def test_malformed_strings_raise_a_value_error_quoting_the_input(text: str) -> None:
    with pytest.raises(ValueError) as info:
        Rate.parse(text)
    assert repr(text) in str(info.value)
    assert isinstance(info.value, ConfigurationError)


@pytest.mark.parametrize(
    "text",
    [
        "\uff15/min",  # full-width five: int() reads it as 5
        "\u0663/min",  # Arabic-Indic three
        "1\u0660/s",  # a digit of another script after an ASCII one
        "5/\u0662m",  # in the period's multiplier
        "\u20035/min",  # Unicode whitespace around it
        "5\u00a0/ min",
        "5/\u0131min",  # dotless i
    ],
)
def test_only_ascii_digits_and_letters_are_read(text: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Rate.parse(text)
    assert repr(text) in str(info.value)


def test_keywords_build_the_same_rate() -> None:
    assert Rate(limit=100, minutes=1) == Rate.parse("100/min")
    assert Rate(limit=1, seconds=1.5) == Rate(limit=1, milliseconds=1500)
    assert Rate(limit=5, hours=1, minutes=30).period_ms == 5_400_000
    assert Rate(limit=5, days=1) == Rate.parse("5/d")


def test_empty_rate_is_unlimited() -> None:
    rate = Rate()
    assert rate.unlimited
    assert rate.rps == math.inf
    assert not Rate.parse("1/s").unlimited


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"limit": 5}, "needs a period"),
        ({"limit": 0, "seconds": 1}, "needs a limit"),
        ({"limit": -1, "seconds": 1}, "-1"),
        ({"limit": 1.5, "seconds": 1}, "1.5"),
        ({"limit": True, "seconds": 1}, "True"),
        ({"limit": 1, "seconds": -2}, "-2"),
        ({"limit": 1, "milliseconds": 0.5}, "whole number of milliseconds"),
        ({"limit": 1, "seconds": math.inf}, "inf"),
        ({"limit": 1, "seconds": "1"}, "'1'"),
    ],
)
def test_bad_keywords_are_refused_naming_the_value(
    kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=None) as info:
        Rate(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_rates_are_immutable_final_and_hashable() -> None:
    rate = Rate.parse("10/s")
    with pytest.raises(AttributeError):
        rate.limit = 5
    with pytest.raises(TypeError):
        type("Sub", (Rate,), {})
    assert len({Rate.parse("10/s"), Rate(limit=10, seconds=1)}) == 1
    assert pickle.loads(pickle.dumps(rate)) == rate


def test_derived_values() -> None:
    rate = Rate.parse("120/min")
    assert rate.rps == 2
    assert rate.rpm == 120
    assert rate.rph == 7200
    assert rate.period == 60.0
    assert rate.expire == 60_000
    assert Rate.parse("5/500ms").is_subsecond
    assert str(rate) == "120/m"
    assert str(Rate.parse("5/10s")) == "5/10s"
    assert repr(rate) == "Rate(limit=120, milliseconds=60000)"


def test_of_accepts_rates_and_strings_only() -> None:
    rate = Rate.parse("1/s")
    assert Rate.of(rate) is rate
    assert Rate.of("1/s") == rate
    with pytest.raises(ConfigurationError, match="42"):
        Rate.of(42)  # type: ignore[arg-type]

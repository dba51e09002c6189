"""Helpers shared by the strategies: checked parameters and aligned windows.

Ratios given as floats (``0.8``, ``1.5``) become exact fractions of their decimal text
(``0.8`` is 4/5, never 0.8000000000000000444), so limits scaled by them are computed in
integers: ``limit * numerator // denominator``, the same in Python and in a Lua script.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Final

from traffik.exceptions import ConfigurationError

__all__ = ["aligned_window", "exact_ratio", "scaled", "whole_number"]

_MAX_DENOMINATOR: Final = 10**6


def whole_number(value: object, what: str, *, minimum: int = 0) -> int:
    """An int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return value


def exact_ratio(
    value: object,
    what: str,
    *,
    low: Fraction | int = 0,
    high: Fraction | int | None = None,
    low_inclusive: bool = False,
    high_inclusive: bool = True,
) -> Fraction:
    """A number as an exact fraction of its decimal text, checked against its bounds."""
    ratio: Fraction | None = None
    if isinstance(value, bool):
        ratio = None
    elif isinstance(value, int | Fraction):
        ratio = Fraction(value)
    elif isinstance(value, float) and math.isfinite(value):
        ratio = Fraction(repr(value))
    elif isinstance(value, Decimal) and value.is_finite():
        ratio = Fraction(value)
    if ratio is None:
        raise ConfigurationError(f"{what} must be a number, got {value!r}")
    too_low = ratio < low if low_inclusive else ratio <= low
    too_high = high is not None and (ratio > high if high_inclusive else ratio >= high)
    if too_low or too_high:
        bounds = (
            f"{'[' if low_inclusive else '('}{low}, "
            f"{'infinity)' if high is None else str(high) + (']' if high_inclusive else ')')}"
        )
        raise ConfigurationError(f"{what} must be in {bounds}, got {value!r}")
    if ratio.denominator > _MAX_DENOMINATOR:
        raise ConfigurationError(
            f"{what} must have at most 6 decimal places (or be a Fraction with a "
            f"denominator up to {_MAX_DENOMINATOR}), got {value!r}"
        )
    return ratio


def scaled(limit: int, ratio: Fraction) -> int:
    """``floor(limit * ratio)``, never below 1: a scaled limit always admits something."""
    return max(1, limit * ratio.numerator // ratio.denominator)


def aligned_window(now: int, period: int, state_window: int | None) -> tuple[int, int]:
    """The window ``now`` falls in, and ``now`` itself, never before the state's window.

    Windows are ``[k * period, (k + 1) * period)``. When the state was written by a
    client whose clock runs ahead (memcached clients bring their own clocks), its window
    is later than ours: we decide in that window, at its start, rather than reopen an
    older one and admit its budget twice.
    """
    window = now // period
    if state_window is not None and state_window > window:
        return state_window, state_window * period
    return window, now

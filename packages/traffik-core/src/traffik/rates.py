"""Rates: how many units of cost are allowed per period.

A rate is written as a string (``"100/min"``, ``"5/10s"``, ``"2 per second"``) or built
with keywords (``Rate(limit=100, minutes=1)``). Periods are whole milliseconds, which
keeps every strategy's arithmetic in exact integers. ``Rate()`` is unlimited.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any, Final, final

from traffik.exceptions import ConfigurationError

__all__ = ["Rate", "RateLike", "parse_rate"]

_MS_PER_UNIT: Final[dict[str, int]] = {}
for _names, _ms in (
    (("ms", "millisecond", "milliseconds"), 1),
    (("s", "sec", "secs", "second", "seconds"), 1_000),
    (("m", "min", "mins", "minute", "minutes"), 60_000),
    (("h", "hr", "hrs", "hour", "hours"), 3_600_000),
    (("d", "day", "days"), 86_400_000),
):
    for _name in _names:
        _MS_PER_UNIT[_name] = _ms

# "<limit> / <multiplier?> <unit>" or "<limit> per <multiplier?> <unit>".
# ASCII only: int() would read the digits of other scripts (Arabic-Indic, full-width) too.
_RATE_PATTERN: Final = re.compile(r"([0-9]+)\s*(?:/|per)\s*([0-9]+)?\s*([a-z]+)", re.ASCII)


@final
class Rate:
    """An immutable limit per period.

    ``limit`` is the number of cost units allowed per ``period_ms`` milliseconds.
    A limit of 0 with no period is *unlimited*: throttles using it never touch a backend.
    """

    __slots__ = ("limit", "period_ms")

    limit: int
    period_ms: int

    def __init__(
        self,
        *,
        limit: int = 0,
        milliseconds: float = 0,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ConfigurationError(f"Rate limit must be a whole number, got {limit!r}")
        if limit < 0:
            raise ConfigurationError(f"Rate limit must not be negative, got {limit!r}")
        parts = {
            "milliseconds": (milliseconds, 1),
            "seconds": (seconds, 1_000),
            "minutes": (minutes, 60_000),
            "hours": (hours, 3_600_000),
            "days": (days, 86_400_000),
        }
        total = 0.0
        for name, (value, scale) in parts.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigurationError(f"Rate {name} must be a number, got {value!r}")
            if value < 0 or not math.isfinite(value):
                raise ConfigurationError(
                    f"Rate {name} must be finite and not negative, got {value!r}"
                )
            total += value * scale
        period_ms = round(total)
        if abs(total - period_ms) > 1e-6:
            raise ConfigurationError(
                f"Rate period must be a whole number of milliseconds, got {total!r} ms"
            )
        if limit > 0 and period_ms == 0:
            raise ConfigurationError(f"Rate limit {limit} needs a period (e.g. seconds=1)")
        if limit == 0 and period_ms > 0:
            raise ConfigurationError(
                f"Rate with a period of {period_ms} ms needs a limit above 0 "
                "(use Rate() for unlimited)"
            )
        object.__setattr__(self, "limit", limit)
        object.__setattr__(self, "period_ms", period_ms)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("Rate cannot be subclassed")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Rate is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Rate is immutable")

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse ``"100/min"``, ``"5/10s"``, ``"2 per second"``, ``"1000/500ms"``, ``"50/d"``."""
        return parse_rate(text)

    @classmethod
    def of(cls, value: RateLike) -> Rate:
        """Accept a `Rate` as it is, or parse a string."""
        if isinstance(value, Rate):
            return value
        if isinstance(value, str):
            return parse_rate(value)
        raise ConfigurationError(
            f"Expected a Rate or a rate string such as '100/min', got {value!r}"
        )

    @property
    def unlimited(self) -> bool:
        return self.limit == 0

    @property
    def period(self) -> float:
        """The period in seconds."""
        return self.period_ms / 1000

    @property
    def expire(self) -> int:
        """The period in milliseconds (the traffik 1.x name)."""
        return self.period_ms

    @property
    def is_subsecond(self) -> bool:
        return 0 < self.period_ms < 1000

    def per(self, seconds: float) -> float:
        """Units allowed per ``seconds`` at this rate (infinite when unlimited)."""
        if self.unlimited:
            return math.inf
        return self.limit * seconds * 1000 / self.period_ms

    @property
    def rps(self) -> float:
        return self.per(1)

    @property
    def rpm(self) -> float:
        return self.per(60)

    @property
    def rph(self) -> float:
        return self.per(3600)

    @property
    def rpd(self) -> float:
        return self.per(86_400)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rate):
            return NotImplemented
        return self.limit == other.limit and self.period_ms == other.period_ms

    def __hash__(self) -> int:
        return hash((Rate, self.limit, self.period_ms))

    def __repr__(self) -> str:
        if self.unlimited:
            return "Rate()"
        return f"Rate(limit={self.limit}, milliseconds={self.period_ms})"

    def __str__(self) -> str:
        if self.unlimited:
            return "unlimited"
        for unit, ms in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
            if self.period_ms % ms == 0:
                count = self.period_ms // ms
                return f"{self.limit}/{unit}" if count == 1 else f"{self.limit}/{count}{unit}"
        return f"{self.limit}/{self.period_ms}ms"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_rate, (self.limit, self.period_ms))


def _rebuild_rate(limit: int, period_ms: int) -> Rate:
    return Rate(limit=limit, milliseconds=period_ms)


RateLike = Rate | str


@lru_cache(maxsize=512)
def parse_rate(text: str) -> Rate:
    """Parse a rate string; raise ValueError quoting the input when it is malformed."""
    if not isinstance(text, str):
        raise ConfigurationError(f"A rate string is needed, got {text!r}")
    match = _RATE_PATTERN.fullmatch(text.strip().lower()) if text.isascii() else None
    if match is None:
        raise ConfigurationError(
            f"Invalid rate {text!r}: expected '<limit>/<period>' such as '100/min', "
            "'5/10s', '2 per second' or '1000/500ms'"
        )
    limit_text, multiplier_text, unit = match.groups()
    if unit not in _MS_PER_UNIT:
        raise ConfigurationError(
            f"Invalid rate {text!r}: unknown unit {unit!r} "
            "(use ms, s, m, h or d, or their long forms)"
        )
    multiplier = int(multiplier_text) if multiplier_text is not None else 1
    if multiplier == 0:
        raise ConfigurationError(f"Invalid rate {text!r}: the period must be longer than zero")
    limit = int(limit_text)
    if limit == 0:
        raise ConfigurationError(
            f"Invalid rate {text!r}: the limit must be at least 1 (use Rate() for unlimited)"
        )
    return Rate(limit=limit, milliseconds=multiplier * _MS_PER_UNIT[unit])

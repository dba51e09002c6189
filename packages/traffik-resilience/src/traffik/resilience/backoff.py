"""How long to wait before retry number ``attempt`` (1 for the first retry).

Four shapes — constant, linear, exponential, logarithmic — each capped by ``max_delay``,
with optional jitter so that many clients retrying together do not arrive together:

* ``Jitter.NONE``: the delay as computed;
* ``Jitter.FULL``: uniform in ``[0, delay]``;
* ``Jitter.EQUAL``: uniform in ``[delay / 2, delay]``.

Jitter draws from ``rng`` (a `random.Random`), which tests seed for repeatable delays.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass, field
from typing import Protocol

from traffik.exceptions import ConfigurationError

__all__ = [
    "Backoff",
    "ConstantBackoff",
    "ExponentialBackoff",
    "Jitter",
    "LinearBackoff",
    "LogarithmicBackoff",
]


class Jitter(enum.Enum):
    NONE = "none"
    FULL = "full"
    EQUAL = "equal"


class Backoff(Protocol):
    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (1-based)."""
        ...


@dataclass(frozen=True)
class _BackoffBase:
    initial: float = 0.01
    max_delay: float | None = 1.0
    jitter: Jitter = Jitter.NONE
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_seconds(self.initial, "initial")
        if self.max_delay is not None:
            _check_seconds(self.max_delay, "max_delay")
        if not isinstance(self.jitter, Jitter):
            raise ConfigurationError(f"jitter must be a Jitter, got {self.jitter!r}")

    def delay(self, attempt: int) -> float:
        if attempt < 1:
            raise ConfigurationError(f"attempt must be >= 1, got {attempt!r}")
        base = self._shape(attempt)
        if self.max_delay is not None:
            base = min(base, self.max_delay)
        if self.jitter is Jitter.FULL:
            return self.rng.uniform(0.0, base)
        if self.jitter is Jitter.EQUAL:
            return self.rng.uniform(base / 2, base)
        return base

    def _shape(self, attempt: int) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class ConstantBackoff(_BackoffBase):
    """``initial`` every time."""

    def _shape(self, attempt: int) -> float:
        return self.initial


@dataclass(frozen=True)
class LinearBackoff(_BackoffBase):
    """``initial + increment * (attempt - 1)``."""

    increment: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_seconds(self.increment, "increment")

    def _shape(self, attempt: int) -> float:
        return self.initial + self.increment * (attempt - 1)


@dataclass(frozen=True)
class ExponentialBackoff(_BackoffBase):
    """``initial * multiplier ** (attempt - 1)``."""

    multiplier: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.multiplier, bool) or not self.multiplier >= 1:
            raise ConfigurationError(f"multiplier must be >= 1, got {self.multiplier!r}")

    def _shape(self, attempt: int) -> float:
        # Cap the exponent so huge attempt numbers cannot overflow a float.
        return float(self.initial * self.multiplier ** min(attempt - 1, 64))


@dataclass(frozen=True)
class LogarithmicBackoff(_BackoffBase):
    """``initial * (1 + log(attempt, base))``: grows quickly at first, then slowly."""

    base: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.base, bool) or not self.base > 1:
            raise ConfigurationError(f"base must be > 1, got {self.base!r}")

    def _shape(self, attempt: int) -> float:
        return self.initial * (1 + math.log(attempt, self.base))


def _check_seconds(value: object, name: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigurationError(f"{name} must be a finite number of seconds >= 0, got {value!r}")

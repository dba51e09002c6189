"""Tiered rate: one fixed window whose limit is scaled by the client's tier.

Rule: the request's tier comes from its params (``params={"tier": "premium"}``, given to
the throttle as a mapping or as an async function of the connection), else, as in
traffik 1.x, from the identity after ``marker`` (``"tier:premium:user:42"``, see
`traffik.strategies._markers`); a missing tier is ``default_tier``, and so is an unknown
one (the least privilege, never an error at request time), with a warning naming it.
The limit for the request is ``max(1, floor(limit * multiplier))``, and the window is a
`FixedWindow` count shared by all tiers of one client: with ``"100/hour"`` and the
default multipliers (free 1, premium 5, enterprise 10), a free client gets 100 units per
aligned hour, a premium one 500; a client upgraded mid-hour keeps what it used and may go
on to 500. Multipliers may be ints, floats, Decimals or Fractions (``1.5`` is exactly
3/2); a refused request counts nothing, and one costing more than its tier's limit is
refused for ever.

Integer algorithm (``P = period_ms``, ``L = limit``; multiplier ``m = n / d`` in lowest
terms; state ``(w, used)``, 2 integers)::

    limit' = max(1, L * n // d)   (computed in Python, exactly; require limit' < 2**53)
    then exactly `FixedWindow` with limit' (see fixed_window.py)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import ClassVar

from traffik.exceptions import ConfigurationError
from traffik.rates import Rate
from traffik.strategies._markers import checked_marker, split_marked, warn_unknown
from traffik.strategies._support import exact_ratio, scaled
from traffik.strategies.base import IntTupleCodec, Params, Step, require_exact
from traffik.strategies.fixed_window import WindowState, decide_window, refund_window

__all__ = ["DEFAULT_TIER_MULTIPLIERS", "TieredRate"]

DEFAULT_TIER_MULTIPLIERS: Mapping[str, float] = MappingProxyType(
    {"free": 1.0, "premium": 5.0, "enterprise": 10.0}
)


@dataclass(frozen=True, slots=True)
class TieredRate(IntTupleCodec):
    """A fixed window whose limit is multiplied per tier (``params["tier"]``, else the
    identity's segment after ``marker``, as in traffik 1.x; None reads params only)."""

    tier_multipliers: Mapping[str, float | int | Fraction] = field(
        default_factory=lambda: dict(DEFAULT_TIER_MULTIPLIERS), hash=False
    )
    default_tier: str = "free"
    marker: str | None = "tier:"
    _ratios: tuple[tuple[str, Fraction], ...] = field(init=False, repr=False, compare=False)

    name: ClassVar[str] = "tiered_rate"
    state_fields: ClassVar[int] = 2

    def __post_init__(self) -> None:
        multipliers = self.tier_multipliers
        if not isinstance(multipliers, Mapping) or not multipliers:
            raise ConfigurationError(
                f"TieredRate tier_multipliers must be a non-empty mapping of tier names to "
                f"multipliers, got {multipliers!r}"
            )
        ratios: list[tuple[str, Fraction]] = []
        for tier, multiplier in multipliers.items():
            if not isinstance(tier, str) or not tier:
                raise ConfigurationError(f"TieredRate tier names must be strings, got {tier!r}")
            ratios.append(
                (tier, exact_ratio(multiplier, f"TieredRate multiplier of tier {tier!r}"))
            )
        if self.default_tier not in multipliers:
            raise ConfigurationError(
                f"TieredRate default_tier {self.default_tier!r} is not one of the tiers "
                f"{sorted(multipliers)}"
            )
        object.__setattr__(self, "tier_multipliers", MappingProxyType(dict(multipliers)))
        object.__setattr__(self, "marker", checked_marker(self.marker, "TieredRate"))
        object.__setattr__(self, "_ratios", tuple(ratios))

    def tier_of(self, params: Params) -> str:
        """The request's tier: ``params["tier"]`` when it is a known tier, else the default
        (an unknown one said in a warning, once)."""
        tier = params.get("tier")
        if isinstance(tier, str) and tier in self.tier_multipliers:
            return tier
        if tier is not None:
            warn_unknown("TieredRate tier", tier, sorted(self.tier_multipliers), self.default_tier)
        return self.default_tier

    def from_identity(self, identity: str) -> tuple[str, Params] | None:
        """traffik 1.x's form: the tier after ``marker`` in the identity, as params, and
        the identity without it (`traffik.strategies._markers`); None when unmarked."""
        marker = self.marker
        if marker is None:
            return None
        marked = split_marked(identity, marker)
        if marked is None:
            return None
        return marked[0], {"tier": marked[1]}

    def effective_limit(self, rate: Rate, params: Params) -> int:
        """``max(1, floor(limit * multiplier))`` for the request's tier."""
        tier = self.tier_of(params)
        ratio = next(ratio for name, ratio in self._ratios if name == tier)
        return scaled(rate.limit, ratio)

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this window cannot decide exactly for some tier (`require_exact`)."""
        largest = max(scaled(rate.limit, ratio) for _, ratio in self._ratios)
        require_exact(self, rate, largest, rate.period_ms)

    def decide(
        self, state: WindowState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[WindowState]:
        self.check_rate(rate)
        return decide_window(state, now, rate.period_ms, self.effective_limit(rate, params), cost)

    def refund(
        self, state: WindowState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[WindowState | None, int]:
        return refund_window(state, now, rate.period_ms, cost)

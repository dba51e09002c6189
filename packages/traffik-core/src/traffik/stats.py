"""`ThrottleStat`: a client's standing against one throttle, read without consuming."""

from __future__ import annotations

from dataclasses import dataclass

from traffik.backends.base import Hit
from traffik.decision import Decision
from traffik.rates import Rate

__all__ = ["ThrottleStat"]


@dataclass(frozen=True, slots=True)
class ThrottleStat:
    """A client's standing against one throttle, read without consuming anything."""

    @classmethod
    def from_peek(cls, hit: Hit, decision: Decision) -> ThrottleStat:
        """The standing that a peek of ``hit`` at cost 1 found."""
        # A peek at cost 1 reports what would be left after it; add the unit back.
        remaining = decision.remaining + 1 if decision.allowed else decision.remaining
        return cls(
            key=hit.key,
            rate=hit.rate,
            strategy=hit.strategy.name,
            limit=decision.limit,
            remaining=remaining,
            reset_after=decision.reset_after,
            retry_after=decision.retry_after,
        )

    key: str
    rate: Rate
    strategy: str
    limit: int
    remaining: int
    reset_after: float
    retry_after: float

"""The base of the oracles: deliberately naive models of the strategies, one per strategy.

Each oracle keeps the plain list of admitted requests ``(time_ms, cost, params)`` and
recomputes every decision from scratch, with exact fractions where the production code
scales integers: no stored state, no shortcuts, no code shared with `traffik.strategies`.
They answer what the strategy's documented rule says the decision must be, so the
conformance suite can compare every (backend, strategy) pair with them exactly.

Conventions shared with the strategies (the module docstrings state them):
``retry_after`` / ``reset_after`` / ``delay`` are whole milliseconds, as seconds
(``ms / 1000``); a retry time is the first whole millisecond at which the same request
would pass; ``math.inf`` when none ever does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from traffik import Decision, Rate

__all__ = ["Event", "Oracle", "Params", "ceil_ms", "ratio", "seconds"]

Params = Mapping[str, object]


@dataclass(frozen=True)
class Event:
    """One admitted request."""

    time: int
    cost: int
    params: Params


def ceil_ms(value: Fraction | int) -> int:
    """A duration in (fractional) milliseconds, rounded up to a whole millisecond."""
    return math.ceil(value)


def seconds(ms: int) -> float:
    return ms / 1000


def ratio(value: float | int | Fraction) -> Fraction:
    """A configured multiplier as the exact fraction of its decimal text."""
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


@dataclass
class Oracle:
    """Base: the admitted requests, and what a hit does with them."""

    rate: Rate
    events: list[Event] = field(default_factory=list)

    @property
    def period(self) -> int:
        return self.rate.period_ms

    @property
    def limit(self) -> int:
        return self.rate.limit

    def decide(self, now: int, cost: int, params: Params) -> Decision:
        raise NotImplementedError

    def hit(self, now: int, cost: int, params: Params) -> Decision:
        decision = self.decide(now, cost, params)
        if decision.allowed and cost > 0:
            self.events.append(Event(now, cost, params))
        return decision

    def cost_in(self, events: Iterable[Event]) -> int:
        return sum(event.cost for event in events)

    def in_window(self, window: int) -> list[Event]:
        return [event for event in self.events if event.time // self.period == window]

"""Priority queue: one window's budget, with lower priorities shed first as it runs out.

Rule: windows are aligned as for `FixedWindow`; each counts the units admitted per
priority (LOW=1, NORMAL=2, HIGH=3, CRITICAL=4). A request of priority ``p`` sees only
the usage of priorities ``>= p``: it is admitted when that usage plus its cost is at
most the limit, and when the window's total usage plus its cost is at most
``max_queue_size`` (the most work the window's queue admits over all priorities). So a
LOW request sees everything and is refused first; a CRITICAL request sees only other
CRITICAL requests and still passes when a flood of lower-priority work has used the
budget. With ``"100/min"``: 100 LOW then 40 CRITICAL requests all pass, but after 100
CRITICAL ones nothing else does; sent round-robin (LOW, NORMAL, HIGH, CRITICAL, LOW,
...), LOW stops first. The priority comes from the request's params
(``params={"priority": Priority.HIGH}``, an int 1-4 or a name such as ``"high"``), else,
as in traffik 1.x, from the identity after ``marker`` (``"priority:3:user:42"``, see
`traffik.strategies._markers`); a missing one is ``default_priority``, and so is an
unrecognised one, with a warning naming it. Refused requests count nothing; a
refused request may retry in the next window, or never if its cost exceeds
``min(limit, max_queue_size)``.

Integer algorithm (``P = period_ms``, ``L = limit``, ``M = max_queue_size``; state
``(w, u1, u2, u3, u4)``, 5 integers: units admitted per priority this window)::

    window = now // P; if state.w > window: window = state.w; now = window * P
    u = state.u if state and state.w == window else (0, 0, 0, 0)
    seen  = u[p] + ... + u[4];  total = u[1] + ... + u[4]
    reset = (window + 1) * P - now
    cost == 0:      allowed, state unchanged
    cost > min(L, M):                       refused, retry_after = inf
    seen + cost <= L and total + cost <= M: u[p] += cost; store (window, *u), ttl = reset
                                            allowed, remaining min(L - seen, M - total) - cost
    otherwise:      refused, remaining max(0, min(L - seen, M - total)), retry = reset
    refund(c): same window only, u[p] = max(u[p] - c, 0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from traffik.decision import Decision
from traffik.exceptions import ConfigurationError
from traffik.rates import Rate
from traffik.strategies._markers import checked_marker, split_marked, warn_unknown
from traffik.strategies._support import aligned_window, whole_number
from traffik.strategies.base import IntTupleCodec, Params, Step, require_exact

__all__ = ["Priority", "PriorityQueue"]

PriorityState = tuple[int, int, int, int, int]


class Priority(IntEnum):
    """Request priorities, lowest first."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    CRITICAL = 4


def _as_priority(value: object) -> Priority | None:
    if isinstance(value, Priority):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4:
        return Priority(value)
    if isinstance(value, str):
        if value.upper() in Priority.__members__:
            return Priority[value.upper()]
        if value in ("1", "2", "3", "4"):  # 1.x wrote the level in the identity
            return Priority(int(value))
    return None


@dataclass(frozen=True, slots=True)
class PriorityQueue(IntTupleCodec):
    """Fixed-window budget where usage counts only against equal or lower priorities."""

    default_priority: Priority = Priority.NORMAL
    max_queue_size: int = 1000
    marker: str | None = "priority:"

    name: ClassVar[str] = "priority_queue"
    state_fields: ClassVar[int] = 5

    def __post_init__(self) -> None:
        priority = _as_priority(self.default_priority)
        if priority is None:
            raise ConfigurationError(
                f"PriorityQueue default_priority must be a Priority (LOW..CRITICAL, 1-4), "
                f"got {self.default_priority!r}"
            )
        object.__setattr__(self, "default_priority", priority)
        whole_number(self.max_queue_size, "PriorityQueue max_queue_size", minimum=1)
        object.__setattr__(self, "marker", checked_marker(self.marker, "PriorityQueue"))

    def priority_of(self, params: Params) -> Priority:
        """``params["priority"]`` when it names a priority, else the default one (an
        unrecognised one said in a warning, once)."""
        value = params.get("priority")
        priority = _as_priority(value)
        if priority is not None:
            return priority
        if value is not None:
            warn_unknown(
                "PriorityQueue priority", value, "LOW..CRITICAL (1-4)", self.default_priority
            )
        return self.default_priority

    def from_identity(self, identity: str) -> tuple[str, Params] | None:
        """traffik 1.x's form: the priority after ``marker`` in the identity, as params,
        and the identity without it (`traffik.strategies._markers`); None when unmarked."""
        marker = self.marker
        if marker is None:
            return None
        marked = split_marked(identity, marker)
        if marked is None:
            return None
        return marked[0], {"priority": marked[1]}

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this window cannot decide exactly (see `require_exact`)."""
        require_exact(self, rate, rate.limit + self.max_queue_size, rate.period_ms)

    def decide(
        self, state: PriorityState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[PriorityState]:
        self.check_rate(rate)
        period, limit, queue = rate.period_ms, rate.limit, self.max_queue_size
        priority = self.priority_of(params)
        window, now = aligned_window(now, period, None if state is None else state[0])
        usage = list(state[1:]) if state is not None and state[0] == window else [0, 0, 0, 0]
        seen = sum(usage[priority - 1 :])
        total = sum(usage)
        reset_ms = (window + 1) * period - now
        reset_after = reset_ms / 1000
        if cost == 0 or (seen + cost <= limit and total + cost <= queue):
            new_state: PriorityState | None = state
            if cost > 0:
                usage[priority - 1] += cost
                new_state = (window, usage[0], usage[1], usage[2], usage[3])
            remaining = max(0, min(limit - seen, queue - total) - cost)
            return new_state, Decision(True, limit, remaining, reset_after, 0.0), reset_ms
        remaining = max(0, min(limit - seen, queue - total))
        retry_after = math.inf if cost > min(limit, queue) else reset_after
        return state, Decision(False, limit, remaining, reset_after, retry_after), reset_ms

    def refund(
        self, state: PriorityState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[PriorityState | None, int]:
        if state is None:
            return None, 1
        window, now = aligned_window(now, rate.period_ms, state[0])
        if state[0] != window:
            return state, 1  # that window has closed: nothing to give back
        usage = list(state[1:])
        index = self.priority_of(params) - 1
        usage[index] = max(usage[index] - cost, 0)
        reset_ms = (window + 1) * rate.period_ms - now
        return (window, usage[0], usage[1], usage[2], usage[3]), reset_ms

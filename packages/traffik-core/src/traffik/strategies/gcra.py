"""GCRA, the generic cell rate algorithm: evenly spaced requests with a burst tolerance.

Rule: each unit of cost occupies an emission interval ``T = period / limit`` on a
schedule whose end is the theoretical arrival time ``TAT`` (never earlier than now). A
request of cost ``c`` is admitted when, after adding it, the schedule reaches at most
``burst_tolerance_ms + T`` past now: ``max(TAT, now) + c * T - now <= tolerance + T``;
then ``TAT = max(TAT, now) + c * T``. With ``"10/s"`` (T = 100 ms) and no tolerance,
requests pass one per 100 ms; with ``burst_tolerance_ms=400`` a burst of 5 passes at
once. Cost is honoured at admission: at ``"10/s"`` a cost of 3 needs 200 ms of tolerance
(the schedule would reach 300 ms ahead), and a cost above ``1 + tolerance / T`` units
never fits (infinite retry time). The retry time includes the tolerance. A refused
request changes nothing; a refund moves the schedule back by ``c * T``.

Decisions report ``limit = 1 + floor(tolerance / T)`` (the largest burst) and
``remaining`` = how many more units fit now.

Integer algorithm (the rate in lowest terms, ``L`` units per ``P`` ms, see
`traffik.strategies._bucket`; ``tau = burst_tolerance_ms``; state ``(level, last)``, 2
integers, where ``level = (TAT - last) * L``: the schedule in ``1/L`` ms, so one unit is
exactly ``P`` and one ms drains exactly ``L``)::

    cap = tau * L + P;  need = cost * P;  burst = cap // P   (require cap + L < 2**53)
    state is None:  level = 0, last = now
    otherwise:      if now > last:
                        if now - last >= ceil(level / L): level = 0
                        else: level -= (now - last) * L
                        last = now
    cost == 0:              allowed, state unchanged
    cost > burst:           refused, retry_after = inf
    level + need <= cap:    level += need; store (level, last)
                            allowed, remaining = (cap - level) // P
    otherwise:              refused, remaining = (cap - level) // P,
                            retry_ms = ceil((level + need - cap) / L)
    reset_ms = ceil(level / L)  (until TAT <= now);  ttl = max(reset_ms + max(last - now, 0), 1)
    refund(c): level = max(0, drained level - c * P)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from traffik.decision import Decision
from traffik.exceptions import ConfigurationError
from traffik.rates import Rate
from traffik.strategies._bucket import drain, keep_for, lowest_terms
from traffik.strategies.base import IntTupleCodec, Params, Step, ceil_div, require_exact

__all__ = ["GCRA"]

ScheduleState = tuple[int, int]


@dataclass(frozen=True, slots=True)
class GCRA(IntTupleCodec):
    """Generic cell rate algorithm with a burst tolerance in whole milliseconds."""

    burst_tolerance_ms: int = 0

    name: ClassVar[str] = "gcra"
    state_fields: ClassVar[int] = 2

    def __post_init__(self) -> None:
        tolerance: object = self.burst_tolerance_ms
        if isinstance(tolerance, float) and tolerance.is_integer():
            tolerance = int(tolerance)  # traffik 1.x took a float (0.0)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
            raise ConfigurationError(
                f"GCRA burst_tolerance_ms must be a whole number of milliseconds >= 0, "
                f"got {self.burst_tolerance_ms!r}"
            )
        object.__setattr__(self, "burst_tolerance_ms", tolerance)

    def burst(self, rate: Rate) -> int:
        """The most units admitted at once: ``1 + floor(tolerance / T)``."""
        return (self.burst_tolerance_ms * rate.limit + rate.period_ms) // rate.period_ms

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this schedule cannot decide exactly (see `require_exact`)."""
        limit, period = lowest_terms(rate)
        largest = self.burst_tolerance_ms * limit + period + limit
        require_exact(self, rate, largest, ceil_div(largest, limit))  # the schedule's end

    def decide(
        self, state: ScheduleState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[ScheduleState]:
        self.check_rate(rate)
        limit, period = lowest_terms(rate)
        cap = self.burst_tolerance_ms * limit + period
        burst = cap // period
        if state is None:
            level, last = 0, now
        else:
            level, last = drain(state[0], state[1], now, limit)
        need = cost * period
        if cost == 0 or (cost <= burst and level + need <= cap):
            level += need
            reset_ms = ceil_div(level, limit)
            decision = Decision(True, burst, (cap - level) // period, reset_ms / 1000, 0.0)
            new_state = state if cost == 0 else (level, last)
            return new_state, decision, keep_for(reset_ms, last, now)
        reset_ms = ceil_div(level, limit)
        retry_after = math.inf if cost > burst else ceil_div(level + need - cap, limit) / 1000
        decision = Decision(False, burst, (cap - level) // period, reset_ms / 1000, retry_after)
        return state, decision, keep_for(reset_ms, last, now)

    def refund(
        self, state: ScheduleState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[ScheduleState | None, int]:
        if state is None:
            return None, 1
        limit, period = lowest_terms(rate)
        level, last = drain(state[0], state[1], now, limit)
        level = max(0, level - cost * period)
        return (level, last), keep_for(ceil_div(level, limit), last, now)

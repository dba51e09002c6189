"""Concurrency: at most ``limit`` requests in flight per key, each holding a leased slot.

The rate is read differently from the window strategies: ``rate.limit`` is the number of
slots and ``rate.period_ms`` is the *lease*, the longest a slot may be held. A request of
cost ``c`` takes ``c`` slots when that many are free; it gives them back by a refund when
it ends. A slot whose holder never gives it back (the process crashed, the connection to
the store was lost) frees itself when its lease runs out, so a crash cannot leak capacity
for longer than one lease. Choose a lease longer than your slowest request: a request
still running when its lease ends no longer counts.

The stored state is the sorted tuple of lease expiry times, in milliseconds. Leases carry
no owner: a refund removes the leases that expire *first*. Every remaining lease then
expires no earlier than before, so a holder still running never loses its slot early.

A refused request takes nothing. Its retry time is the earlier of ``retry_after_ms`` (a
hint: slots are normally returned long before their lease ends) and the moment enough
leases run out; it is infinite when the cost exceeds the number of slots.
"""

from __future__ import annotations

import math
from bisect import insort
from dataclasses import dataclass
from typing import ClassVar

from traffik.decision import Decision
from traffik.rates import Rate
from traffik.strategies.base import IntTupleCodec, Params, Step, require_exact

__all__ = ["Concurrency"]

LeaseState = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Concurrency(IntTupleCodec):
    """Caps requests in flight: ``rate.limit`` slots, each leased for ``rate.period_ms``.

    :param retry_after_ms: what a refused client is told to wait, at most (the wait is
        shorter when a lease runs out sooner).
    """

    retry_after_ms: int = 1000

    name: ClassVar[str] = "concurrency"

    def __post_init__(self) -> None:
        hint = self.retry_after_ms
        if isinstance(hint, bool) or not isinstance(hint, int) or hint < 1:
            raise ValueError(
                f"Concurrency retry_after_ms must be a whole number >= 1, got {hint!r}"
            )

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate these leases cannot be decided exactly for (see `require_exact`)."""
        require_exact(self, rate, rate.limit, rate.period_ms)

    def decide(
        self, state: LeaseState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[LeaseState]:
        self.check_rate(rate)
        limit = rate.limit
        leases = _live(state, now)
        held = len(leases)
        if held + cost <= limit:
            taken = list(leases)
            expiry = now + rate.period_ms
            for _ in range(cost):
                insort(taken, expiry)
            new_state = tuple(taken)
            if not new_state:  # cost 0 on an empty key: nothing to keep
                return None, Decision(True, limit, limit, 0.0, 0.0), 1
            last = new_state[-1] - now
            decision = Decision(True, limit, limit - held - cost, last / 1000, 0.0)
            return new_state, decision, last
        if cost > limit:
            retry_after = math.inf
        else:
            # The (held + cost - limit)-th lease to run out frees the last slot needed.
            freed_at = leases[held + cost - limit - 1]
            retry_after = min(self.retry_after_ms, freed_at - now) / 1000
        last = leases[-1] - now if leases else 1
        decision = Decision(False, limit, limit - held, last / 1000, retry_after)
        return state, decision, max(last, 1)

    def refund(
        self, state: LeaseState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[LeaseState | None, int]:
        leases = _live(state, now)
        remaining = leases[cost:]
        if not remaining:
            return None, 1
        return remaining, remaining[-1] - now


def _live(state: LeaseState | None, now: int) -> LeaseState:
    """The leases still running at ``now`` (expired ones are dropped)."""
    if not state:
        return ()
    if state[0] > now:
        return state
    return tuple(expiry for expiry in state if expiry > now)

"""The strategy protocol: a rate-limiting algorithm as a pure decision.

A strategy never does I/O and never reads a clock. Given the state stored for one key
(``None`` when there is none), the time ``now`` in whole milliseconds, the rate, the
request's cost and its per-request ``params``, it returns::

    (new_state, decision, ttl_ms)

``new_state`` is what the backend must store (``None``: nothing needs keeping), and
``ttl_ms`` (at least 1) is how long it must be kept: after that it is equivalent to no
state at all. Returning the *same object* as the input state means "unchanged", so a
backend may skip the write — refused requests normally do that.

The backend applies this atomically: no other decision on the same key may come in
between the read and the write. Peeking (stats, headers) runs the same function and
stores nothing.

``refund`` gives ``cost`` back: it undoes an admitted request as far as time allows (a
window that has closed has nothing left to give back). Backends use it to release a
concurrency slot, and to undo the limits already consumed when a later one refuses on a
store that cannot decide several keys at once (memcached). It returns
``(new_state, ttl_ms)``.

A strategy may declare ``steady_refusals = True`` (a class attribute; False when absent)
when each of its refusals with a finite ``retry_after`` stores nothing and stays the same
refusal — for the same cost, on the same key, with the same ``limit`` and ``remaining``,
only its times counting down — until ``retry_after``, unless units are given back. Its
refusals may then be answered locally, without asking the backend again
(`traffik.refusals`). `FixedWindow` and `QuotaWithRollover` do; strategies whose refusals
end sooner as time passes (buckets, sliding windows) or depend on ``params`` do not.

Arithmetic is done in integers wherever a boundary is at stake (windows, refills), so
that every backend — including a Lua script in Redis, where numbers are doubles — reaches
the same decision. Keep intermediate integers below 2**53.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, Final, Protocol, TypeVar

from traffik.decision import Decision
from traffik.exceptions import ConfigurationError
from traffik.rates import Rate

__all__ = [
    "MAX_EXACT",
    "NO_PARAMS",
    "IntTupleCodec",
    "Params",
    "Step",
    "Strategy",
    "ceil_div",
    "require_exact",
]

Params = Mapping[str, object]
"""Per-request inputs to a strategy, such as ``{"tier": "premium"}``."""

NO_PARAMS: Final[Params] = MappingProxyType({})

StateT = TypeVar("StateT")

Step = tuple[StateT | None, Decision, int]
"""``(new_state, decision, ttl_ms)``, as returned by `Strategy.decide`."""


class Strategy(Protocol[StateT]):
    """What every strategy implements. See the module docstring for the contract."""

    @property
    def name(self) -> str:
        """A stable name, used in storage keys and to find a backend's native form."""
        ...

    def decide(
        self, state: StateT | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[StateT]: ...

    def encode(self, state: StateT) -> bytes:
        """Serialise a state for backends that store bytes."""
        ...

    def decode(self, data: bytes) -> StateT:
        """Inverse of `encode`; raise ValueError on data it cannot read."""
        ...

    def refund(
        self, state: StateT | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[StateT | None, int]:
        """Give ``cost`` back; ``(new_state, ttl_ms)``. The same object means unchanged."""
        ...


MAX_EXACT: Final = 2**53
"""Integers a decision may compute must stay below this (exact in a double, as in Lua)."""

_INTEGER = re.compile(rb"-?[0-9]+")


class IntTupleCodec:
    """Stores a tuple of integers as readable ASCII: ``b"28333333,7"``.

    ``state_fields`` (set by each strategy) is the number of integers a state holds;
    `decode` refuses anything else, and anything that is not plain decimal integers.
    """

    __slots__ = ()

    state_fields: ClassVar[int | None] = None

    def encode(self, state: tuple[int, ...]) -> bytes:
        return ",".join(map(str, state)).encode()

    def decode(self, data: bytes) -> tuple[int, ...]:
        parts = bytes(data).split(b",")
        expected = self.state_fields
        if expected is not None and len(parts) != expected:
            raise ValueError(f"expected {expected} comma-separated integers, got {data!r}")
        if not all(_INTEGER.fullmatch(part) for part in parts):
            raise ValueError(f"not a state of comma-separated integers: {data!r}")
        return tuple(int(part) for part in parts)


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding up (for positive denominators)."""
    return -(-numerator // denominator)


def require_exact(strategy: str, rate: object, largest: int) -> None:
    """Refuse a rate whose arithmetic would reach ``largest`` >= 2**53 (inexact in Lua).

    Each strategy calls this with the largest integer its decision can compute for the
    rate (say ``capacity * period_ms`` for a token bucket). Such rates are far beyond
    practical use (about 10**8 units per day for a token bucket).
    """
    if largest >= MAX_EXACT:
        raise ConfigurationError(
            f"{strategy}: rate {rate} is too large to decide exactly (it needs integers up "
            f"to {largest}, beyond 2**53); use a smaller limit or a shorter period"
        )

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

Arithmetic is done in integers wherever a boundary is at stake (windows, refills), so
that every backend — including a Lua script in Redis, where numbers are doubles — reaches
the same decision. Keep intermediate integers below 2**53.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Protocol, TypeVar

from traffik.decision import Decision
from traffik.rates import Rate

__all__ = ["NO_PARAMS", "IntTupleCodec", "Params", "Step", "Strategy", "ceil_div"]

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


class IntTupleCodec:
    """Stores a tuple of integers as readable ASCII: ``b"28333333,7"``."""

    __slots__ = ()

    def encode(self, state: tuple[int, ...]) -> bytes:
        return ",".join(map(str, state)).encode()

    def decode(self, data: bytes) -> tuple[int, ...]:
        return tuple(int(part) for part in data.split(b","))


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding up (for positive denominators)."""
    return -(-numerator // denominator)

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
the same decision. Keep intermediate integers below 2**53, and times below
`MAX_SPAN_MS` ahead of now. A strategy states what that means for a rate in a
``check_rate(rate)`` method (optional): it raises `ConfigurationError`, naming the rate
and the strategy, for a rate it cannot decide exactly. Throttles call it (`check_rate`)
when they are built with a fixed rate; built-in strategies also call it when they decide,
so that a rate a function returns is refused when first used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, Final, Protocol, TypeVar

from traffik._legacy_keywords import RefusesLockConfig
from traffik.decision import Decision
from traffik.exceptions import ConfigurationError
from traffik.rates import Rate

__all__ = [
    "LATEST_MS",
    "MAX_EXACT",
    "MAX_SPAN_MS",
    "NO_PARAMS",
    "IntTupleCodec",
    "Params",
    "Step",
    "Strategy",
    "ceil_div",
    "check_rate",
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

LATEST_MS: Final = 2**44
"""The latest ``now`` the bounds leave room for: milliseconds since 1970, in the year 2527."""

MAX_SPAN_MS: Final = MAX_EXACT - LATEST_MS
"""The farthest ahead of ``now`` a decision may compute a time (a window's end, a TTL, a
retry): about 285,000 years."""

_INTEGER = re.compile(rb"-?[0-9]+")


class IntTupleCodec(RefusesLockConfig):
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


def require_exact(strategy: object, rate: object, largest: int, span_ms: int = 0) -> None:
    """Refuse a rate whose arithmetic would reach ``largest`` >= 2**53 (inexact in Lua),
    or compute a time ``span_ms`` ahead of now beyond `MAX_SPAN_MS`.

    Each strategy's ``check_rate`` calls this with the largest integer its decision can
    compute for the rate (say ``capacity * period`` for a token bucket, the rate in
    lowest terms) and the farthest time ahead (a window's end, a bucket's refill).
    """
    what = strategy if isinstance(strategy, str) else type(strategy).__name__
    if largest >= MAX_EXACT:
        raise ConfigurationError(
            f"{what} cannot decide rate {rate} exactly: it needs integers up to {largest}, "
            "beyond 2**53 (what every backend, a Redis script included, computes exactly); "
            "use a smaller limit, a shorter period, or a limit sharing more factors with "
            "the period"
        )
    if span_ms > MAX_SPAN_MS:
        raise ConfigurationError(
            f"{what} cannot decide rate {rate} exactly: it needs times {span_ms} ms ahead, "
            f"beyond {MAX_SPAN_MS} ms; use a shorter period"
        )


def check_rate(strategy: object, rate: Rate | None) -> None:
    """Raise `ConfigurationError` when ``strategy`` cannot decide ``rate`` exactly.

    Calls the strategy's own ``check_rate(rate)``; a strategy without one (a user's own)
    and an unlimited or absent rate (a rate function, checked when first used) pass.
    """
    if rate is None or rate.limit == 0:
        return
    check = getattr(strategy, "check_rate", None)
    if check is not None:
        check(rate)

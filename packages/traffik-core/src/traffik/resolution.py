"""From a connection to what the backend is asked: an `Outcome` carrying a `Hit`, or a
final decision taken without the backend.

Two ways, chosen per throttle once (when it is made, and again when its ``gate``
changes):

* `resolve_now`, for the plain configuration: a fixed cost and rate, the default
  identity (read off the connection), no gate. Nothing to await.
* `resolve`, for every configuration: the user's functions (identifier, rate, cost,
  params) are awaited; when one fails, ``on_error`` decides (`traffik.error_policy.fail`);
  a `ConfigurationError` propagates (it reports a bug, not an outage).

Either short-circuits to `NOT_LIMITED` where no limit applies: the gate says no, cost 0,
an unlimited rate, an `EXEMPTED` identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from traffik.backends.base import Hit
from traffik.checks import Outcome
from traffik.decision import NOT_LIMITED
from traffik.error_policy import fail
from traffik.exceptions import ConfigurationError
from traffik.identities import EXEMPTED
from traffik.keys import throttle_key
from traffik.rates import Rate

if TYPE_CHECKING:
    from traffik.strategies.base import Params
    from traffik.throttle import Throttle

__all__ = ["checked_cost", "checked_rate", "resolve", "resolve_now"]

# `Hit(...)` without the keyword handling of its generated __new__ (the hot path's way).
_new_hit: Final = tuple.__new__


def resolve_now(
    throttle: Throttle[Any], connection: Any, key_suffix: str | None = None
) -> Outcome[Any] | None:
    """The plain configuration's outcome, ready for the backend; None when the identity
    is not a string (`EXEMPTED`, or a wrong type: `resolve` sees to it). The caller has
    checked ``throttle._resolves_now`` (or the gate); errors propagate."""
    read_identity = throttle._read_identity
    assert read_identity is not None
    identity = read_identity(connection)
    if type(identity) is not str:
        return None
    if key_suffix is None:
        key_suffix = throttle.key_suffix(connection)
    backend = throttle.backend
    if backend is None:
        backend = throttle._backend_for(connection)
    strategy = throttle.strategy
    key = throttle_key(throttle.uid, identity, key_suffix, strategy.name)
    hit = _new_hit(Hit, (key, strategy, throttle.rate, throttle.cost, throttle._params))
    return Outcome(throttle, NOT_LIMITED, hit, backend)


async def resolve(
    throttle: Throttle[Any],
    connection: Any,
    cost: int | None = None,
    params: Params | None = None,
    key_suffix: str | None = None,
) -> Outcome[Any]:
    """Resolve cost, rate, identity and key: an outcome with a `Hit` for the backend, or
    with the final decision (``outcome.hit`` None).

    ``cost`` and ``params`` replace the throttle's for this call; ``key_suffix`` replaces
    its `key_suffix` (a middleware keys a whole path prefix as one budget this way).
    """
    gate = throttle.gate
    if gate is not None and not await gate(connection):
        return Outcome(throttle)
    if throttle._read_identity is not None and throttle._plain and cost is None and params is None:
        try:
            plain = resolve_now(throttle, connection, key_suffix)
        except ConfigurationError:
            raise
        except Exception as exc:
            decision = await fail(
                throttle, connection, exc, key=None, cost=throttle.cost, rate=throttle.rate
            )
            return Outcome(throttle, decision)
        if plain is not None:
            return plain
    rate = throttle.rate
    key: str | None = None
    try:
        if cost is None:
            function = throttle._cost_function
            cost = (
                throttle.cost
                if function is None
                else checked_cost(await function(connection), throttle.uid)
            )
        elif type(cost) is not int or cost < 0:  # an int >= 0 needs no further check
            cost = checked_cost(cost, throttle.uid)
        if cost == 0:
            return Outcome(throttle)
        if rate is None:
            rate_function = throttle._rate_function
            assert rate_function is not None
            rate = checked_rate(await rate_function(connection), throttle.uid)
        if rate.limit == 0:
            return Outcome(throttle)
        read_identity = throttle._read_identity
        identity = (
            read_identity(connection)
            if read_identity is not None
            else await throttle.identifier(connection)
        )
        if type(identity) is not str:
            if identity is EXEMPTED:
                return Outcome(throttle)
            raise ConfigurationError(
                f"The identifier of throttle {throttle.uid!r} returned {identity!r}; "
                "it must return a string or EXEMPTED"
            )
        if params is None:
            params_function = throttle._params_function
            params = (
                throttle._params if params_function is None else await params_function(connection)
            )
        if throttle._marked is not None:
            identity, params = _marked(throttle._marked, identity, params)
        if key_suffix is None:
            key_suffix = throttle.key_suffix(connection)
        key = throttle_key(throttle.uid, identity, key_suffix, throttle.strategy.name)
    except ConfigurationError:
        raise
    except Exception as exc:
        decision = await fail(throttle, connection, exc, key=key, cost=cost, rate=rate)
        return Outcome(throttle, decision)
    backend = throttle.backend
    if backend is None:
        backend = throttle._backend_for(connection)
    hit = _new_hit(Hit, (key, throttle.strategy, rate, cost, params))
    return Outcome(throttle, NOT_LIMITED, hit, backend)


def _marked(
    read: Callable[[str], tuple[str, Params] | None], identity: str, params: Params
) -> tuple[str, Params]:
    """traffik 1.x's tier / priority in the identity (`traffik.strategies._markers`): the
    identity that keys the client, and ``params`` with the value under whatever they
    name themselves (params win)."""
    marked = read(identity)
    if marked is None:
        return identity, params
    rest, found = marked
    return rest, ({**found, **params} if params else found)


def checked_cost(cost: object, uid: str) -> int:
    """``cost`` when it is a whole number >= 0; else a `ConfigurationError` naming it."""
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
        raise ConfigurationError(
            f"Throttle {uid!r}: cost must be a whole number >= 0, got {cost!r}"
        )
    return cost


def checked_rate(rate: object, uid: str) -> Rate:
    """What a rate function returned, as a `Rate`; else a `ConfigurationError` naming it."""
    if isinstance(rate, Rate):
        return rate
    if isinstance(rate, str):
        return Rate.parse(rate)
    raise ConfigurationError(
        f"The rate function of throttle {uid!r} returned {rate!r}; expected a Rate or a string"
    )

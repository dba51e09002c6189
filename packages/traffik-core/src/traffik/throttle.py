"""The transport-agnostic throttle: connection -> identity -> key -> strategy -> backend.

`Throttle` is generic over the connection type. The web packages subclass it
(``HTTPThrottle`` is a ``Throttle[HTTPConnection]``); `Limiter` is the framework-free one,
whose "connection" is simply the key you choose. Every subclass keeps the meaning of
`hit`, `peek`, `check` and `stat`.

Checks short-circuit without touching a backend when the throttle is disabled, the cost
is 0, the rate is unlimited, or the identifier returns `EXEMPTED`.

This module is every check's path from the connection to the backend, and it is long for
that reason: the common configuration (fixed cost and rate, the default identity) has a
path without awaits (`prepare_plain`) beside the general one (`prepare`), and keeping them
side by side is what keeps them in step. What ``on_error`` decides lives in
`traffik.error_policy`; the framework-free `Limiter` in `traffik.limiter`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Generic, TypeVar

from traffik.backends.base import Hit, ThrottleBackend, get_default_backend
from traffik.callbacks import EMPTY_CONTEXT, connection_function
from traffik.decision import NOT_LIMITED, Decision
from traffik.error_policy import (
    STORE_FAILURES,
    ErrorContext,
    FailureWarnings,
    OnError,
    decide_on_error,
    validate_on_error,
)
from traffik.exceptions import ConfigurationError
from traffik.identities import EXEMPTED, ExemptedType
from traffik.keys import throttle_key, validate_key_part
from traffik.multi_limit import hit_all
from traffik.observability import OBSERVERS, report_decision, report_exempted, report_failure
from traffik.rates import Rate, RateLike
from traffik.refusals import RefusalCache, apply_hit, cached_refusal
from traffik.stats import ThrottleStat
from traffik.strategies.base import NO_PARAMS, Params, Strategy, check_rate
from traffik.strategies.fixed_window import FixedWindow

__all__ = [
    "CostFunction",
    "Identifier",
    "ParamsFunction",
    "RateFunction",
    "Throttle",
    "ThrottleStat",
    "hit_all",
]

C = TypeVar("C")

# Each function takes the connection, or (traffik 1.x) the connection and the context
# (a mapping; `Any` here so that 1.x annotations such as `Optional[Dict]` type-check).
Identifier = (
    Callable[[C], Awaitable[str | ExemptedType]] | Callable[[C, Any], Awaitable[str | ExemptedType]]
)
RateFunction = Callable[[C], Awaitable[RateLike]] | Callable[[C, Any], Awaitable[RateLike]]
CostFunction = Callable[[C], Awaitable[int]] | Callable[[C, Any], Awaitable[int]]
ParamsFunction = Callable[[C], Awaitable[Params]] | Callable[[C, Any], Awaitable[Params]]

# `Hit(...)` without the keyword handling of its generated __new__ (the hot path's way).
_new_hit: Final = tuple.__new__


class Throttle(Generic[C]):
    """Limits connections of type ``C`` at ``rate``, per identity.

    :param uid: a unique, stable name; part of every key (no braces).
    :param rate: a `Rate`, a string such as ``"100/min"``, or an async function of the
        connection returning either. Every function parameter also takes the traffik
        1.x form ``(connection, context)``, and a wrong signature is refused here
        (`traffik.callbacks`).
    :param identifier: an async function of the connection returning the client's identity
        (a string) or `EXEMPTED`. Subclasses provide a default.
    :param strategy: the algorithm; `FixedWindow` by default.
    :param backend: where state lives; by default the backend whose lifespan is running.
    :param cost: units each request consumes: an int >= 0 or an async function of the
        connection.
    :param on_error: what to do when deciding fails; overrides the backend's setting.
    :param params: per-request inputs for the strategy (such as a tier): a mapping or an
        async function of the connection.
    :param shadow: decide and record, but never refuse: try a new limit in production and
        watch what it would do. Transports (HTTP, WebSocket) let refused requests through.
    :param cache_refusals: answer a client's lasting refusal locally, without asking the
        backend, until its retry time (see `traffik.refusals`); None (the default) follows
        the backend's ``cache_refusals``, itself off by default.
    """

    #: What a 1.x-style function ``(connection, context)`` receives as its context
    #: (`traffik.callbacks`); web throttles set their own.
    context: Mapping[str, Any] = EMPTY_CONTEXT

    def __init__(
        self,
        uid: str,
        rate: RateLike | RateFunction[C],
        *,
        identifier: Identifier[C] | None = None,
        strategy: Strategy[Any] | None = None,
        backend: ThrottleBackend | None = None,
        cost: int | CostFunction[C] = 1,
        on_error: OnError | None = None,
        params: Params | ParamsFunction[C] | None = None,
        shadow: bool = False,
        cache_refusals: bool | None = None,
    ) -> None:
        self.uid = validate_key_part(uid, "Throttle uid")
        self.rate: Rate | None = None
        self._rate_function: Callable[[C], Awaitable[RateLike]] | None = None
        if callable(rate):
            self._rate_function = connection_function(
                rate, self, f"The rate function of throttle {uid!r}", "rate"
            )
        else:
            self.rate = Rate.of(rate)

        if strategy is None:
            strategy = FixedWindow()
        elif not callable(getattr(strategy, "decide", None)):
            raise ConfigurationError(f"strategy must have a decide() method, got {strategy!r}")
        self.strategy: Strategy[Any] = strategy
        check_rate(strategy, self.rate)  # a fixed rate the strategy cannot decide: refused now

        if backend is not None and not isinstance(backend, ThrottleBackend):
            raise ConfigurationError(f"backend must be a ThrottleBackend, got {backend!r}")
        self.backend = backend

        self.cost = 1
        self._cost_function: Callable[[C], Awaitable[int]] | None = None
        if callable(cost):
            self._cost_function = connection_function(
                cost, self, f"The cost function of throttle {uid!r}", "cost"
            )
        else:
            self.cost = _checked_cost(cost, uid)

        self._params: Params = NO_PARAMS
        self._params_function: Callable[[C], Awaitable[Params]] | None = None
        if callable(params):
            self._params_function = connection_function(
                params, self, f"The params function of throttle {uid!r}", "params"
            )
        elif params is not None:
            self._params = params

        #: `default_identity` when it stands for the identifier: no await needed.
        self._read_identity: Callable[[C], str | ExemptedType] | None = None
        if identifier is None:
            if type(self).default_identifier is Throttle.default_identifier:
                raise ConfigurationError(f"Throttle {uid!r} needs an identifier")
            identifier = self.default_identifier
            if _has_sync_default(type(self)):
                self._read_identity = self.default_identity
        else:
            what = f"The identifier of throttle {uid!r}"
            identifier = connection_function(identifier, self, what, "identifier")
        self.identifier: Callable[[C], Awaitable[str | ExemptedType]] = identifier
        # Whether `key_suffix` is overridden (the base one adds nothing: no call needed).
        self._suffixed = type(self).key_suffix is not Throttle.key_suffix
        #: An async predicate of the connection that `prepare` asks first, when set: False
        #: means this throttle does not limit the connection (`NOT_LIMITED`). Its errors
        #: propagate. Subclasses set it (HTTP throttles, to their rules).
        self.gate: Callable[[C], Awaitable[bool]] | None = None

        #: Whether cost, rate and params are fixed (no function), the cost above 0 and the
        #: rate limited: `prepare` then has nothing to resolve but the identity and key.
        self._plain = (
            self._cost_function is None
            and self._params_function is None
            and self.rate is not None
            and self.rate.limit > 0
            and self.cost > 0
        )
        #: Whether `prepare_plain` may stand for `prepare` (not overridden by a subclass),
        #: for calls with the default cost and params.
        self.plain_prepare = (
            self._plain
            and self._read_identity is not None
            and type(self).prepare is Throttle.prepare
        )
        self.on_error = validate_on_error(on_error)
        if not isinstance(shadow, bool):
            raise ConfigurationError(f"shadow must be True or False, got {shadow!r}")
        #: Shadow mode: decide and record as usual, but never refuse a request. The
        #: decisions still say what the limit would do (for headers, metrics, logs).
        self.shadow = shadow
        if cache_refusals is not None and not isinstance(cache_refusals, bool):
            raise ConfigurationError(
                f"cache_refusals must be True, False or None, got {cache_refusals!r}"
            )
        #: Whether refusals are answered locally (None: as the backend says).
        self.cache_refusals = cache_refusals
        self._disabled = False
        self._failure_warnings = FailureWarnings()

    # -- extension points ------------------------------------------------------------

    async def default_identifier(self, connection: C) -> str | ExemptedType:
        """The identity used when no ``identifier`` is given. Subclasses define it."""
        raise NotImplementedError

    def default_identity(self, connection: C) -> str | ExemptedType:
        """`default_identifier` without an await, for subclasses whose default identity
        needs none (it only reads the connection). When a class defines both, throttles
        with the default identifier call this one; it must return the same identity."""
        raise NotImplementedError

    def key_suffix(self, connection: C) -> str:
        """Extra key parts after the identity (say ``":GET:/items"``); empty by default."""
        return ""

    def find_backend(self, connection: C) -> ThrottleBackend | None:
        """Where a throttle without an explicit backend looks first (say, the app's)."""
        return None

    # -- switching -------------------------------------------------------------------

    def disable(self) -> None:
        """Let every request through without touching the backend."""
        self._disabled = True

    def enable(self) -> None:
        self._disabled = False

    @property
    def is_disabled(self) -> bool:
        return self._disabled

    # -- decisions -------------------------------------------------------------------

    async def hit(
        self, connection: C, *, cost: int | None = None, params: Params | None = None
    ) -> Decision:
        """Consume ``cost`` for this connection's client and return the decision."""
        if OBSERVERS:
            return await self._observed(connection, cost, params, peek=False)
        if self._disabled:
            return NOT_LIMITED
        prepared: Decision | tuple[ThrottleBackend, Hit] | None = None
        if self.plain_prepare and cost is None and params is None:
            try:
                prepared = self.prepare_plain(connection)
            except ConfigurationError:
                raise
            except Exception:
                prepared = None  # `prepare` meets the error again, and gives it to on_error
        if prepared is None:
            prepared = await self.prepare(connection, cost, params)
        if isinstance(prepared, Decision):
            return prepared
        backend, hit = prepared
        try:
            return await self.apply_to(backend, hit)
        except Exception as exc:
            return await self._on_failure(exc, connection, hit, backend)

    async def peek(self, connection: C, *, cost: int = 1, params: Params | None = None) -> Decision:
        """The decision a request of ``cost`` would get now, consuming nothing."""
        if OBSERVERS:
            return await self._observed(connection, cost, params, peek=True)
        if self._disabled:
            return NOT_LIMITED
        prepared = await self.prepare(connection, cost, params)
        if isinstance(prepared, Decision):
            return prepared
        backend, hit = prepared
        try:
            return await backend.peek(*hit)
        except Exception as exc:
            return await self._on_failure(exc, connection, hit, backend)

    async def _observed(
        self, connection: C, cost: int | None, params: Params | None, *, peek: bool
    ) -> Decision:
        """`hit` (or `peek`) while observers listen: the same decision, reported."""
        if self._disabled:
            report_exempted(self, peek=peek)
            return NOT_LIMITED
        prepared = await self.prepare(connection, cost, params)
        if isinstance(prepared, Decision):
            if prepared is NOT_LIMITED:  # anything else came from on_error, which reported it
                report_exempted(self, peek=peek)
            return prepared
        backend, hit = prepared
        return await self.apply_prepared(connection, backend, hit, peek=peek)

    async def apply_prepared(
        self, connection: C, backend: ThrottleBackend, hit: Hit, *, peek: bool = False
    ) -> Decision:
        """Apply (or, with ``peek``, look at) one hit that `prepare` made, on its own.

        What `hit` does after `prepare`: a failure goes to ``on_error``, and observers
        hear of the decision. For callers that decide prepared hits themselves.
        """
        return (await self.decide_prepared(connection, backend, hit, peek=peek))[0]

    async def decide_prepared(
        self, connection: C, backend: ThrottleBackend, hit: Hit, *, peek: bool = False
    ) -> tuple[Decision, bool]:
        """`apply_prepared`, and whether the backend decided: False when ``on_error`` did
        (the backend failed) or a remembered refusal answered without it."""
        observed = bool(OBSERVERS)
        cache = None if peek else self.refusals_on(backend)
        if cache is not None:
            refusal = cached_refusal(cache, hit)
            if refusal is not None:  # decided without the backend: no latency to report
                if observed:
                    report_decision(self, hit, refusal, None)
                return refusal, False
        started = time.perf_counter() if observed else 0.0
        try:
            if peek:
                decision = await backend.peek(*hit)
            elif cache is None:
                decision = await backend.apply(*hit)
            else:
                decision = await apply_hit(cache, backend, hit)
        except Exception as exc:
            latency = time.perf_counter() - started if observed else None
            failure = await self._on_failure(
                exc, connection, hit, backend, latency=latency, peek=peek
            )
            return failure, False
        if observed:
            report_decision(self, hit, decision, time.perf_counter() - started, peek=peek)
        return decision, True

    async def check(self, connection: C, *, cost: int = 1, params: Params | None = None) -> bool:
        """Whether a request of ``cost`` would be allowed now (consumes nothing)."""
        return (await self.peek(connection, cost=cost, params=params)).allowed

    async def stat(self, connection: C, *, params: Params | None = None) -> ThrottleStat | None:
        """This client's standing, or None when no limit applies to it."""
        if self._disabled:
            return None
        prepared = await self.prepare(connection, 1, params)
        if isinstance(prepared, Decision):
            return None
        backend, hit = prepared
        return ThrottleStat.from_peek(hit, await backend.peek(*hit))

    async def refund(
        self, connection: C, *, cost: int | None = None, params: Params | None = None
    ) -> None:
        """Give back what a request of ``cost`` consumed (say, work that was never done)."""
        if self._disabled:
            return
        prepared = await self.prepare(connection, cost, params)
        if not isinstance(prepared, Decision):
            backend, hit = prepared
            await backend.refund(*hit)

    async def reset(self, connection: C) -> None:
        """Forget this client's state for this throttle."""
        prepared = await self.prepare(connection, 1, None)
        if not isinstance(prepared, Decision):
            backend, hit = prepared
            await backend.delete(hit.key)

    async def prepare(
        self,
        connection: C,
        cost: int | None,
        params: Params | None,
        *,
        key_suffix: str | None = None,
    ) -> Decision | tuple[ThrottleBackend, Hit]:
        """Resolve cost, rate, identity and key: a `Hit` for the backend, or a final decision.

        The final decision is `NOT_LIMITED` for the short-circuits (``gate`` says no, cost
        0, unlimited rate, an `EXEMPTED` identity), or what ``on_error``
        says when a function supplied by the user fails (ConfigurationError propagates:
        it reports a bug, not an outage). ``key_suffix`` replaces `key_suffix` for this
        call (a middleware keys a whole path prefix as one budget this way).
        """
        gate = self.gate
        if gate is not None and not await gate(connection):
            return NOT_LIMITED
        if self._read_identity is not None and self._plain and cost is None and params is None:
            try:
                plain = self._plain_hit(connection, key_suffix)
            except ConfigurationError:
                raise
            except Exception as exc:
                return await self._on_failure(
                    exc, connection, None, None, key=None, cost=self.cost, rate=self.rate
                )
            if plain is not None:
                return plain
        rate = self.rate
        key: str | None = None
        try:
            if cost is None:
                function = self._cost_function
                cost = (
                    self.cost
                    if function is None
                    else _checked_cost(await function(connection), self.uid)
                )
            elif type(cost) is not int or cost < 0:  # an int >= 0 needs no further check
                cost = _checked_cost(cost, self.uid)
            if cost == 0:
                return NOT_LIMITED
            if rate is None:
                assert self._rate_function is not None
                rate = _checked_rate(await self._rate_function(connection), self.uid)
            if rate.limit == 0:
                return NOT_LIMITED
            read_identity = self._read_identity
            identity = (
                read_identity(connection)
                if read_identity is not None
                else await self.identifier(connection)
            )
            if type(identity) is not str:
                if identity is EXEMPTED:
                    return NOT_LIMITED
                raise ConfigurationError(
                    f"The identifier of throttle {self.uid!r} returned {identity!r}; "
                    "it must return a string or EXEMPTED"
                )
            if params is None:
                params_function = self._params_function
                params = (
                    self._params if params_function is None else await params_function(connection)
                )
            if key_suffix is None:
                key_suffix = self.key_suffix(connection) if self._suffixed else ""
            key = throttle_key(self.uid, identity, key_suffix, self.strategy.name)
        except ConfigurationError:
            raise
        except Exception as exc:
            return await self._on_failure(
                exc, connection, None, None, key=key, cost=cost, rate=rate
            )
        backend = self.backend
        if backend is None:
            backend = self._backend_for(connection)
        return backend, _new_hit(Hit, (key, self.strategy, rate, cost, params))

    def prepare_plain(
        self, connection: C, key_suffix: str | None = None
    ) -> tuple[ThrottleBackend, Hit] | None:
        """`prepare` for the common configuration, with nothing to await: a fixed cost and
        rate, the default identity, no ``gate``. None when that is not the case here (then
        `prepare` decides); errors propagate (`prepare` gives them to ``on_error``)."""
        if self._read_identity is None or not self._plain or self.gate is not None:
            return None
        return self._plain_hit(connection, key_suffix)

    def _plain_hit(
        self, connection: C, key_suffix: str | None
    ) -> tuple[ThrottleBackend, Hit] | None:
        """`prepare_plain` once its conditions are checked (and the ``gate`` passed)."""
        assert self._read_identity is not None
        identity = self._read_identity(connection)
        if type(identity) is not str:
            return None  # EXEMPTED or a wrong type: `prepare` sees to it
        if key_suffix is None:
            key_suffix = self.key_suffix(connection) if self._suffixed else ""
        backend = self.backend
        if backend is None:
            backend = self._backend_for(connection)
        strategy = self.strategy
        key = throttle_key(self.uid, identity, key_suffix, strategy.name)
        return backend, _new_hit(Hit, (key, strategy, self.rate, self.cost, self._params))

    async def apply_to(self, backend: ThrottleBackend, hit: Hit) -> Decision:
        """``backend.apply`` of ``hit``, or a refusal this throttle remembers there (see
        `refusals_on`). Failures propagate: callers give them to ``on_error``."""
        cache = self.refusals_on(backend)
        if cache is None:
            key, strategy, rate, units, params = hit  # faster than *hit: Hit is no plain tuple
            return await backend.apply(key, strategy, rate, units, params)
        return await apply_hit(cache, backend, hit)

    def refusals_on(self, backend: ThrottleBackend) -> RefusalCache | None:
        """The refusal cache this throttle's hits on ``backend`` go through, if any."""
        setting = self.cache_refusals
        if setting is None:
            return backend.refusal_cache
        return backend.refusals() if setting else None

    def _backend_for(self, connection: C) -> ThrottleBackend:
        backend = self.backend
        if backend is None:
            backend = self.find_backend(connection)
            if backend is None:
                backend = get_default_backend()
        if backend is None:
            raise ConfigurationError(
                f"Throttle {self.uid!r} has no backend: pass backend=..., or run one with "
                "FastAPI(lifespan=backend.lifespan) or 'async with backend:'"
            )
        return backend

    # -- failures --------------------------------------------------------------------

    async def failure_decision(
        self,
        exc: Exception,
        connection: C,
        hit: Hit,
        backend: ThrottleBackend,
        *,
        latency: float | None = None,
        peek: bool = False,
    ) -> Decision:
        """What ``on_error`` decides when ``backend`` failed to apply ``hit``.

        For callers that apply prepared hits themselves (several throttles at once).
        ``latency`` (seconds the failed call took) and ``peek`` go to observers.
        """
        return await self._on_failure(exc, connection, hit, backend, latency=latency, peek=peek)

    async def _on_failure(
        self,
        exc: Exception,
        connection: C,
        hit: Hit | None,
        backend: ThrottleBackend | None,
        *,
        key: str | None = None,
        cost: int | None = None,
        rate: Rate | None = None,
        latency: float | None = None,
        peek: bool = False,
    ) -> Decision:
        """What ``on_error`` makes of a failure; observers hear of it either way."""
        if hit is not None:
            key, cost, rate = hit.key, hit.cost, hit.rate
        if not OBSERVERS:
            return await self._on_error_decision(exc, connection, hit, backend, key, cost, rate)
        try:
            decision = await self._on_error_decision(exc, connection, hit, backend, key, cost, rate)
        except Exception:
            report_failure(self, exc, None, key=key, cost=cost, latency=latency, peek=peek)
            raise
        report_failure(self, exc, decision, key=key, cost=cost, latency=latency, peek=peek)
        return decision

    async def _on_error_decision(
        self,
        exc: Exception,
        connection: C,
        hit: Hit | None,
        backend: ThrottleBackend | None,
        key: str | None,
        cost: int | None,
        rate: Rate | None,
    ) -> Decision:
        if hit is not None and not isinstance(exc, STORE_FAILURES):
            raise exc  # the store did not fail: a strategy's error or a bug never admits
        policy = self.on_error
        if policy is None:
            if backend is None:
                try:
                    backend = self._backend_for(connection)
                except ConfigurationError:
                    backend = None
            policy = backend.on_error if backend is not None else "allow"
        if policy != "raise":  # a raised error speaks for itself
            self._failure_warnings.warn(self.uid, exc, policy)
        context = ErrorContext(exc, connection, key, cost, rate, backend, self)
        return await decide_on_error(policy, context, from_backend=hit is not None)

    def __repr__(self) -> str:
        rate = self.rate if self.rate is not None else self._rate_function
        return f"{type(self).__name__}({self.uid!r}, rate={rate!r}, strategy={self.strategy!r})"


def _has_sync_default(cls: type) -> bool:
    """Whether ``cls`` has a `default_identity` that stands for its `default_identifier`:
    defined by the class that defines the identifier, or by a subclass of it."""
    identity_owner = next(c for c in cls.__mro__ if "default_identity" in vars(c))
    identifier_owner = next(c for c in cls.__mro__ if "default_identifier" in vars(c))
    return identity_owner is not Throttle and issubclass(identity_owner, identifier_owner)


def _checked_cost(cost: object, uid: str) -> int:
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
        raise ConfigurationError(
            f"Throttle {uid!r}: cost must be a whole number >= 0, got {cost!r}"
        )
    return cost


def _checked_rate(rate: object, uid: str) -> Rate:
    if isinstance(rate, Rate):
        return rate
    if isinstance(rate, str):
        return Rate.parse(rate)
    raise ConfigurationError(
        f"The rate function of throttle {uid!r} returned {rate!r}; expected a Rate or a string"
    )

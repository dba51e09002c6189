"""The transport-agnostic throttle: connection -> identity -> key -> strategy -> backend.

`Throttle` is generic over the connection type. The web packages subclass it
(``HTTPThrottle`` is a ``Throttle[HTTPConnection]``); `Limiter` is the framework-free one,
whose "connection" is simply the key you choose. Every subclass keeps the meaning of
`decide`, `hit`, `peek`, `check` and `stat`: `decide` consumes and returns the `Decision`;
`hit` consumes and refuses (traffik 1.x's "check and apply"), returning the connection.

Checks short-circuit without touching a backend when the throttle is disabled, the cost
is 0, the rate is unlimited, or the identifier returns `EXEMPTED`.

This module is the throttle's configuration and the verbs users call. Every decision is
taken by `traffik.pipeline` (from a connection to a `Hit`: `traffik.resolution`); what
``on_error`` decides lives in `traffik.error_policy`; the framework-free `Limiter` in
`traffik.limiter`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from traffik._legacy_keywords import check_min_wait_period
from traffik._legacy_methods import SWITCHED, LegacyThrottleMethods, Switched
from traffik.backends.base import ThrottleBackend, get_default_backend
from traffik.backends.current import current_backend
from traffik.callbacks import EMPTY_CONTEXT, connection_function
from traffik.decision import Decision
from traffik.error_policy import FailureWarnings, OnError, validate_on_error
from traffik.exceptions import ConfigurationError, RateLimitExceeded
from traffik.identities import ExemptedType
from traffik.keys import validate_key_part
from traffik.pipeline import decide_one, hit_all, stat
from traffik.rates import Rate, RateLike
from traffik.resolution import checked_cost, resolve
from traffik.stats import ThrottleStat
from traffik.strategies.base import NO_PARAMS, Params, Strategy, check_rate
from traffik.strategies.fixed_window import FixedWindow

if TYPE_CHECKING:
    from traffik.quota_context import ApplyOnError, QuotaContext

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


class Throttle(LegacyThrottleMethods, Generic[C]):
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
    :param dynamic_backend: find the backend on every hit from the current context
        (``async with backend:`` around the request: per-tenant backends), before the
        application's and the process default (`traffik.backends.current`). Refused with
        an explicit ``backend``. Without it a throttle ignores the context.
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
        min_wait_period: float | None = None,
        dynamic_backend: bool = False,
    ) -> None:
        self.uid = validate_key_part(uid, "Throttle uid")
        #: traffik 1.x's floor on a refusal's wait, in milliseconds (None: none).
        self.min_wait_period = check_min_wait_period(min_wait_period, uid)
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
        #: traffik 1.x's tier / priority written in the identity, read by the strategy
        #: (`traffik.strategies._markers`); None for strategies that read none.
        self._marked: Callable[[str], tuple[str, Params] | None] | None = None
        if getattr(strategy, "marker", None) is not None:
            self._marked = getattr(strategy, "from_identity", None)

        if backend is not None and not isinstance(backend, ThrottleBackend):
            raise ConfigurationError(f"backend must be a ThrottleBackend, got {backend!r}")
        self.backend = backend
        if not isinstance(dynamic_backend, bool):
            raise ConfigurationError(
                f"dynamic_backend must be True or False, got {dynamic_backend!r}"
            )
        if dynamic_backend and backend is not None:
            raise ConfigurationError(
                f"Throttle {uid!r}: dynamic_backend=True finds the backend of each request "
                f"(`async with backend:` around it), so it takes no backend=; got {backend!r}"
            )
        #: Whether the backend is found per hit from the current context.
        self.dynamic_backend = dynamic_backend

        self.cost = 1
        self._cost_function: Callable[[C], Awaitable[int]] | None = None
        if callable(cost):
            self._cost_function = connection_function(
                cost, self, f"The cost function of throttle {uid!r}", "cost"
            )
        else:
            self.cost = checked_cost(cost, uid)

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
        #: Whether cost, rate and params are fixed (no function), the cost above 0 and the
        #: rate limited: only the identity and key are left to resolve per request.
        self._plain = (
            self._cost_function is None
            and self._params_function is None
            and self.rate is not None
            and self.rate.limit > 0
            and self.cost > 0
            and self._marked is None
        )
        self._resolves_now = False
        self.gate = None
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

    def disable(self) -> Switched:
        """Let every request through without touching the backend. Done at once; the
        result may be awaited (traffik 1.x's ``await throttle.disable()``)."""
        self._disabled = True
        return SWITCHED

    def enable(self) -> Switched:
        """Limit again (awaitable, as `disable`)."""
        self._disabled = False
        return SWITCHED

    @property
    def is_disabled(self) -> bool:
        return self._disabled

    # -- the gate ------------------------------------------------------------------

    @property
    def gate(self) -> Callable[[C], Awaitable[bool]] | None:
        """An async predicate of the connection asked before anything else, when set:
        False means this throttle does not limit the connection (`NOT_LIMITED`). Its
        errors propagate. Subclasses set it (HTTP throttles, to their rules)."""
        return self._gate

    @gate.setter
    def gate(self, gate: Callable[[C], Awaitable[bool]] | None) -> None:
        self._gate = gate
        # Whether `traffik.resolution.resolve_now` resolves this throttle's calls (those
        # with its own cost and params): a plain configuration, nothing to await.
        self._resolves_now = self._plain and self._read_identity is not None and gate is None

    # -- decisions -------------------------------------------------------------------

    async def decide(
        self, connection: C, *, cost: int | None = None, params: Params | None = None
    ) -> Decision:
        """Consume ``cost`` for this connection's client and return the decision.

        The primitive under every other verb: it refuses nothing itself (nothing is
        raised, no handler is called, no queueing delay is waited out), so the caller
        reads the `Decision` and acts on it.
        """
        return (await decide_one(self, connection, cost, params)).decision

    async def hit(self, connection: C, *, cost: int | None = None) -> C:
        """Check and apply, as in traffik 1.x: consume ``cost``, refuse the connection
        when over the limit, and return it.

        On this class a refusal raises `RateLimitExceeded`; the web throttles call their
        refusal handler instead (HTTP 429, the WebSocket notice). An admission waits out a
        queueing strategy's ``delay``; a shadow throttle never refuses. For the `Decision`
        itself, call `decide`.
        """
        decision = await self.decide(connection, cost=cost)
        if not decision.allowed:
            if not self.shadow:
                raise RateLimitExceeded(decision, f"Throttle {self.uid!r}: rate limit exceeded")
        elif decision.delay > 0:
            await asyncio.sleep(decision.delay)
        return connection

    async def peek(self, connection: C, *, cost: int = 1, params: Params | None = None) -> Decision:
        """The decision a request of ``cost`` would get now, consuming nothing."""
        return (await decide_one(self, connection, cost, params, peek=True)).decision

    async def check(self, connection: C, *, cost: int = 1, params: Params | None = None) -> bool:
        """Whether a request of ``cost`` would be allowed now (consumes nothing)."""
        return (await self.peek(connection, cost=cost, params=params)).allowed

    async def stat(self, connection: C, *, params: Params | None = None) -> ThrottleStat | None:
        """This client's standing, or None when no limit applies to it."""
        return await stat(self, connection, params)

    async def refund(
        self, connection: C, *, cost: int | None = None, params: Params | None = None
    ) -> None:
        """Give back what a request of ``cost`` consumed (say, work that was never done)."""
        if self._disabled:
            return
        outcome = await resolve(self, connection, cost, params)
        if outcome.hit is not None and outcome.backend is not None:
            await outcome.backend.refund(*outcome.hit)

    async def reset(self, connection: C) -> None:
        """Forget this client's state for this throttle."""
        outcome = await resolve(self, connection, 1, None)
        if outcome.hit is not None and outcome.backend is not None:
            await outcome.backend.delete(outcome.hit.key)

    def quota(
        self,
        connection: C,
        context: Mapping[str, Any] | None = None,
        *,
        apply_on_error: ApplyOnError = False,
        apply_on_exit: bool = True,
        lock: bool | str | None = None,
        lock_config: Mapping[str, Any] | None = None,
        parent: QuotaContext[C] | None = None,
    ) -> QuotaContext[C]:
        """A quota context bound to this throttle (`traffik.quota_context`): queue costs,
        consumed together, all-or-nothing, when the ``async with`` block succeeds."""
        from traffik.quota_context import QuotaContext

        return QuotaContext(
            connection,
            context,
            owner=self,
            apply_on_error=apply_on_error,
            apply_on_exit=apply_on_exit,
            lock=lock,
            lock_config=lock_config,
            parent=parent,
        )

    def _backend_for(self, connection: C) -> ThrottleBackend:
        backend = self.backend
        if backend is None:
            if self.dynamic_backend:
                backend = current_backend()
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

    def __repr__(self) -> str:
        rate = self.rate if self.rate is not None else self._rate_function
        return f"{type(self).__name__}({self.uid!r}, rate={rate!r}, strategy={self.strategy!r})"


def _has_sync_default(cls: type) -> bool:
    """Whether ``cls`` has a `default_identity` that stands for its `default_identifier`:
    defined by the class that defines the identifier, or by a subclass of it."""
    identity_owner = next(c for c in cls.__mro__ if "default_identity" in vars(c))
    identifier_owner = next(c for c in cls.__mro__ if "default_identifier" in vars(c))
    return identity_owner is not Throttle and issubclass(identity_owner, identifier_owner)

"""`HTTPThrottle`: a throttle for Starlette and FastAPI requests.

Use it as a FastAPI dependency (``Depends(throttle)``), through `throttled` or
`ThrottleMiddleware`, or await it yourself (``await throttle(request, cost=2)``). Over the
limit it calls ``handle_throttled``, which by default raises `ConnectionThrottled`
(HTTP 429 with ``Retry-After``).

Keys are per client, per route and per method by default:
``<uid>:{<client>}:<METHOD>:<route>:<strategy>``, where the route is its template
(``/items/{id}`` is one budget for every id) when the router matched one. ``key_by`` picks
the concrete path instead, or drops the path (one budget per client for everything the
throttle guards); ``use_method=False`` drops the method.

The first throttle to run on a request decides, in one all-or-nothing step, every
throttle the route declares (see `traffik.fastapi.routes`); the others find their
decision on the request (`traffik.fastapi.ledger`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final, Literal

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Scope

from traffik.backends.base import APP_STATE_ATTRIBUTE, Hit, ThrottleBackend
from traffik.decision import NOT_LIMITED, Decision
from traffik.error_policy import OnError
from traffik.exceptions import ConfigurationError
from traffik.fastapi.batch import Call, Outcome
from traffik.fastapi.handlers import raise_throttled, resolve_refusal_handler
from traffik.fastapi.headers import (
    HeaderSpec,
    HeaderTemplate,
    header_mask,
    header_template,
    policy_item,
    policy_name,
    render_headers,
)
from traffik.fastapi.ledger import LEDGER_KEY, RequestLedger, wait_out
from traffik.fastapi.methods import key_method
from traffik.fastapi.proxies import address_identity, get_remote_address
from traffik.fastapi.registry import GLOBAL_REGISTRY, ThrottleRegistry
from traffik.fastapi.routes import RouteInfo, route_info, route_throttles
from traffik.fastapi.rules import Rule, order_rules, rules_allow
from traffik.identities import ExemptedType
from traffik.observability import OBSERVERS
from traffik.rates import RateLike
from traffik.strategies.base import Params, Strategy
from traffik.throttle import CostFunction, Identifier, ParamsFunction, RateFunction, Throttle

__all__ = [
    "KEY_BY",
    "BaseHTTPThrottle",
    "HTTPThrottle",
    "KeyBy",
    "MillisecondHandler",
    "RequestThrottle",
    "ThrottledHandler",
    "enter",
]

KeyBy = Literal["route", "path", "client"]
KEY_BY: Final = ("route", "path", "client")

ThrottledHandler = Callable[
    [HTTPConnection, Decision, "BaseHTTPThrottle", Mapping[str, Any]], Awaitable[Any]
]
"""``on_throttled(connection, decision, throttle, context)``, called on refusal."""

MillisecondHandler = Callable[
    [HTTPConnection, float, "BaseHTTPThrottle", Mapping[str, Any]], Awaitable[Any]
]
"""``handle_throttled(connection, wait_ms, throttle, context)``: the traffik 1.x form."""

_NO_CONTEXT: Final[Mapping[str, Any]] = {}


class DependencySignature:
    """What FastAPI sees of a throttle's ``__call__``: ``(request, response)``.

    The real ``__call__`` also takes ``cost`` and ``context`` for direct calls; FastAPI
    would publish those as query parameters. (On the class itself this is None, so
    ``inspect.signature(HTTPThrottle)`` still describes the constructor.)
    """

    signature: Final = inspect.Signature(
        [
            inspect.Parameter(
                "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
            ),
            inspect.Parameter(
                "response", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Response
            ),
        ]
    )

    def __get__(self, instance: object, owner: type | None = None) -> inspect.Signature | None:
        return self.signature if instance is not None else None


class BaseHTTPThrottle(Throttle[HTTPConnection]):
    """What every HTTP throttle shares; see `HTTPThrottle` for the parameters."""

    #: Whether an admitted request holds its units until it ends (a concurrency slot).
    holds: ClassVar[bool] = False
    #: The ASGI scope type this throttle limits: "http", or "websocket" for
    #: ``WebSocketThrottle`` (traffik-websocket). `ThrottleMiddleware` applies a throttle
    #: to scopes of its type only.
    scope_type: ClassVar[str] = "http"
    #: The draft's ``qu`` quota unit, when not "requests".
    quota_unit: ClassVar[bytes | None] = None

    def __init__(
        self,
        uid: str,
        rate: RateLike | RateFunction[HTTPConnection],
        *,
        identifier: Identifier[HTTPConnection] | None = None,
        strategy: Strategy[Any] | None = None,
        backend: ThrottleBackend | None = None,
        cost: int | CostFunction[HTTPConnection] = 1,
        on_error: OnError | None = None,
        params: Params | ParamsFunction[HTTPConnection] | None = None,
        handle_throttled: MillisecondHandler | None = None,
        use_method: bool = True,
        key_by: KeyBy = "route",
        headers: HeaderSpec | None = None,
        context: Mapping[str, Any] | None = None,
        rules: Iterable[Rule] = (),
        registry: ThrottleRegistry | None = None,
        shadow: bool = False,
        cache_refusals: bool | None = None,
        on_throttled: ThrottledHandler | None = None,
    ) -> None:
        super().__init__(
            uid,
            rate,
            identifier=identifier,
            strategy=strategy,
            backend=backend,
            cost=cost,
            on_error=on_error,
            params=params,
            shadow=shadow,
            cache_refusals=cache_refusals,
        )
        #: What a refusal calls: ``on_throttled``, or ``handle_throttled`` adapted to it
        #: (`traffik.fastapi.handlers.resolve_refusal_handler`), or `raise_throttled`.
        self.on_throttled: ThrottledHandler = resolve_refusal_handler(
            handle_throttled, on_throttled, raise_throttled, uid
        )
        self.use_method = bool(use_method)
        if key_by not in KEY_BY:
            raise ConfigurationError(
                f"key_by must be one of {', '.join(map(repr, KEY_BY))}, got {key_by!r}"
            )
        self.key_by: KeyBy = key_by
        # Whether `key_suffix` is this class's own: then the route found once per
        # request also gives the key suffix.
        self._own_suffix = type(self).key_suffix is BaseHTTPThrottle.key_suffix
        #: Which headers this throttle reports (bits of `traffik.fastapi.headers`);
        #: None follows `set_default_headers`.
        self.header_mask: int | None = None if headers is None else header_mask(headers)
        self.policy_name = b"" if self.header_mask == 0 else policy_name(uid)
        self.static_policy: bytes | None = None
        #: What this throttle's headers share from one response to the next.
        self.header_template: HeaderTemplate | None = None
        if self.rate is not None and self.header_mask != 0:
            self.static_policy = policy_item(self.policy_name, self.rate, self.quota_unit)
            self.header_template = header_template(self.policy_name, self.rate, self.quota_unit)
        if context is not None and not isinstance(context, Mapping):
            raise ConfigurationError(f"context must be a mapping, got {context!r}")
        self.context: Mapping[str, Any] = dict(context) if context else _NO_CONTEXT
        self._own_rules = order_rules(rules)
        self.rules = self._own_rules
        if registry is not None and not isinstance(registry, ThrottleRegistry):
            raise ConfigurationError(f"registry must be a ThrottleRegistry, got {registry!r}")
        self.registry = registry if registry is not None else GLOBAL_REGISTRY
        self.registry.register(self)

    # -- rules -------------------------------------------------------------------------

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules deciding which requests this throttle limits (its own and a
        registry's), cheapest first; they are the throttle's ``gate``."""
        return self._rules

    @rules.setter
    def rules(self, rules: tuple[Rule, ...]) -> None:
        self._rules = rules
        self.gate = self._rules_allow if rules else None

    async def _rules_allow(self, connection: HTTPConnection) -> bool:
        return await rules_allow(self._rules, connection, self.context)

    def set_extra_rules(self, rules: Sequence[Rule]) -> None:
        """Rules added from outside (by a registry), on top of the throttle's own."""
        self.rules = order_rules((*self._own_rules, *rules))

    # -- keys, identity, backend -------------------------------------------------------

    async def default_identifier(self, connection: HTTPConnection) -> str | ExemptedType:
        return get_remote_address(connection)

    def default_identity(self, connection: HTTPConnection) -> str | ExemptedType:
        client = connection.scope.get("client")
        if client:
            peer: str = client[0]
            if peer:
                # No trusted proxies by default: the peer is the client (IPv6 normalised).
                return peer if ":" not in peer else address_identity(peer)
        return get_remote_address(connection)  # says (once) that addresses are missing

    def key_suffix(self, connection: HTTPConnection) -> str:
        scope = connection.scope
        return self._suffix(scope, route_info(scope) if self.key_by == "route" else None)

    def _suffix(self, scope: Scope, route: RouteInfo | None) -> str:
        """`key_suffix` given the matched route (for ``key_by="route"``)."""
        key_by = self.key_by
        if key_by == "client":
            path = None
        elif key_by == "route" and route is not None and route.template is not None:
            root_path = scope.get("root_path")
            path = root_path + route.template if root_path else route.template
        else:
            path = scope["path"]
        method = key_method(scope.get("method")) if self.use_method else None
        if path is None:
            return f":{method}" if method else ""
        return f":{method}:{path}" if method else f":{path}"

    def find_backend(self, connection: HTTPConnection) -> ThrottleBackend | None:
        state = getattr(connection.scope.get("app"), "state", None)
        backend = getattr(state, APP_STATE_ATTRIBUTE, None)
        return backend if isinstance(backend, ThrottleBackend) else None

    def __repr__(self) -> str:
        rate = self.rate if self.rate is not None else "<function>"
        return f"{type(self).__name__}({self.uid!r}, rate={rate!s}, strategy={self.strategy!r})"


class HTTPThrottle(BaseHTTPThrottle):
    """Rate-limits HTTP requests per client.

    :param uid: a unique, stable name: part of every key, and the policy name in the
        ``RateLimit`` headers.
    :param rate: a `Rate`, a string such as ``"100/min"``, or an async function of the
        request returning either.
    :param identifier: an async function of the request returning the client's identity
        or `EXEMPTED`; the client's address by default (see `traffik.fastapi.identifiers`).
    :param strategy: the algorithm; `FixedWindow` by default.
    :param backend: where state lives; by default the backend whose lifespan runs the app.
    :param cost: units each request consumes: an int or an async function of the request.
    :param on_error: what to do when deciding fails ("allow", "throttle", "raise" or a
        handler); overrides the backend's setting.
    :param params: per-request strategy inputs: a mapping or an async function.
    :param handle_throttled: ``async (connection, wait_ms, throttle, context)`` called on
        refusal, as in traffik 1.x: the wait in milliseconds. By default the refusal
        raises `ConnectionThrottled` (HTTP 429).
    :param on_throttled: ``async (connection, decision, throttle, context)`` called on
        refusal, with the `Decision` (seconds); instead of ``handle_throttled``.
    :param use_method: whether the HTTP method is part of the key (True by default).
    :param key_by: ``"route"`` (the route template, default), ``"path"`` (the concrete
        path) or ``"client"`` (no path: one budget per client).
    :param headers: which rate-limit headers to report: True, False, or names from
        `traffik.fastapi.headers.HEADER_NAMES`; None follows `set_default_headers`.
    :param context: defaults for ``handle_throttled``'s context: ``status_code``,
        ``detail``, ``headers``; a call's own context is merged over it.
    :param rules: `Rule` / `Bypass` instances deciding which requests are limited.
    :param registry: where the throttle registers (`GLOBAL_REGISTRY` by default).
    :param shadow: decide and record as usual, but never refuse: over the limit, the
        request goes through (``handle_throttled`` is not called, nothing else is given
        back). Headers and observers still say what the limit would have done. For trying
        a new limit in production.
    :param cache_refusals: answer a client's lasting refusal in this process, without
        asking the backend, until its retry time (see `traffik.refusals`); None follows
        the backend's ``cache_refusals`` (off by default).
    """

    __signature__ = DependencySignature()

    async def __call__(
        self,
        request: Request,
        response: Response | None = None,
        *,
        cost: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """Check ``request``; over the limit, call ``handle_throttled`` (HTTP 429 by default).

        Returns the decision (for a shadow throttle, possibly a refusal that let the
        request through).

        As a FastAPI dependency, ``response`` is the sub-response whose headers FastAPI
        copies into the response of a route that returns data: the rate-limit headers go
        there (unless a `ThrottleMiddleware` adds them to every response itself).
        """
        scope = request.scope
        if LEDGER_KEY in scope or OBSERVERS:
            outcomes = await enter(request, (self,), cost=cost, context=context, response=response)
            return outcomes[0].decision
        route = route_info(scope)
        if route is not None and route.throttles and route.throttles != (self,):
            outcomes = await enter(request, (self,), cost=cost, context=context, response=response)
            return outcomes[0].decision
        # The first decision on this request, and no other throttle to gather: `enter`,
        # `RequestLedger.decide_one` and `decide_alone` unrolled, for the common case.
        ledger = scope[LEDGER_KEY] = RequestLedger(gathered=True)
        if self._disabled:
            outcome = Outcome(self, NOT_LIMITED)
        else:
            suffix = self._suffix(scope, route) if self._own_suffix else None
            prepared: Decision | tuple[ThrottleBackend, Hit] | None = None
            if self.plain_prepare and cost is None:
                try:
                    prepared = self.prepare_plain(request, suffix)
                except ConfigurationError:
                    raise
                except Exception:
                    prepared = None  # `prepare` meets it again, and gives it to on_error
            if prepared is None:
                prepared = await self.prepare(request, cost, None, key_suffix=suffix)
            if isinstance(prepared, Decision):
                outcome = Outcome(self, prepared)
            else:
                backend, hit = prepared
                outcome = Outcome(self, NOT_LIMITED, hit, backend)
                try:
                    outcome.decision = await self.apply_to(backend, hit)
                except Exception as exc:
                    outcome.decision = await self.failure_decision(exc, request, hit, backend)
                else:
                    outcome.consumed = outcome.decision.allowed
        ledger.outcomes = [outcome]
        decision = outcome.decision
        if self.shadow:
            pass  # never refuses, never waits
        elif not decision.allowed:
            if response is not None:
                ledger.write_headers(response)
            await _handle_refusals(request, ledger, [outcome], [], context)
            return decision
        elif decision.delay > 0:
            await wait_out(decision.delay)
        if response is not None:  # `ledger.write_headers`, for a first block
            block = ledger.written = render_headers(ledger.outcomes)
            response.raw_headers.extend(block)
        return decision


RequestThrottle = HTTPThrottle
"""The traffik 1.x alias of `HTTPThrottle`."""


async def enter(
    connection: HTTPConnection,
    throttles: Sequence[BaseHTTPThrottle],
    *,
    cost: int | None = None,
    context: Mapping[str, Any] | None = None,
    response: Response | None = None,
) -> list[Outcome]:
    """Decide ``throttles`` for ``connection``, handle refusals, and return the outcomes.

    A throttle whose decision another one's call already took claims it; the rest are
    decided together with every throttle the route declares that has not run yet, in
    one all-or-nothing step. Refusals go to the ``handle_throttled`` of the refusing
    throttles, the ones called here first.
    """
    scope = connection.scope
    ledger: RequestLedger | None = scope.get(LEDGER_KEY)
    if ledger is None:
        ledger = scope[LEDGER_KEY] = RequestLedger()
    if len(throttles) != 1:
        outcomes, gathered = await _enter_many(connection, ledger, throttles, cost)
        return await _finish(connection, ledger, outcomes, gathered, context, response)
    # One throttle, the common case, kept short.
    throttle = throttles[0]
    outcome = ledger.pending.pop(throttle, None) if ledger.pending else None
    if outcome is None:
        declared: Sequence[BaseHTTPThrottle] = ()
        if not ledger.gathered:
            ledger.gathered = True
            declared = route_throttles(scope)
        if not declared or (len(declared) == 1 and declared[0] is throttle):
            outcome = await ledger.decide_one(connection, throttle, cost)
        else:
            calls: list[Call] = [(throttle, cost, None)]
            calls.extend((other, None, None) for other in declared if other is not throttle)
            decided = await ledger.decide(connection, calls, claimable_from=1)
            return await _finish(connection, ledger, decided[:1], decided[1:], context, response)
    if response is not None and not ledger.managed:
        ledger.write_headers(response)
    if not outcome.decision.allowed and outcome.refused and not outcome.handled:
        await _handle_refusals(connection, ledger, [outcome], [], context)
    return [outcome]


async def _finish(
    connection: HTTPConnection,
    ledger: RequestLedger,
    outcomes: list[Outcome],
    gathered: Sequence[Outcome],
    context: Mapping[str, Any] | None,
    response: Response | None,
) -> list[Outcome]:
    """What `enter` does once decided: the headers, then the refusals' handlers."""
    if response is not None and not ledger.managed:
        ledger.write_headers(response)
    if gathered or not all(outcome.decision.allowed for outcome in outcomes):
        refused = [o for o in outcomes if o.refused and not o.handled]
        refused_elsewhere = [o for o in gathered if o.refused and not o.handled]
        if refused or refused_elsewhere:
            await _handle_refusals(connection, ledger, refused, refused_elsewhere, context)
    return outcomes


async def _enter_many(
    connection: HTTPConnection,
    ledger: RequestLedger,
    throttles: Sequence[BaseHTTPThrottle],
    cost: int | None,
) -> tuple[list[Outcome], Sequence[Outcome]]:
    """`enter` for several throttles: their outcomes, and those decided alongside."""
    claimed = [ledger.claim(throttle) for throttle in throttles]
    if None not in claimed:
        return claimed, ()  # type: ignore[return-value]  # no None left
    calls: list[Call] = [
        (throttle, cost, None)
        for throttle, outcome in zip(throttles, claimed, strict=True)
        if outcome is None
    ]
    own = len(calls)
    if not ledger.gathered:
        ledger.gathered = True
        calls.extend(
            (declared, None, None)
            for declared in route_throttles(connection.scope)
            if declared not in throttles
        )
    decided = await ledger.decide(connection, calls, claimable_from=own)
    fresh = iter(decided)
    outcomes = [outcome if outcome is not None else next(fresh) for outcome in claimed]
    return outcomes, decided[own:]


async def _handle_refusals(
    connection: HTTPConnection,
    ledger: RequestLedger,
    own: list[Outcome],
    gathered: list[Outcome],
    context: Mapping[str, Any] | None,
) -> None:
    """Call ``handle_throttled`` for each refusal, the longest wait first (the default
    handler raises, ending the request). Every handler is told the request's longest
    wait, so ``Retry-After`` names the time when every limit would admit it."""
    wait = ledger.wait
    ordered = [
        *sorted(own, key=lambda o: o.decision.retry_after, reverse=True),
        *sorted(gathered, key=lambda o: o.decision.retry_after, reverse=True),
    ]
    for outcome in ordered:
        outcome.handled = True
        throttle = outcome.throttle
        decision = outcome.decision
        if decision.retry_after < wait:
            decision = decision._replace(retry_after=wait)
        merged = throttle.context
        if context and outcome in own:
            merged = {**merged, **context}
        await throttle.on_throttled(connection, decision, throttle, merged)

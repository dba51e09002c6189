"""`HTTPThrottle`: a throttle for Starlette and FastAPI requests.

Use it as a FastAPI dependency (``Depends(throttle)``, which gives back the request), through
`throttled` or `ThrottleMiddleware`, or await it yourself (``await throttle.hit(request,
cost=2)``, or ``await throttle(request)``: the same). Over the limit it calls
``handle_throttled``, which by default raises `ConnectionThrottled` (HTTP 429 with
``Retry-After``). A route that wants the `Decision` depends on ``throttle.decision``;
`decide` is the primitive that only decides (no handler, no waiting).

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

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar, cast

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from traffik.decision import Decision
from traffik.fastapi.connection_throttle import (
    KEY_BY,
    ConnectionThrottle,
    DependencySignature,
    KeyBy,
    MillisecondHandler,
    ThrottledHandler,
)
from traffik.fastapi.custom_headers import HeaderStat
from traffik.fastapi.enforcement import enforce
from traffik.fastapi.handlers import handle_refusals
from traffik.fastapi.headers import (
    render_headers,
)
from traffik.fastapi.ledger import LEDGER_KEY, Outcome, RequestLedger, get_decision, wait_out
from traffik.fastapi.resolved_headers import set_headers
from traffik.fastapi.routes import RouteInfo, route_info
from traffik.pipeline import decide_one
from traffik.stats import ThrottleStat

__all__ = [
    "KEY_BY",
    "BaseHTTPThrottle",
    "HTTPThrottle",
    "KeyBy",
    "MillisecondHandler",
    "RequestThrottle",
    "ThrottledHandler",
]

R = TypeVar("R", bound=Request)
H = TypeVar("H", bound=HTTPConnection)


class BaseHTTPThrottle(ConnectionThrottle):
    """What every HTTP throttle shares; see `HTTPThrottle` for the parameters."""

    scope_type: ClassVar[str] = "http"

    async def hit(
        self,
        connection: H,
        *,
        cost: int | None = None,
        context: Mapping[str, Any] | None = None,
        skip_handler: bool | None = None,
    ) -> H:
        """Check and apply, as in traffik 1.x: the same as ``await throttle(request)``.

        Over the limit, ``handle_throttled`` is called (by default it raises
        `ConnectionThrottled`: HTTP 429). Returns the connection. For the `Decision`
        without any refusal handling, call `decide`.
        """
        await self._enforce(cast(Request, connection), None, cost, context, skip_handler)
        return connection

    async def _enforce(
        self,
        request: Request,
        response: Response | None,
        cost: int | None,
        context: Mapping[str, Any] | None,
        skip_handler: bool | None = None,
    ) -> Decision:
        """Decide this throttle for ``request`` through `enforce` (refusals handled)."""
        outcomes = await enforce(
            request,
            (self,),
            cost=cost,
            context=context,
            response=response,
            skip_handler=skip_handler,
        )
        return outcomes[0].decision


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
    :param min_wait_period: traffik 1.x's floor, in **milliseconds**, on a refusal's wait
        (``Retry-After``, the handler's ``wait_ms``); admitted requests are not affected.
    :param skip_handler: traffik 1.x's: a refusal is recorded (`is_throttled`,
        `get_wait`) but ``handle_throttled`` is not called, so the request goes on and the
        endpoint decides what to answer. A call's ``skip_handler=`` overrides it.
    :param cache_ids: traffik 1.x's; only its default, True, is taken (the identity is
        resolved once per request); False is refused.
    :param dynamic_rules: traffik 1.x's; either value is taken and changes nothing: rules
        added to the registry apply at once (1.x's True).

    Other 1.x keywords (``dynamic_backend``, ``headers=`` objects) are described in
    docs/migrating.md.
    :param dynamic_backend: find the backend on every request from the current context:
        the innermost ``async with backend:`` around it (a middleware choosing a tenant's
        backend), else the app's (`traffik.backends.current`). Refused with ``backend=``.
    """

    __signature__ = DependencySignature()

    async def __call__(
        self,
        request: R,
        response: Response | None = None,
        *,
        cost: int | None = None,
        context: Mapping[str, Any] | None = None,
        skip_handler: bool | None = None,
    ) -> R:
        """Check ``request`` and return it (as in traffik 1.x); over the limit, call
        ``handle_throttled`` (HTTP 429 by default).

        As a FastAPI dependency, ``request: Request = Depends(throttle)`` is the request
        itself, checked; ``response`` is the sub-response whose headers FastAPI copies
        into the response of a route that returns data: the rate-limit headers go there
        (unless a `ThrottleMiddleware` adds them to every response itself). For the
        `Decision`, depend on `decision` instead, or call `get_decision` afterwards.

        ``skip_handler=True`` (traffik 1.x) records a refusal (`is_throttled`, `get_wait`)
        without calling ``handle_throttled``: the caller decides what to answer.
        """
        scope = request.scope
        route: RouteInfo | None = None
        first = LEDGER_KEY not in scope  # this request's first decision
        if first:
            route = route_info(scope)
            first = route is None or not route.throttles or route.throttles == (self,)
        if not first:  # an earlier decision, or other throttles in the route's plan
            await super()._enforce(request, response, cost, context, skip_handler)
            return request
        # The first decision on this request, and no other throttle in the route's plan:
        # `enforce` for one throttle, the common case (written out here, in the frame
        # FastAPI calls: one coroutine fewer on every request).
        ledger = scope[LEDGER_KEY] = RequestLedger(planned_decided=True)
        suffix = self._suffix(scope, route) if self._own_suffix else None
        outcome: Outcome = await decide_one(self, request, cost, None, suffix)
        ledger.outcomes = [outcome]
        decision = outcome.decision
        if self.shadow:
            pass  # never refuses, never waits
        elif not decision.allowed:
            if response is not None:
                ledger.write_headers(response, scope)
            await handle_refusals(request, ledger, [outcome], [], context, skip_handler)
            return request
        elif decision.delay > 0:
            await wait_out(decision.delay)
        if response is not None:  # `ledger.write_headers`, for a first block
            block = ledger.written = render_headers(ledger.outcomes, scope)
            response.raw_headers.extend(block)
        return request

    async def decision(self, request: Request, response: Response) -> Decision:
        """``Depends(throttle.decision)``: check the request as ``Depends(throttle)``
        does (a refusal calls ``handle_throttled``), and give the route the `Decision`
        (for a shadow throttle, possibly a refusal that let the request through)."""
        return await self._enforce(request, response, None, None)

    async def _enforce(
        self,
        request: Request,
        response: Response | None,
        cost: int | None,
        context: Mapping[str, Any] | None,
        skip_handler: bool | None = None,
    ) -> Decision:
        """``__call__``, returning this throttle's decision (`hit` and `decision` come
        here)."""
        await self(request, response, cost=cost, context=context, skip_handler=skip_handler)
        decision = get_decision(request, self)
        assert decision is not None  # every call records its outcome
        return decision

    async def set_headers(
        self,
        response: Response,
        connection: HTTPConnection,
        *,
        headers: Mapping[str, Any] | None = None,
        stat: HeaderStat | ThrottleStat | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Put `get_headers` into ``response``, as in traffik 1.x."""
        await set_headers(self, response, connection, headers=headers, stat=stat, context=context)


RequestThrottle = HTTPThrottle
"""The traffik 1.x alias of `HTTPThrottle`."""

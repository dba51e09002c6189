"""`ThrottleMiddleware`: throttles applied before routing, and headers on every response.

``app.add_middleware(ThrottleMiddleware, middleware_throttles=[...])`` does two things:

* It applies each `MiddlewareThrottle` whose path, methods and predicate match the
  request, all together in one all-or-nothing step, before the application runs. A
  middleware throttle keeps **one budget per client for its whole pattern**:
  ``MiddlewareThrottle(throttle, "/api/")`` counts ``/api/a`` and ``/api/b`` together
  (``key_by="path"`` on the throttle counts each path apart, ``key_by="client"`` drops the
  pattern; the method is part of the key unless ``use_method=False``).
* It writes the rate-limit headers of every limit decided for the request — by itself or
  by the route's dependencies and decorators — into the response at
  ``http.response.start``. They are therefore on every response: when the endpoint returns
  a `Response` itself, and when a later dependency or the endpoint raises (401, 404, an
  unhandled error rendered as 500). Installed without throttles, it does only this.

It also releases concurrency slots when the application sees the client disconnect, and
when the request ends however it ends.

On WebSocket scopes it hands the matching ``WebSocketThrottle`` s (traffik-websocket) to
their `ConnectionThrottle.gate_scope`, which gates the handshake before the application
runs (with this middleware's `refusal` and `render`): a refused client gets an HTTP 429
denial response where the server supports the ASGI denial-response extension, and a
close with code 1008 otherwise. HTTP throttles apply to HTTP requests only, WebSocket
throttles to WebSocket handshakes only.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from traffik._legacy_keywords import refuse_legacy, skips_handler
from traffik.decision import Decision
from traffik.exceptions import ConfigurationError
from traffik.fastapi.connection_throttle import ConnectionThrottle
from traffik.fastapi.enforcement import decide_recorded
from traffik.fastapi.exceptions import ConnectionThrottled
from traffik.fastapi.handlers import throttled_response
from traffik.fastapi.headers import RETRY_AFTER_NAME, RawHeaders
from traffik.fastapi.ledger import LEDGER_KEY, RequestLedger
from traffik.fastapi.methods import key_method
from traffik.fastapi.rules import PathPattern, Predicate, Rule, route_path
from traffik.pipeline import stat
from traffik.resolution import resolve
from traffik.throttle import ThrottleStat

__all__ = ["MiddlewareThrottle", "ThrottleMiddleware"]


class MiddlewareThrottle:
    """A throttle that `ThrottleMiddleware` applies to matching requests.

    :param throttle: the `HTTPThrottle` (or `ConcurrencyLimit`) to apply to requests, or
        the ``WebSocketThrottle`` to apply to WebSocket handshakes.
    :param path: a path pattern (`traffik.fastapi.rules`): a glob such as ``"/api/**"``, a
        regular expression (a plain string such as ``"/api/"`` is matched as a prefix), or
        a compiled ``re.Pattern``. None matches every path.
    :param methods: the HTTP methods to limit (any case); None limits every method. Not
        for WebSocket throttles (a handshake has no method to choose by).
    :param predicate: ``(connection) -> bool`` or ``(connection, context) -> bool`` (the
        context below), sync or async: limit only where it is true.
    :param cost: the cost of each request here; the throttle's own by default.
    :param context: ``handle_throttled`` context for refusals here (over the throttle's).
    :param skip_handler: traffik 1.x's: True records a refusal here (`is_throttled`) without
        calling the handler, so the request reaches the application; None (the default)
        follows the throttle's own ``skip_handler``.
    """

    __slots__ = ("_suffixes", "context", "cost", "label", "rule", "skip_handler", "throttle")

    def __init__(
        self,
        throttle: ConnectionThrottle,
        path: PathPattern | None = None,
        *,
        methods: Iterable[str] | None = None,
        predicate: Predicate | None = None,
        cost: int | None = None,
        context: Mapping[str, Any] | None = None,
        skip_handler: bool | None = None,
    ) -> None:
        if not isinstance(throttle, ConnectionThrottle):
            raise ConfigurationError(
                "MiddlewareThrottle takes an HTTPThrottle, ConcurrencyLimit or "
                f"WebSocketThrottle, got {throttle!r}"
            )
        if methods is not None and throttle.scope_type != "http":
            raise ConfigurationError(
                f"MiddlewareThrottle({throttle!r}): methods apply to HTTP throttles only"
            )
        if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int) or cost < 0):
            raise ConfigurationError(f"cost must be a whole number >= 0, got {cost!r}")
        if context is not None and not isinstance(context, Mapping):
            raise ConfigurationError(f"context must be a mapping, got {context!r}")
        self.throttle = throttle
        self.rule = Rule(path, methods=methods, predicate=predicate)
        #: What stands for the path in keys: the pattern, so a prefix is one budget.
        self.label = path.pattern if isinstance(path, re.Pattern) else (path or "*")
        self.cost = cost
        self.context: Mapping[str, Any] = (
            {**throttle.context, **context} if context else throttle.context
        )
        self._suffixes: dict[str, str] = {}
        self.skip_handler = _checked_skip_handler(skip_handler)

    def key_suffix(self, connection: HTTPConnection) -> str:
        """The key part after the client: method and pattern, per the throttle's settings."""
        throttle = self.throttle
        if throttle.key_by == "path":
            return throttle.key_suffix(connection)
        method: str = key_method(connection.scope.get("method", "")) if throttle.use_method else ""
        suffix = self._suffixes.get(method)
        if suffix is None:
            parts = [
                part
                for part in (method, None if throttle.key_by == "client" else self.label)
                if part
            ]
            suffix = "".join(f":{part}" for part in parts)
            self._suffixes[method] = suffix
        return suffix

    async def matches(self, connection: HTTPConnection) -> bool:
        return await self.rule.matches(connection, self.context)

    async def check(self, connection: HTTPConnection, *, cost: int = 1) -> bool:
        """Whether a request of ``cost`` would pass here now (consumes nothing)."""
        return (await self._peek(connection, cost)).allowed

    async def stat(self, connection: HTTPConnection) -> ThrottleStat | None:
        """This client's standing under this middleware throttle, consuming nothing."""
        return await stat(self.throttle, connection, None, self.key_suffix(connection))

    async def _peek(self, connection: HTTPConnection, cost: int) -> Decision:
        throttle = self.throttle
        outcome = await resolve(throttle, connection, cost, None, self.key_suffix(connection))
        hit, backend = outcome.hit, outcome.backend
        if hit is None or backend is None:
            return outcome.decision
        return await backend.peek(*hit)

    def __repr__(self) -> str:
        return f"MiddlewareThrottle({self.throttle!r}, {self.label!r})"


class ThrottleMiddleware:
    """Applies `MiddlewareThrottle` s before routing and writes rate-limit headers.

    :param middleware_throttles: the throttles to apply, each to the requests it matches.
    :param problem_details: render this middleware's refusals as
        ``application/problem+json`` (type ``quota-exceeded``) rather than
        ``{"detail": ...}``, unless the application registered a handler for
        `ConnectionThrottled`.
    :param skip_handler: traffik 1.x's: True (or False) overrides the ``skip_handler`` of
        every throttle here; refusals skipping their handler reach the application, which
        reads `is_throttled`. None (the default) leaves each throttle's own.

    traffik 1.x's ``backend=``, ``exception_handler_getter=``, ``context=`` and ``sort=``
    are refused, naming what to do instead (`traffik._legacy_keywords`).
    """

    def __init__(
        self,
        app: ASGIApp,
        middleware_throttles: Sequence[MiddlewareThrottle] = (),
        *,
        problem_details: bool = False,
        skip_handler: bool | None = None,
        backend: None = None,
        exception_handler_getter: None = None,
        context: None = None,
        sort: None = None,
    ) -> None:
        for keyword, value in (
            ("middleware_backend", backend),
            ("exception_handler_getter", exception_handler_getter),
            ("middleware_context", context),
            ("sort", sort),
        ):
            if value is not None:
                raise refuse_legacy("ThrottleMiddleware", keyword)
        self.skip_handler = _checked_skip_handler(skip_handler)
        throttles = tuple(middleware_throttles)
        for entry in throttles:
            if not isinstance(entry, MiddlewareThrottle):
                raise ConfigurationError(
                    f"middleware_throttles takes MiddlewareThrottle instances, got {entry!r}"
                )
        self.app = app
        self.middleware_throttles = throttles
        self.problem_details = problem_details
        self._http_throttles = tuple(e for e in throttles if e.throttle.scope_type == "http")
        self._websocket_throttles = tuple(
            e for e in throttles if e.throttle.scope_type == "websocket"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket" and self._websocket_throttles:
                # The kind of throttle knows how its connections are gated (a handshake).
                entries = self._websocket_throttles
                await entries[0].throttle.gate_scope(self, entries, scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if LEDGER_KEY in scope:  # an outer ThrottleMiddleware owns this request
            await self._apply(scope, receive, send, scope[LEDGER_KEY])
            return
        ledger = scope[LEDGER_KEY] = RequestLedger(managed=True)
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                block = ledger.headers(scope)
                if block:
                    message = _with_block(message, block)
            await send(message)

        async def receive_watching() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                await ledger.release()
            return message

        try:
            # `_apply`, inlined: the common case.
            if self._http_throttles:
                connection = Request(scope, receive_watching)
                refusal = await self.refusal(connection, ledger, self._http_throttles)
                if refusal is not None:
                    rendered = await self.render(connection, refusal)
                    await rendered(scope, receive_watching, send_with_headers)
                    return
            await self.app(scope, receive_watching, send_with_headers)
        except Exception as exc:
            if not started and ledger.outcomes:
                response = await _error_response(Request(scope, receive), exc)
                if response is not None:
                    await response(scope, receive, send_with_headers)
            raise
        finally:
            if ledger.holding():
                await ledger.release()

    async def _apply(
        self, scope: Scope, receive: Receive, send: Send, ledger: RequestLedger
    ) -> None:
        if self._http_throttles:
            connection = Request(scope, receive)
            response = await self._decide(connection, ledger, self._http_throttles)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _decide(
        self,
        connection: HTTPConnection,
        ledger: RequestLedger,
        entries: Sequence[MiddlewareThrottle],
    ) -> Response | None:
        """Decide the matching throttles together; the refusal response, if refused."""
        refusal = await self.refusal(connection, ledger, entries)
        return None if refusal is None else await self.render(connection, refusal)

    async def refusal(
        self,
        connection: HTTPConnection,
        ledger: RequestLedger,
        entries: Sequence[MiddlewareThrottle],
    ) -> HTTPException | None:
        """Decide the matching throttles together; what a handler raised, if refused."""
        scope = connection.scope
        method: str = scope.get("method", "")
        path = route_path(scope)
        matched: list[MiddlewareThrottle] = []
        for entry in entries:
            rule = entry.rule
            if rule.matches_request_line(method, path) and (
                rule.predicate is None or await rule.predicate_allows(connection, entry.context)
            ):
                matched.append(entry)
        if not matched:
            return None
        if len(matched) == 1:  # the common case, kept short
            entry = matched[0]
            call = (entry.throttle, entry.cost, entry.key_suffix(connection))
            outcome = (await decide_recorded(connection, ledger, [call], planned_from=1))[0]
            if outcome.decision.allowed:
                return None
            outcomes = [outcome]
        else:
            calls = [(e.throttle, e.cost, e.key_suffix(connection)) for e in matched]
            outcomes = await decide_recorded(connection, ledger, calls, planned_from=len(calls))
            if all(outcome.decision.allowed for outcome in outcomes):
                return None
        refused = sorted(
            (
                (outcome, entry)
                for outcome, entry in zip(outcomes, matched, strict=True)
                if outcome.refused
            ),
            key=lambda pair: pair[0].decision.retry_after,
            reverse=True,
        )
        wait = ledger.wait
        try:
            for outcome, entry in refused:
                outcome.handled = True
                skip = self.skip_handler if self.skip_handler is not None else entry.skip_handler
                if skips_handler(entry.throttle, skip):
                    continue  # traffik 1.x's skip_handler: recorded, the request goes on
                decision = outcome.decision
                if decision.retry_after < wait:
                    decision = decision._replace(retry_after=wait)
                await entry.throttle.on_throttled(
                    connection, decision, entry.throttle, entry.context
                )
        except HTTPException as exc:
            # Rendered here, never raised again: without its traceback (whose frames would
            # hold the caller's frame holding it, a cycle left to the collector).
            return exc.with_traceback(None)
        return None  # every handler let the request through

    async def render(self, connection: HTTPConnection, exc: HTTPException) -> Response:
        """A refusal as the application would render it, else as JSON (or problem+json)."""
        handlers: Mapping[Any, Any] = getattr(connection.scope.get("app"), "exception_handlers", {})
        handler = handlers.get(type(exc))
        if handler is None and not (self.problem_details and isinstance(exc, ConnectionThrottled)):
            handler = next(
                (handlers[cls] for cls in type(exc).__mro__ if cls in handlers),
                handlers.get(exc.status_code),
            )
        if handler is not None:
            result = handler(connection, exc)
            if inspect.isawaitable(result):
                result = await result
            assert isinstance(result, Response)
            return result
        if isinstance(exc, ConnectionThrottled):
            return throttled_response(exc, problem=self.problem_details)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )


def _checked_skip_handler(skip_handler: object) -> bool | None:
    if skip_handler is not None and not isinstance(skip_handler, bool):
        raise ConfigurationError(f"skip_handler must be True, False or None, got {skip_handler!r}")
    return skip_handler


def _with_block(message: Message, block: RawHeaders) -> Message:
    """``message`` (an ``http.response.start``) with ``block`` added to its headers."""
    headers = message.get("headers") or ()
    if block[-1][0] == RETRY_AFTER_NAME:
        # A refusal: our Retry-After (the longest wait) replaces any other.
        headers = [header for header in headers if header[0].lower() != RETRY_AFTER_NAME]
    return {**message, "headers": [*headers, *block]}


async def _error_response(connection: Request, exc: Exception) -> Response | None:
    """The 500 response Starlette would send for ``exc`` (the application's handler for
    500 / Exception, or plain text), so that it can carry the headers. None in debug
    mode: Starlette's traceback page is left alone."""
    app = connection.scope.get("app")
    if getattr(app, "debug", False):
        return None
    handlers: Mapping[Any, Any] = getattr(app, "exception_handlers", {})
    handler = handlers.get(500) or handlers.get(Exception)
    if handler is None:
        return PlainTextResponse("Internal Server Error", status_code=500)
    try:
        result = handler(connection, exc)
        if inspect.isawaitable(result):
            result = await result
    except Exception:
        return None  # Starlette will try the handler itself, and report its failure
    return result if isinstance(result, Response) else None

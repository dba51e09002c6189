"""`WebSocketThrottle`: limit WebSocket connections, and the messages they carry.

One class, two moments, told apart by the socket's state:

* **Before ``accept``** it gates the handshake, whichever way it is applied:
  ``Depends(throttle)`` on a FastAPI websocket route, ``@throttled(throttle)`` on an
  endpoint, `ThrottleMiddleware` with a `MiddlewareThrottle`, or ``await throttle(websocket)``
  before accepting. These run exactly as for HTTP (the route's throttles decided together,
  all-or-nothing, in the connection's ledger); a refusal refuses the handshake (see
  `traffik.websocket.handlers`).
* **After ``accept``** ``await throttle(websocket)`` (or ``await throttle(websocket,
  message)``) checks one received message. A refusal sends the client a JSON notice and
  leaves the socket open; ``is_throttled(websocket)`` tells the endpoint to skip the
  message (see `traffik.websocket.messages` for several limits on one message).

Keys are ``<uid>:{<client>}:<route>:<strategy>`` by default (the route's template, as
for HTTP; no method). ``key_by="connection"`` keeps one budget per connection instead:
``<uid>:{<client>}:conn:<connection id>:<strategy>``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final, Literal, TypeVar, cast

from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState

from traffik._legacy_keywords import skips_handler
from traffik.backends.base import ThrottleBackend
from traffik.callbacks import connection_function
from traffik.checks import Outcome
from traffik.decision import Decision
from traffik.error_policy import OnError
from traffik.exceptions import ConfigurationError
from traffik.fastapi import (
    ConnectionThrottle,
    HeaderSpec,
    MiddlewareThrottle,
    Rule,
    ThrottleMiddleware,
    ThrottleRegistry,
    decide_recorded,
    enforce,
    resolve_refusal_handler,
)
from traffik.pipeline import decide_one
from traffik.rates import RateLike
from traffik.strategies.base import Params, Strategy
from traffik.throttle import CostFunction, Identifier, ParamsFunction, RateFunction
from traffik.websocket.handlers import websocket_on_throttled
from traffik.websocket.handshake import gate_handshake
from traffik.websocket.identity import (
    ConnectionIdentifier,
    Identify,
    client_address,
    connection_id,
)
from traffik.websocket.messages import MessageCost, current_message, ledger_for_message

__all__ = [
    "CLOSE_CODES",
    "WEBSOCKET_KEY_BY",
    "MessageCost",
    "WebSocketCost",
    "WebSocketKeyBy",
    "WebSocketMillisecondHandler",
    "WebSocketThrottle",
    "WebSocketThrottledHandler",
]

WebSocketKeyBy = Literal["route", "path", "client", "connection"]
WEBSOCKET_KEY_BY: Final = ("route", "path", "client", "connection")

WebSocketCost = (
    Callable[[WebSocket], Awaitable[int]]
    | Callable[[WebSocket, Mapping[str, Any]], Awaitable[int]]
    | MessageCost
)
"""An async function of the connection (or, as in traffik 1.x, of the connection and the
throttle's context), or a `MessageCost` weighing the message."""

WebSocketThrottledHandler = Callable[
    [WebSocket, Decision, "WebSocketThrottle", Mapping[str, Any]], Awaitable[Any]
]
"""``on_throttled(websocket, decision, throttle, context)``, called on refusal."""

WebSocketMillisecondHandler = Callable[
    [WebSocket, float, "WebSocketThrottle", Mapping[str, Any]], Awaitable[Any]
]
"""``handle_throttled(websocket, wait_ms, throttle, context)``: the traffik 1.x form."""

CLOSE_CODES: Final = "1008, 1013 or 4000-4999"

W = TypeVar("W", bound=WebSocket)
H = TypeVar("H", bound=HTTPConnection)


class _DependencySignature:
    """What FastAPI sees of ``__call__``: ``(websocket: WebSocket)``; the message, cost and
    context are for direct calls (on the class itself this is None, so
    ``inspect.signature(WebSocketThrottle)`` still describes the constructor)."""

    signature: Final = inspect.Signature(
        [
            inspect.Parameter(
                "websocket", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=WebSocket
            )
        ]
    )

    def __get__(self, instance: object, owner: type | None = None) -> inspect.Signature | None:
        return self.signature if instance is not None else None


class _CostOfMessage:
    """Adapts a `MessageCost` to the core's ``cost(connection)``: the message is the one
    being checked (None at the handshake)."""

    __slots__ = ("function",)

    def __init__(self, function: MessageCost) -> None:
        self.function = function

    async def __call__(self, connection: HTTPConnection) -> int:
        return await self.function(connection, current_message(connection.scope))


class WebSocketThrottle(ConnectionThrottle):
    """Rate-limits WebSocket connections (at the handshake) and messages (after ``accept``).

    :param uid: a unique, stable name, part of every key.
    :param rate: a `Rate`, a string such as ``"10/s"``, or an async function of the
        connection returning either.
    :param identifier: an async function of the connection returning the client's identity
        or `EXEMPTED`; the client's address by default (``remote_address([...])`` believes
        proxy headers from trusted proxies, as for HTTP). It runs once per connection.
    :param strategy: the algorithm; `FixedWindow` by default.
    :param backend: where state lives; by default the backend whose lifespan runs the app.
    :param cost: units each check consumes: an int; an async function of the connection
        (or, as in traffik 1.x, of the connection and the context); or a `MessageCost`
        weighing the message (``message_size`` counts bytes). A call's own ``cost=``
        overrides it.
    :param on_error: what to do when deciding fails; overrides the backend's setting.
    :param params: per-check strategy inputs: a mapping or an async function.
    :param handle_throttled: ``async (websocket, wait_ms, throttle, context)`` called on
        refusal, as in traffik 1.x: the wait in milliseconds. By default
        `websocket_on_throttled` (the notice, the denial).
    :param on_throttled: ``async (websocket, decision, throttle, context)`` called on
        refusal, with the `Decision`; instead of ``handle_throttled``.
    :param key_by: ``"route"`` (the route's template, default), ``"path"`` (the concrete
        path), ``"client"`` (one budget per client wherever it connects) or
        ``"connection"`` (one budget per connection: the handshake is not limited).
    :param close_code: None (default) to notify the client of a refused message and keep
        the socket open; 1008 (policy violation), 1013 (try again later) or an
        application code (4000-4999) to close it instead.
    :param headers: which rate-limit headers a handshake's 429 carries (as for HTTP).
    :param context: defaults for ``handle_throttled``'s context: ``extras`` and ``error``
        for the notice; ``status_code``, ``detail`` and ``headers`` for the 429.
    :param rules: `Rule` / `Bypass` instances deciding which connections are limited.
    :param registry: where the throttle registers (`GLOBAL_REGISTRY` by default).
    :param shadow: decide and record, but never refuse: no denial, no notice, no close.
    :param cache_refusals: answer a client's lasting refusal locally until its retry time
        (see `traffik.refusals`); None follows the backend's setting.
    :param min_wait_period, skip_handler, cache_ids, dynamic_rules: traffik 1.x's keywords,
        as for ``HTTPThrottle``; ``skip_handler`` records a refused message without
        sending the notice (check `is_throttled` yourself).
    """

    scope_type: ClassVar[str] = "websocket"

    __signature__ = _DependencySignature()

    def __init__(
        self,
        uid: str,
        rate: RateLike | RateFunction[WebSocket],
        *,
        identifier: Identifier[WebSocket] | None = None,
        strategy: Strategy[Any] | None = None,
        backend: ThrottleBackend | None = None,
        cost: int | WebSocketCost = 1,
        on_error: OnError | None = None,
        params: Params | ParamsFunction[WebSocket] | None = None,
        handle_throttled: WebSocketMillisecondHandler | None = None,
        key_by: WebSocketKeyBy = "route",
        close_code: int | None = None,
        headers: HeaderSpec | None = None,
        context: Mapping[str, Any] | None = None,
        rules: Iterable[Rule] = (),
        registry: ThrottleRegistry | None = None,
        shadow: bool = False,
        cache_refusals: bool | None = None,
        on_throttled: WebSocketThrottledHandler | None = None,
        min_wait_period: float | None = None,
        skip_handler: bool = False,
        cache_ids: Literal[True] = True,
        dynamic_rules: bool = False,
        dynamic_backend: bool = False,
    ) -> None:
        if key_by not in WEBSOCKET_KEY_BY:
            raise ConfigurationError(
                f"key_by must be one of {', '.join(map(repr, WEBSOCKET_KEY_BY))}, got {key_by!r}"
            )
        if close_code is not None and not _valid_close_code(close_code):
            raise ConfigurationError(f"close_code must be None, {CLOSE_CODES}; got {close_code!r}")
        refusal_handler = resolve_refusal_handler(
            handle_throttled, on_throttled, websocket_on_throttled, uid
        )
        #: Whether each connection has a budget of its own (``key_by="connection"``).
        self.per_connection = key_by == "connection"
        identify: Identify = client_address
        if identifier is not None:  # adapted here: the core sees the ConnectionIdentifier
            what = f"The identifier of throttle {uid!r}"
            identify = connection_function(identifier, self, what, "identifier")
        super().__init__(
            uid,
            cast("RateLike | RateFunction[HTTPConnection]", rate),
            identifier=ConnectionIdentifier(identify),
            strategy=strategy,
            backend=backend,
            cost=_core_cost(cost),
            on_error=on_error,
            params=cast("Params | ParamsFunction[HTTPConnection] | None", params),
            use_method=False,
            key_by="client" if key_by == "connection" else key_by,
            headers=headers,
            context=context,
            rules=rules,
            registry=registry,
            shadow=shadow,
            cache_refusals=cache_refusals,
            min_wait_period=min_wait_period,
            skip_handler=skip_handler,
            cache_ids=cache_ids,
            dynamic_rules=dynamic_rules,
            dynamic_backend=dynamic_backend,
        )
        self.close_code = close_code
        #: The handler called when this throttle refuses (the user's, or the default);
        #: ``on_throttled`` calls it unless the throttle is in shadow mode.
        self.refusal_handler: WebSocketThrottledHandler = refusal_handler
        self.on_throttled = self._handle_refusal

    # -- the check -----------------------------------------------------------------------

    async def __call__(
        self,
        websocket: W,
        message: Any = None,
        *,
        cost: int | None = None,
        context: Mapping[str, Any] | None = None,
        skip_handler: bool | None = None,
    ) -> W:
        """Check the handshake (before ``accept``) or one message (after), and return the
        socket (as in traffik 1.x: ``websocket: WebSocket = Depends(throttle)``).

        :param message: the message being checked (after ``accept``): what a cost function
            of the message weighs, and what tells the checks of one message from the next.
        :param cost: this check's cost, over the throttle's (``cost=len(data)``).
        :param context: for ``handle_throttled``, over the throttle's own.
        :param skip_handler: traffik 1.x's: True records a refusal (`is_throttled`) without
            calling ``handle_throttled``; None follows the throttle's ``skip_handler``.

        ``is_throttled(websocket)`` then says whether it was refused, and
        ``get_decision(websocket, throttle)`` what was decided.
        """
        await self._enforce(websocket, message, cost, context, skip_handler)
        return websocket

    async def hit(
        self,
        connection: H,
        message: Any = None,
        *,
        cost: int | None = None,
        context: Mapping[str, Any] | None = None,
        skip_handler: bool | None = None,
    ) -> H:
        """Check and apply, as in traffik 1.x: the same as ``await throttle(websocket)``.

        A refused message gets the JSON notice (the socket stays open); a refused
        handshake is denied. Returns the connection. For the `Decision` without any
        refusal handling, call `decide`.
        """
        await self._enforce(cast(WebSocket, connection), message, cost, context, skip_handler)
        return connection

    async def decision(self, websocket: WebSocket) -> Decision:
        """``Depends(throttle.decision)``: gate the handshake as ``Depends(throttle)``
        does (a refusal denies it), and give the endpoint the `Decision`."""
        return await self._enforce(websocket, None, None, None)

    async def _enforce(
        self,
        websocket: WebSocket,
        message: Any,
        cost: int | None,
        context: Mapping[str, Any] | None,
        skip_handler: bool | None = None,
    ) -> Decision:
        """What every way in does (``__call__``, `hit`, `decision`): decide, handle a
        refusal (notice, denial), and return the decision."""
        state = getattr(websocket, "application_state", WebSocketState.CONNECTING)
        if state is WebSocketState.CONNECTING:
            outcomes = await enforce(
                websocket, (self,), cost=cost, context=context, skip_handler=skip_handler
            )
            return outcomes[0].decision
        return await self._check_message(websocket, message, cost, context, skip_handler)

    async def _check_message(
        self,
        websocket: WebSocket,
        message: Any,
        cost: int | None,
        context: Mapping[str, Any] | None,
        skip_handler: bool | None = None,
    ) -> Decision:
        ledger = ledger_for_message(websocket.scope, self, message)
        refusal = ledger.refusal
        if refusal is not None:  # refused by another limit: this one takes nothing
            ledger.outcomes.append(Outcome(self))
            return refusal
        if self.shadow:  # decided and recorded; it never refuses nor delays anything
            outcome = await decide_one(self, websocket, cost)
            ledger.outcomes.append(outcome)
            return outcome.decision
        # Decided in the message's ledger: a refusal gives back what the message's
        # earlier checks took; an admission waits out a queueing strategy's delay.
        outcome = (await decide_recorded(websocket, ledger, [(self, cost, None)], planned_from=1))[
            0
        ]
        decision = outcome.decision
        if not decision.allowed:
            outcome.handled = True
            if skips_handler(self, skip_handler):
                return decision  # traffik 1.x's skip_handler: recorded, not handled
            merged = {**self.context, **context} if context else self.context
            await self.refusal_handler(websocket, decision, self, merged)
        return decision

    async def _handle_refusal(
        self,
        connection: HTTPConnection,
        decision: Decision,
        throttle: ConnectionThrottle,
        context: Mapping[str, Any],
    ) -> None:
        """``on_throttled`` as the HTTP plumbing calls it (handshakes)."""
        if not self.shadow:
            await self.refusal_handler(cast(WebSocket, connection), decision, self, context)

    async def gate_scope(
        self,
        middleware: ThrottleMiddleware,
        entries: Sequence[MiddlewareThrottle],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """`ThrottleMiddleware` gates the handshake (`traffik.websocket.handshake`)."""
        await gate_handshake(middleware, entries, scope, receive, send)

    # -- keys ----------------------------------------------------------------------------

    def key_suffix(self, connection: HTTPConnection) -> str:
        if self.per_connection:
            return ":conn:" + connection_id(connection.scope)
        return super().key_suffix(connection)

    @ConnectionThrottle.rules.setter  # type: ignore[attr-defined,untyped-decorator]
    def rules(self, rules: tuple[Rule, ...]) -> None:
        self._rules = rules
        # A per-connection budget starts with the connection: its handshake is not limited.
        self.gate = self._admits if rules or self.per_connection else None

    async def _admits(self, connection: HTTPConnection) -> bool:
        if self.per_connection and (
            getattr(connection, "application_state", WebSocketState.CONNECTING)
            is WebSocketState.CONNECTING
        ):
            return False
        return await self._rules_allow(connection) if self._rules else True


def _valid_close_code(code: object) -> bool:
    if isinstance(code, bool) or not isinstance(code, int):
        return False
    return code in (1008, 1013) or 4000 <= code <= 4999


def _core_cost(cost: object) -> int | CostFunction[HTTPConnection]:
    """The cost as the core takes it: an int, or a function of the connection (checked there)."""
    if isinstance(cost, MessageCost):
        return _CostOfMessage(cost)
    return cast("int | CostFunction[HTTPConnection]", cost)

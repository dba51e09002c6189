"""`ConnectionThrottle`: what HTTP and WebSocket throttles share.

A throttle of a Starlette connection: who the client is (its address by default, see
`traffik.fastapi.proxies`), its keys (per route and method by default), the rules saying
which connections it limits (its ``gate``), the registry it joins, the rate-limit headers
it reports, and the handler called when it refuses. `HTTPThrottle` (this package) and
``WebSocketThrottle`` (traffik-websocket) are its two kinds.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from traffik._legacy_keywords import check_connection_keywords
from traffik.backends.base import APP_STATE_ATTRIBUTE, ThrottleBackend
from traffik.decision import Decision
from traffik.error_policy import OnError
from traffik.exceptions import ConfigurationError
from traffik.fastapi._legacy import LegacyConnectionMethods
from traffik.fastapi.custom_headers import HeaderStat
from traffik.fastapi.custom_rendering import CustomHeader
from traffik.fastapi.handlers import raise_throttled, resolve_refusal_handler
from traffik.fastapi.headers import (
    ALL_HEADERS,
    HeaderSpec,
    HeaderTemplate,
    header_choice,
    header_template,
    policy_item,
    policy_name,
)
from traffik.fastapi.methods import key_method
from traffik.fastapi.proxies import address_identity, get_remote_address
from traffik.fastapi.registry import GLOBAL_REGISTRY, ThrottleRegistry
from traffik.fastapi.resolved_headers import get_headers
from traffik.fastapi.routes import RouteInfo, route_info
from traffik.fastapi.rules import Rule, order_rules, rules_allow
from traffik.identities import ExemptedType
from traffik.rates import RateLike
from traffik.stats import ThrottleStat
from traffik.strategies.base import Params, Strategy
from traffik.throttle import CostFunction, Identifier, ParamsFunction, RateFunction, Throttle

if TYPE_CHECKING:
    from traffik.fastapi.middleware import MiddlewareThrottle, ThrottleMiddleware

__all__ = [
    "KEY_BY",
    "ConnectionThrottle",
    "DependencySignature",
    "KeyBy",
    "MillisecondHandler",
    "ThrottledHandler",
]

KeyBy = Literal["route", "path", "client"]
KEY_BY: Final = ("route", "path", "client")

# The throttle is typed Any: a handler written for HTTP throttles (``throttle:
# BaseHTTPThrottle``) or for any connection throttle fits alike.
ThrottledHandler = Callable[[HTTPConnection, Decision, Any, Mapping[str, Any]], Awaitable[Any]]
"""``on_throttled(connection, decision, throttle, context)``, called on refusal."""

MillisecondHandler = Callable[[HTTPConnection, float, Any, Mapping[str, Any]], Awaitable[Any]]
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


class ConnectionThrottle(LegacyConnectionMethods, Throttle[HTTPConnection]):
    """What HTTP and WebSocket throttles share: identities, keys, rules, headers, the
    refusal handler. See `HTTPThrottle` for the parameters."""

    #: Whether an admitted request holds its units until it ends (a concurrency slot).
    holds: ClassVar[bool] = False
    #: The ASGI scope type this throttle limits: "http", or "websocket" for
    #: ``WebSocketThrottle`` (traffik-websocket). `ThrottleMiddleware` applies a throttle
    #: to scopes of its type only.
    scope_type: ClassVar[str]
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
        min_wait_period: float | None = None,
        skip_handler: bool = False,
        cache_ids: Literal[True] = True,
        dynamic_rules: bool = False,
        dynamic_backend: bool = False,
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
            min_wait_period=min_wait_period,
            dynamic_backend=dynamic_backend,
        )
        #: traffik 1.x's ``skip_handler``: a refusal is recorded (`is_throttled`,
        #: `get_wait`) but its handler is not called, so the request goes on.
        self.skip_handler = check_connection_keywords(
            uid, skip_handler=skip_handler, cache_ids=cache_ids, dynamic_rules=dynamic_rules
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
        self._own_suffix = type(self).key_suffix is ConnectionThrottle.key_suffix
        #: Which headers this throttle reports (bits of `traffik.fastapi.headers`), and
        #: its custom ones; None follows `set_default_headers`.
        self.header_mask: int | None = None
        self.custom_headers: tuple[CustomHeader, ...] = ()
        if headers is not None:
            self.header_mask, self.custom_headers = header_choice(headers)
        reports_policy = self.header_mask is None or self.header_mask & ALL_HEADERS
        self.policy_name = policy_name(uid) if reports_policy else b""
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

    # -- custom headers ----------------------------------------------------------------

    async def get_headers(
        self,
        connection: HTTPConnection,
        headers: Mapping[str, Any] | None = None,
        stat: HeaderStat | ThrottleStat | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        """This throttle's custom headers for ``connection``, by name, as in traffik 1.x
        (`traffik.fastapi.resolved_headers`); ``headers`` overrides some for this call."""
        return await get_headers(self, connection, headers, stat, context)

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

    async def gate_scope(
        self,
        middleware: ThrottleMiddleware,
        entries: Sequence[MiddlewareThrottle],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """How `ThrottleMiddleware` applies ``entries`` (throttles of this kind, of
        `scope_type`) to a connection that is no HTTP request, before the application
        runs: ``WebSocketThrottle`` gates the handshake. HTTP throttles have no need."""
        raise NotImplementedError(f"{type(self).__name__} limits no {scope['type']!r} scope")

    def find_backend(self, connection: HTTPConnection) -> ThrottleBackend | None:
        state = getattr(connection.scope.get("app"), "state", None)
        backend = getattr(state, APP_STATE_ATTRIBUTE, None)
        return backend if isinstance(backend, ThrottleBackend) else None

    def __repr__(self) -> str:
        rate = self.rate if self.rate is not None else "<function>"
        return f"{type(self).__name__}({self.uid!r}, rate={rate!s}, strategy={self.strategy!r})"

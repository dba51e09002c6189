"""`HTTPThrottle`: a throttle for Starlette and FastAPI connections.

Use it as a FastAPI dependency (``Depends(throttle)``) or await it yourself
(``await throttle(request)``). Over the limit it raises `ConnectionThrottled` (HTTP 429
with ``Retry-After``) unless ``handle_throttled`` says otherwise.

Keys are per client, per route and per method: ``<uid>:{<client>}:<METHOD>:<route>``,
where the route is its template (``/items/{id}`` is one budget for every id) when the
router has matched one, and the concrete path otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from starlette.requests import HTTPConnection, Request

from traffik.backends.base import APP_STATE_ATTRIBUTE, ThrottleBackend
from traffik.decision import Decision
from traffik.error_policy import OnError
from traffik.fastapi.exceptions import ConnectionThrottled
from traffik.fastapi.proxies import get_remote_address
from traffik.identities import ExemptedType
from traffik.rates import RateLike
from traffik.strategies.base import Params, Strategy
from traffik.throttle import CostFunction, Identifier, ParamsFunction, RateFunction, Throttle

__all__ = ["DECISION_STATE_ATTRIBUTE", "HTTPThrottle", "ThrottledHandler", "raise_throttled"]

DECISION_STATE_ATTRIBUTE = "traffik_decision"
"""Where the last decision for a connection is recorded on ``connection.state``."""

ThrottledHandler = Callable[[HTTPConnection, Decision, "HTTPThrottle"], Awaitable[Any]]


async def raise_throttled(
    connection: HTTPConnection, decision: Decision, throttle: HTTPThrottle
) -> NoReturn:
    """The default ``handle_throttled``: raise HTTP 429 with ``Retry-After``."""
    raise ConnectionThrottled(decision.retry_after, decision=decision)


class HTTPThrottle(Throttle[HTTPConnection]):
    """Rate-limits HTTP requests per client.

    Takes every parameter of `traffik.throttle.Throttle`, plus:

    :param handle_throttled: an async function ``(connection, decision, throttle)`` called
        when a request is refused; by default it raises `ConnectionThrottled` (HTTP 429).
    :param use_method: whether the HTTP method is part of the key (GET and POST counted
        apart). True by default.
    """

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
        handle_throttled: ThrottledHandler | None = None,
        use_method: bool = True,
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
        )
        self.handle_throttled: ThrottledHandler = handle_throttled or raise_throttled
        self.use_method = use_method

    async def default_identifier(self, connection: HTTPConnection) -> str | ExemptedType:
        return get_remote_address(connection)

    def key_suffix(self, connection: HTTPConnection) -> str:
        scope = connection.scope
        template = getattr(scope.get("route"), "path", None)
        path = scope["path"] if template is None else scope.get("root_path", "") + template
        if self.use_method and scope["type"] == "http":
            return f":{scope['method']}:{path}"
        return f":{path}"

    def find_backend(self, connection: HTTPConnection) -> ThrottleBackend | None:
        state = getattr(connection.scope.get("app"), "state", None)
        backend = getattr(state, APP_STATE_ATTRIBUTE, None)
        return backend if isinstance(backend, ThrottleBackend) else None

    async def __call__(self, request: Request) -> Decision:
        """Check ``request``; over the limit, call ``handle_throttled`` (HTTP 429 by default)."""
        decision = await self.hit(request)
        setattr(request.state, DECISION_STATE_ATTRIBUTE, decision)
        if not decision.allowed:
            await self.handle_throttled(request, decision, self)
        return decision


RequestThrottle = HTTPThrottle
"""The traffik 1.x alias of `HTTPThrottle`."""

"""`throttled`: limit an endpoint with a decorator, on FastAPI and on plain Starlette.

One decorator serves both frameworks, for sync and async endpoints alike:

* On FastAPI, it adds each throttle to the endpoint's signature as a hidden dependency
  (``Depends(throttle)``), so FastAPI runs them before the endpoint like any other
  dependency — with the same all-or-nothing gathering, the same headers, nothing in the
  OpenAPI schema — and then calls the endpoint as it would have (a sync endpoint still
  runs in FastAPI's thread pool).
* On Starlette, which calls the endpoint with the request alone, the wrapper decides the
  throttles itself. A sync endpoint runs in Starlette's thread pool as usual; the wrapper
  reaches back into the event loop for the asynchronous parts (`anyio.from_thread`).
  A refusal becomes a JSON 429 response, unless the application registered its own
  handler for `ConnectionThrottled` (or `HTTPException`).
* On a WebSocket endpoint (``WebSocketThrottle`` s, from traffik-websocket), the throttles
  gate the handshake: a refusal is raised for the framework to turn into a denial
  response (HTTP 429) or a close, before the endpoint runs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast, overload

import anyio.from_thread
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import Response

from traffik.exceptions import ConfigurationError
from traffik.fastapi.connection_throttle import ConnectionThrottle
from traffik.fastapi.enforcement import enforce
from traffik.fastapi.exceptions import ConnectionThrottled
from traffik.fastapi.handlers import throttled_response
from traffik.fastapi.ledger import LEDGER_KEY, RequestLedger
from traffik.fastapi.routes import THROTTLES_ATTRIBUTE

__all__ = ["throttled"]

F = TypeVar("F", bound=Callable[..., Any])

_HIDDEN_PREFIX = "_traffik_throttle_"


@overload
def throttled(*throttles: ConnectionThrottle) -> Callable[[F], F]: ...


@overload
def throttled(*throttles: ConnectionThrottle, route: F) -> F: ...


def throttled(*throttles: ConnectionThrottle, route: F | None = None) -> Callable[[F], F] | F:
    """Limit the decorated endpoint with ``throttles`` (decided together, all-or-nothing).

    >>> @app.get("/items")  # doctest: +SKIP
    ... @throttled(per_second, per_day)
    ... async def list_items(): ...

    ``throttled(*throttles, route=endpoint)`` (traffik 1.x) returns the limited endpoint.
    """
    if not throttles:
        raise ConfigurationError("throttled() needs at least one throttle")
    for throttle in throttles:
        if not isinstance(throttle, ConnectionThrottle):
            raise ConfigurationError(
                "throttled() takes HTTPThrottle, ConcurrencyLimit or WebSocketThrottle "
                f"instances, got {throttle!r}"
            )
    if len({throttle.scope_type for throttle in throttles}) > 1:
        raise ConfigurationError(
            f"throttled() limits one kind of endpoint: HTTP or WebSocket throttles, not both "
            f"({', '.join(map(repr, throttles))})"
        )

    def decorate(endpoint: F) -> F:
        if not callable(endpoint):
            raise ConfigurationError(f"throttled() decorates endpoints, got {endpoint!r}")
        return cast(F, _wrap(endpoint, tuple(throttles)))

    return decorate if route is None else decorate(route)


def _wrap(endpoint: Callable[..., Any], throttles: tuple[ConnectionThrottle, ...]) -> Any:
    signature, names = _with_dependencies(endpoint, throttles)
    holding = tuple(throttle for throttle in throttles if throttle.holds)

    if inspect.iscoroutinefunction(endpoint) or inspect.iscoroutinefunction(
        getattr(endpoint, "__call__", None)  # noqa: B004 - an async callable object
    ):

        @functools.wraps(endpoint)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if names and names[0] in kwargs:  # FastAPI ran the throttles as dependencies
                for name in names:
                    del kwargs[name]
                return await endpoint(*args, **kwargs)
            connection = _connection_in(args, kwargs, endpoint)
            if connection.scope["type"] == "websocket":
                # A refusal raises: the framework's exception handling refuses the
                # handshake (a WebSocket endpoint's return value goes nowhere).
                await enforce(connection, throttles)
                return await endpoint(*args, **kwargs)
            refusal = await _enter(connection, throttles)
            if refusal is not None:
                return refusal
            try:
                result = await endpoint(*args, **kwargs)
            finally:
                if holding:
                    await _release(connection, holding)
            return _with_headers(connection, result)

    else:

        @functools.wraps(endpoint)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if names and names[0] in kwargs:
                for name in names:
                    del kwargs[name]
                return endpoint(*args, **kwargs)
            # Starlette runs sync endpoints in a worker thread: the throttles run on the
            # event loop, and this thread waits for them.
            connection = _connection_in(args, kwargs, endpoint)
            refusal = anyio.from_thread.run(_enter, connection, throttles)
            if refusal is not None:
                return refusal
            try:
                result = endpoint(*args, **kwargs)
            finally:
                if holding:
                    anyio.from_thread.run(_release, connection, holding)
            return _with_headers(connection, result)

    if signature is not None:
        wrapper.__signature__ = signature  # type: ignore[attr-defined]
    inner = getattr(endpoint, THROTTLES_ATTRIBUTE, ())
    setattr(wrapper, THROTTLES_ATTRIBUTE, (*inner, *throttles))
    return wrapper


def _with_dependencies(
    endpoint: Callable[..., Any], throttles: Sequence[ConnectionThrottle]
) -> tuple[inspect.Signature | None, tuple[str, ...]]:
    """The endpoint's signature plus one hidden ``Depends(throttle)`` per throttle (when
    FastAPI is installed), and the names of the hidden parameters."""
    try:
        from fastapi import Depends
    except ImportError:  # plain Starlette: no dependencies to declare
        return None, ()
    signature = inspect.signature(endpoint)
    parameters = list(signature.parameters.values())
    taken = {parameter.name for parameter in parameters}
    names: list[str] = []
    index = 0
    for _ in throttles:
        while f"{_HIDDEN_PREFIX}{index}" in taken:
            index += 1
        names.append(f"{_HIDDEN_PREFIX}{index}")
        taken.add(names[-1])
    hidden = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=Depends(cast(Callable[..., Any], throttle)),
        )
        for name, throttle in zip(names, throttles, strict=True)
    ]
    if parameters and parameters[-1].kind is inspect.Parameter.VAR_KEYWORD:
        parameters[-1:-1] = hidden
    else:
        parameters.extend(hidden)
    return signature.replace(parameters=parameters), tuple(names)


def _connection_in(
    args: tuple[Any, ...], kwargs: dict[str, Any], endpoint: Callable[..., Any]
) -> HTTPConnection:
    for value in (*args, *kwargs.values()):
        if isinstance(value, HTTPConnection):
            return value
    raise ConfigurationError(
        f"@throttled endpoint {getattr(endpoint, '__qualname__', endpoint)!r} was called "
        "without the request: on Starlette it must take the request as an argument"
    )


async def _enter(
    connection: HTTPConnection, throttles: tuple[ConnectionThrottle, ...]
) -> Response | None:
    """Decide ``throttles``; a response when refused and the application leaves the 429
    to us, else None (a refusal the application renders itself is raised)."""
    try:
        await enforce(connection, throttles)
    except ConnectionThrottled as exc:
        if _renders_itself(connection):
            raise
        return throttled_response(exc)
    return None


def _renders_itself(connection: HTTPConnection) -> bool:
    handlers = getattr(connection.scope.get("app"), "exception_handlers", None)
    if not handlers:
        return False
    return any(key in handlers for key in (ConnectionThrottled, HTTPException, 429))


async def _release(connection: HTTPConnection, holding: tuple[ConnectionThrottle, ...]) -> None:
    ledger: RequestLedger | None = connection.scope.get(LEDGER_KEY)
    if ledger is not None:
        for throttle in holding:
            await ledger.release(throttle)


def _with_headers(connection: HTTPConnection, result: Any) -> Any:
    """Add the rate-limit headers to a response the endpoint returned (unless a
    `ThrottleMiddleware` adds them to every response)."""
    if isinstance(result, Response):
        ledger: RequestLedger | None = connection.scope.get(LEDGER_KEY)
        if ledger is not None and not ledger.managed:
            result.raw_headers.extend(ledger.headers(connection.scope))
    return result

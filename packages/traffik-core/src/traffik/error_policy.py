"""What a throttle does when deciding fails (``on_error``).

``on_error`` decides two kinds of failure only: the store's (`STORE_FAILURES`: it is
unreachable, silent, or answers with an error) and the user's own functions (identifier,
rate, cost, params) raising at run time. Anything else — a `ConfigurationError`, an error
raised by a strategy, a bug — propagates: turning it into "allowed" would open the limit
for as long as the bug lasts.

* ``"allow"`` (the default): let the request through; the API stays up.
* ``"throttle"``: refuse it, asking the client to retry after a second.
* ``"raise"``: raise `BackendError` (or the original `TraffikError`).
* an async handler: receives an `ErrorContext` and returns the seconds to wait
  (0 or less lets the request through) or a `Decision`.
* a traffik 1.x handler, ``async (connection, exc_info) -> wait_ms``: told apart by its
  two parameters, it keeps its 1.x meaning: ``exc_info`` is a `ThrottleExceptionInfo`
  mapping and the wait it returns is in **milliseconds** (1000 means one second).

A handler whose signature fits neither form is refused when it is given.

A throttle's own setting overrides its backend's.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypedDict

from traffik._logging import logger
from traffik.callbacks import arguments_taken, describe
from traffik.decision import NOT_LIMITED, Decision
from traffik.exceptions import BackendError, ConfigurationError, TraffikError
from traffik.observability import OBSERVERS, report_failure

if TYPE_CHECKING:
    from traffik.backends.base import Hit, ThrottleBackend
    from traffik.rates import Rate
    from traffik.throttle import Throttle

__all__ = [
    "ERROR_RETRY_AFTER",
    "LET_THROUGH",
    "ON_ERROR_POLICIES",
    "STORE_FAILURES",
    "ErrorContext",
    "ErrorHandler",
    "ErrorPolicy",
    "FailureWarnings",
    "MillisecondErrorFunction",
    "MillisecondErrorHandler",
    "OnError",
    "ThrottleExceptionInfo",
    "decide_on_error",
    "fail",
    "validate_on_error",
]


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """Everything known about a failed check, handed to an ``on_error`` handler.

    Fields not yet known when the failure happened (say, the key when the identifier
    failed) are ``None``.
    """

    exception: BaseException
    connection: Any
    key: str | None
    cost: int | None
    rate: Rate | None
    backend: ThrottleBackend | None
    throttle: Any


class ThrottleExceptionInfo(TypedDict):
    """What a traffik 1.x ``on_error(connection, exc_info)`` handler receives."""

    exception: BaseException
    connection: Any
    key: str | None
    cost: int | None
    rate: Rate | None
    backend: ThrottleBackend | None
    context: Mapping[str, Any] | None
    throttle: Any


ErrorHandler = Callable[[ErrorContext], Awaitable[float | Decision]]
"""``async (context: ErrorContext) -> seconds | Decision``."""
MillisecondErrorFunction = Callable[[Any, ThrottleExceptionInfo], Awaitable[float]]
"""``async (connection, exc_info) -> wait_ms``: the traffik 1.x handler."""
ErrorPolicy = Literal["allow", "throttle", "raise"] | ErrorHandler
"""An ``on_error`` setting once checked (a 1.x handler adapted)."""
OnError = ErrorPolicy | MillisecondErrorFunction
"""What ``on_error=`` accepts."""

ON_ERROR_POLICIES: Final = ("allow", "throttle", "raise")

STORE_FAILURES: Final[tuple[type[Exception], ...]] = (
    BackendError,
    OSError,  # a backend that does not translate its socket's errors
    TimeoutError,
    asyncio.TimeoutError,  # not TimeoutError before Python 3.11
)
"""What a backend raises when its store fails: the only backend errors ``on_error`` decides."""


def validate_on_error(value: object, *, allow_none: bool = True) -> ErrorPolicy | None:
    """Return ``value`` if it is a valid ``on_error`` setting, else raise ConfigurationError."""
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        if value in ON_ERROR_POLICIES:
            return value  # type: ignore[return-value]  # narrowed by the membership test
        raise ConfigurationError(
            f"on_error must be one of {', '.join(map(repr, ON_ERROR_POLICIES))} "
            f"or an async callable, got {value!r}"
        )
    if callable(value):
        forms = (
            "async def on_error(context: ErrorContext) -> float | Decision  (seconds)",
            "async def on_error(connection, exc_info) -> float  (traffik 1.x: milliseconds)",
        )
        if arguments_taken(value, (1, 2), "on_error", forms) == 2:
            return MillisecondErrorHandler(value)
        return value
    raise ConfigurationError(
        f"on_error must be one of {', '.join(map(repr, ON_ERROR_POLICIES))} "
        f"or an async callable, got {value!r}"
    )


class MillisecondErrorHandler:
    """A traffik 1.x handler ``(connection, exc_info) -> wait_ms`` as an `ErrorHandler`:
    the wait it returns is in milliseconds, as in 1.x (a `Decision` passes as it is)."""

    __slots__ = ("handler",)

    def __init__(self, handler: Callable[[Any, ThrottleExceptionInfo], Any]) -> None:
        self.handler = handler

    async def __call__(self, context: ErrorContext) -> float | Decision:
        throttle = context.throttle
        info: ThrottleExceptionInfo = {
            "exception": context.exception,
            "connection": context.connection,
            "key": context.key,
            "cost": context.cost,
            "rate": context.rate,
            "backend": context.backend,
            "context": getattr(throttle, "context", None),
            "throttle": throttle,
        }
        result = self.handler(context.connection, info)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Decision):
            return result
        return float(result) / 1000.0

    def __repr__(self) -> str:
        return f"{describe(self.handler)} (traffik 1.x, milliseconds)"


ERROR_RETRY_AFTER: Final = 1.0
"""Seconds a client is asked to wait when ``on_error="throttle"`` refuses it."""

LET_THROUGH: Final = Decision(allowed=True, limit=0, remaining=0, reset_after=0.0, retry_after=0.0)
"""What ``on_error`` returns when it lets a request through: equal to `NOT_LIMITED` but not
the same object. A throttle returns `NOT_LIMITED` itself exactly when no limit applies, so
the code reporting decisions can tell an exemption from a failure."""


async def decide_on_error(
    policy: ErrorPolicy, context: ErrorContext, *, from_backend: bool
) -> Decision:
    """The decision ``policy`` makes of the failure described by ``context``.

    ``from_backend`` says whether the backend failed (rather than, say, the identifier):
    ``"raise"`` then raises `BackendError` naming the throttle, with the failure as its
    cause; other failures, and Traffik's own errors, are raised as they are.
    """
    if policy == "allow":
        return LET_THROUGH
    rate = context.rate
    limit = rate.limit if rate is not None and rate.limit > 0 else 1
    if policy == "throttle":
        return Decision(False, limit, 0, ERROR_RETRY_AFTER, ERROR_RETRY_AFTER)
    exc = context.exception
    if policy == "raise":
        if isinstance(exc, TraffikError) or not from_backend:
            raise exc
        uid = getattr(context.throttle, "uid", context.throttle)
        raise BackendError(f"Throttle {uid!r} could not decide: {exc!r}", cause=exc) from exc
    assert callable(policy)
    result: Any = policy(context)
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, Decision):
        return LET_THROUGH if result is NOT_LIMITED else result
    wait = float(result)
    if wait <= 0:
        return LET_THROUGH
    return Decision(False, limit, 0, wait, wait)


async def fail(
    throttle: Throttle[Any],
    connection: Any,
    exc: Exception,
    hit: Hit | None = None,
    backend: ThrottleBackend | None = None,
    *,
    key: str | None = None,
    cost: int | None = None,
    rate: Rate | None = None,
    latency: float | None = None,
    peek: bool = False,
) -> Decision:
    """What ``throttle``'s ``on_error`` makes of a failure; observers hear of it either way.

    ``hit`` is what ``backend`` failed to decide; None when the user's own function
    (identifier, rate, cost, params) failed before there was one. A backend's failure
    that is not the store's (`STORE_FAILURES`) is raised again: a strategy's error or a
    bug never admits. ``latency`` (seconds the failed call took) and ``peek`` go to
    observers.
    """
    if hit is not None:
        key, cost, rate = hit.key, hit.cost, hit.rate
    if not OBSERVERS:
        return await _on_error(throttle, connection, exc, hit, backend, key, cost, rate)
    try:
        decision = await _on_error(throttle, connection, exc, hit, backend, key, cost, rate)
    except Exception:
        report_failure(throttle, exc, None, key=key, cost=cost, latency=latency, peek=peek)
        raise
    report_failure(throttle, exc, decision, key=key, cost=cost, latency=latency, peek=peek)
    return decision


async def _on_error(
    throttle: Throttle[Any],
    connection: Any,
    exc: Exception,
    hit: Hit | None,
    backend: ThrottleBackend | None,
    key: str | None,
    cost: int | None,
    rate: Rate | None,
) -> Decision:
    if hit is not None and not isinstance(exc, STORE_FAILURES):
        raise exc  # the store did not fail: a strategy's error or a bug never admits
    policy = throttle.on_error
    if policy is None:
        if backend is None:
            try:
                backend = throttle._backend_for(connection)
            except ConfigurationError:
                backend = None
        policy = backend.on_error if backend is not None else "allow"
    if policy != "raise":  # a raised error speaks for itself
        throttle._failure_warnings.warn(throttle.uid, exc, policy)
    context = ErrorContext(exc, connection, key, cost, rate, backend, throttle)
    return await decide_on_error(policy, context, from_backend=hit is not None)


class FailureWarnings:
    """One throttle's failure warnings: at most one per ``interval`` seconds, counting the
    rest, so an outage is a line in the logs now and then, not a line per request."""

    __slots__ = ("_clock", "_last", "_unreported", "interval")

    def __init__(
        self, interval: float = 30.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._last = -math.inf
        self._unreported = 0

    def warn(self, uid: str, exc: BaseException, policy: ErrorPolicy) -> None:
        now = self._clock()
        if now - self._last < self.interval:
            self._unreported += 1
            return
        suppressed, self._unreported = self._unreported, 0
        self._last = now
        logger.warning(
            "Throttle %r could not decide (%s: %s); on_error=%r applies%s",
            uid,
            type(exc).__name__,
            exc,
            policy if isinstance(policy, str) else getattr(policy, "__name__", policy),
            f" ({suppressed} similar failures since the last warning)" if suppressed else "",
        )

"""What happens to a refused request: the refusal handlers, and rendering the 429 as JSON
(``{"detail": ...}``) or as ``application/problem+json`` (RFC 9457, with the
``quota-exceeded`` type of draft-ietf-httpapi-ratelimit-headers-11).

A throttle takes its refusal handler in one of two forms:

* ``on_throttled=async (connection, decision, throttle, context)``: the `Decision`
  (``decision.retry_after`` in seconds);
* ``handle_throttled=async (connection, wait_ms, throttle, context)``: traffik 1.x's
  name, with its 1.x meaning: the wait in **milliseconds** (a float; ``math.inf`` when
  waiting cannot help).

Both are checked when given; a ``handle_throttled`` whose second parameter is annotated
as a `Decision` is refused, naming ``on_throttled``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, NoReturn

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from traffik._legacy_keywords import skips_handler
from traffik.callbacks import arguments_taken, describe
from traffik.decision import Decision
from traffik.exceptions import ConfigurationError
from traffik.fastapi.exceptions import ConnectionThrottled
from traffik.fastapi.ledger import LEDGER_KEY, Outcome, RequestLedger

if TYPE_CHECKING:
    from traffik.fastapi.connection_throttle import ConnectionThrottle

__all__ = [
    "QUOTA_EXCEEDED",
    "MillisecondThrottledHandler",
    "handle_refusals",
    "raise_throttled",
    "resolve_refusal_handler",
    "throttled_exception_handler",
    "throttled_problem_handler",
    "throttled_response",
]

QUOTA_EXCEEDED: Final = "https://iana.org/assignments/http-problem-types#quota-exceeded"
_QUOTA_EXCEEDED_TITLE: Final = "Request cannot be satisfied as assigned quota has been exceeded"


RefusalHandler = Callable[[Any, Decision, Any, Mapping[str, Any]], Awaitable[Any]]
"""``on_throttled(connection, decision, throttle, context)``."""


class MillisecondThrottledHandler:
    """A traffik 1.x ``handle_throttled(connection, wait_ms, throttle, context)`` as an
    ``on_throttled`` handler: it gets the wait in milliseconds, as in 1.x."""

    __slots__ = ("handler",)

    def __init__(self, handler: Callable[..., Any]) -> None:
        self.handler = handler

    async def __call__(
        self, connection: Any, decision: Decision, throttle: Any, context: Mapping[str, Any]
    ) -> Any:
        result = self.handler(connection, decision.retry_after * 1000.0, throttle, context)
        if inspect.isawaitable(result):
            result = await result
        return result

    def __repr__(self) -> str:
        return f"{describe(self.handler)} (traffik 1.x handle_throttled, milliseconds)"


def resolve_refusal_handler(
    handle_throttled: object, on_throttled: object, default: RefusalHandler, uid: str
) -> RefusalHandler:
    """The ``on_throttled`` handler a throttle calls on refusal, from its parameters.

    :raises ConfigurationError: when both are given, or one does not take four
        positional arguments, or ``handle_throttled`` is written for a `Decision`.
    """
    if handle_throttled is not None and on_throttled is not None:
        raise ConfigurationError(
            f"Throttle {uid!r}: pass handle_throttled (traffik 1.x: wait in ms) or "
            "on_throttled (the Decision), not both"
        )
    if on_throttled is not None:
        shown = ("async def on_throttled(connection, decision, throttle, context)",)
        arguments_taken(on_throttled, (4,), f"on_throttled of throttle {uid!r}", shown)
        return on_throttled  # type: ignore[return-value]  # checked above
    if handle_throttled is None:
        return default
    what = f"handle_throttled of throttle {uid!r}"
    forms = (
        "async def handle_throttled(connection, wait_ms: float, throttle, context)"
        "  (traffik 1.x; milliseconds)",
        "or, for the Decision: on_throttled=async (connection, decision, throttle, context)",
    )
    arguments_taken(handle_throttled, (4,), what, forms)
    if _second_is_decision(handle_throttled):
        raise ConfigurationError(
            f"{what} takes (connection, wait_ms, throttle, context) as in traffik 1.x, with "
            f"the wait in milliseconds; {describe(handle_throttled)} takes a Decision: pass "
            "it as on_throttled=..."
        )
    return MillisecondThrottledHandler(handle_throttled)  # type: ignore[arg-type]


def _second_is_decision(function: object) -> bool:
    """Whether ``function``'s second parameter is annotated as a `Decision`."""
    try:
        parameters = list(inspect.signature(function).parameters.values())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    if len(parameters) < 2:
        return False
    annotation = parameters[1].annotation
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1] == "Decision"
    return isinstance(annotation, type) and issubclass(annotation, Decision)


async def raise_throttled(
    connection: HTTPConnection,
    decision: Decision,
    throttle: ConnectionThrottle,
    context: Mapping[str, Any],
) -> NoReturn:
    """The default ``on_throttled``: raise `ConnectionThrottled` (HTTP 429).

    ``context`` may set ``status_code``, ``detail`` and extra ``headers``. The rate-limit
    headers of every limit decided for the request go with it, unless a
    `ThrottleMiddleware` adds them to the response itself.
    """
    ledger: RequestLedger | None = connection.scope.get(LEDGER_KEY)
    headers: dict[str, str] = {}
    if ledger is not None and not ledger.managed:
        for name, value in ledger.headers(connection.scope):
            headers[name.decode("latin-1")] = value.decode("latin-1")
    extra = context.get("headers")
    if extra:
        headers.update(extra)
    raise ConnectionThrottled(
        decision.retry_after,
        status_code=context.get("status_code", 429),
        detail=context.get("detail"),
        headers=headers,
        decision=decision,
        violated_policies=ledger.violated_policies() if ledger is not None else [throttle.uid],
    )


def throttled_response(exc: ConnectionThrottled, *, problem: bool = False) -> Response:
    """The response for a refusal: JSON ``{"detail": ...}``, or problem details."""
    if not problem:
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )
    body = {
        "type": QUOTA_EXCEEDED,
        "title": _QUOTA_EXCEEDED_TITLE,
        "status": exc.status_code,
        "detail": exc.detail,
        "violated-policies": exc.violated_policies,
    }
    return JSONResponse(
        body,
        status_code=exc.status_code,
        headers=exc.headers,
        media_type="application/problem+json",
    )


async def throttled_exception_handler(request: Request, exc: Exception) -> Response:
    """``Starlette(exception_handlers={ConnectionThrottled: throttled_exception_handler})``."""
    assert isinstance(exc, ConnectionThrottled)
    return throttled_response(exc)


async def throttled_problem_handler(request: Request, exc: Exception) -> Response:
    """Render refusals as ``application/problem+json`` with the ``quota-exceeded`` type:
    ``app.add_exception_handler(ConnectionThrottled, throttled_problem_handler)``."""
    assert isinstance(exc, ConnectionThrottled)
    return throttled_response(exc, problem=True)


async def handle_refusals(
    connection: HTTPConnection,
    ledger: RequestLedger,
    own: list[Outcome],
    gathered: list[Outcome],
    context: Mapping[str, Any] | None,
    skip_handler: bool | None = None,
) -> None:
    """Call ``handle_throttled`` for each refusal, the longest wait first (the default
    handler raises, ending the request). Every handler is told the request's longest
    wait, so ``Retry-After`` names the time when every limit would admit it.

    A throttle with traffik 1.x's ``skip_handler`` (or ``skip_handler=True`` for this
    call's own throttles) has its refusal recorded but its handler left out."""
    wait = ledger.wait
    ordered = [
        *sorted(own, key=lambda o: o.decision.retry_after, reverse=True),
        *sorted(gathered, key=lambda o: o.decision.retry_after, reverse=True),
    ]
    for outcome in ordered:
        outcome.handled = True
        throttle = outcome.throttle
        if skips_handler(throttle, skip_handler if outcome in own else None):
            continue
        decision = outcome.decision
        if decision.retry_after < wait:
            decision = decision._replace(retry_after=wait)
        merged = throttle.context
        if context and outcome in own:
            merged = {**merged, **context}
        await throttle.on_throttled(connection, decision, throttle, merged)

"""What happens to a refused request: the default ``handle_throttled``, and rendering the
429 as JSON (``{"detail": ...}``) or as ``application/problem+json`` (RFC 9457, with the
``quota-exceeded`` type of draft-ietf-httpapi-ratelimit-headers-11)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, NoReturn

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from traffik.decision import Decision
from traffik.fastapi.exceptions import ConnectionThrottled
from traffik.fastapi.ledger import LEDGER_KEY, Outcome, RequestLedger

if TYPE_CHECKING:
    from traffik.fastapi.connection_throttle import ConnectionThrottle

__all__ = [
    "QUOTA_EXCEEDED",
    "handle_refusals",
    "raise_throttled",
    "throttled_exception_handler",
    "throttled_problem_handler",
    "throttled_response",
]

QUOTA_EXCEEDED: Final = "https://iana.org/assignments/http-problem-types#quota-exceeded"
_QUOTA_EXCEEDED_TITLE: Final = "Request cannot be satisfied as assigned quota has been exceeded"


async def raise_throttled(
    connection: HTTPConnection,
    decision: Decision,
    throttle: ConnectionThrottle,
    context: Mapping[str, Any],
) -> NoReturn:
    """The default ``handle_throttled``: raise `ConnectionThrottled` (HTTP 429).

    ``context`` may set ``status_code``, ``detail`` and extra ``headers``. The rate-limit
    headers of every limit decided for the request go with it, unless a
    `ThrottleMiddleware` adds them to the response itself.
    """
    ledger: RequestLedger | None = connection.scope.get(LEDGER_KEY)
    headers: dict[str, str] = {}
    if ledger is not None and not ledger.managed:
        for name, value in ledger.headers():
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
        await throttle.handle_throttled(connection, decision, throttle, merged)

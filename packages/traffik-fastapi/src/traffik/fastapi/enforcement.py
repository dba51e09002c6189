"""Deciding the throttles of one request: `enter`, every way in's first step.

A throttle called on a request (as a dependency, by `throttled`, directly) enters here. The
first to run decides, in one all-or-nothing step, every throttle the route declares
(`traffik.fastapi.routes`); the others find their decision in the request's ledger
(`traffik.fastapi.ledger`). Refusals go to `traffik.fastapi.handlers.handle_refusals`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection
from starlette.responses import Response

from traffik.fastapi.handlers import handle_refusals
from traffik.fastapi.ledger import LEDGER_KEY, Call, Outcome, RequestLedger
from traffik.fastapi.routes import route_throttles

if TYPE_CHECKING:
    from traffik.fastapi.throttle import BaseHTTPThrottle

__all__ = ["enter"]


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
        await handle_refusals(connection, ledger, [outcome], [], context)
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
            await handle_refusals(connection, ledger, refused, refused_elsewhere, context)
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

"""Deciding the throttles of one request: `enforce`, every way in's first step.

A throttle called on a request (as a dependency, by `throttled`, directly) enters here. The
first to run decides, in one all-or-nothing step, every throttle the route declares
(`traffik.fastapi.routes`); the others find their decision in the request's ledger
(`traffik.fastapi.ledger`). Refusals go to `traffik.fastapi.handlers.handle_refusals`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import HTTPConnection
from starlette.responses import Response

from traffik.fastapi.handlers import handle_refusals
from traffik.fastapi.ledger import LEDGER_KEY, Call, Outcome, RequestLedger, wait_out
from traffik.fastapi.routes import route_throttles
from traffik.pipeline import decide as pipeline_decide
from traffik.pipeline import decide_one

if TYPE_CHECKING:
    from traffik.fastapi.connection_throttle import ConnectionThrottle

__all__ = ["decide_recorded", "enforce"]


async def enforce(
    connection: HTTPConnection,
    throttles: Sequence[ConnectionThrottle],
    *,
    cost: int | None = None,
    context: Mapping[str, Any] | None = None,
    response: Response | None = None,
    skip_handler: bool | None = None,
) -> list[Outcome]:
    """Decide ``throttles`` for ``connection``, handle refusals, and return the outcomes.

    The first call on a request decides the route's plan (every throttle the route
    declares, `traffik.fastapi.routes`) with its own throttles, in one all-or-nothing
    step; a later call of a planned throttle finds its decision in the ledger. Refusals
    go to the ``handle_throttled`` of the refusing throttles, the ones called here first.
    """
    scope = connection.scope
    ledger: RequestLedger | None = scope.get(LEDGER_KEY)
    if ledger is None:
        ledger = scope[LEDGER_KEY] = RequestLedger()
    outcomes: list[Outcome | None] = [ledger.planned_outcome(throttle) for throttle in throttles]
    planned: Sequence[Outcome] = ()
    if None in outcomes:
        calls: list[Call] = [
            (throttle, cost, None)
            for throttle, outcome in zip(throttles, outcomes, strict=True)
            if outcome is None
        ]
        own = len(calls)
        if not ledger.planned_decided:
            ledger.planned_decided = True
            calls.extend((t, None, None) for t in route_throttles(scope) if t not in throttles)
        decided = await decide_recorded(connection, ledger, calls, planned_from=own)
        fresh = iter(decided)
        outcomes = [outcome if outcome is not None else next(fresh) for outcome in outcomes]
        planned = decided[own:]
    if response is not None and not ledger.managed:
        ledger.write_headers(response, scope)
    refused = [o for o in outcomes if o is not None and o.refused and not o.handled]
    refused_elsewhere = [o for o in planned if o.refused and not o.handled]
    if refused or refused_elsewhere:
        await handle_refusals(connection, ledger, refused, refused_elsewhere, context, skip_handler)
    return outcomes  # type: ignore[return-value]  # no None left


async def decide_recorded(
    connection: HTTPConnection,
    ledger: RequestLedger,
    calls: Sequence[Call],
    *,
    planned_from: int,
) -> list[Outcome]:
    """Decide ``calls`` all-or-nothing (`traffik.pipeline.decide`) and record them.

    The calls from ``planned_from`` on are the plan's throttles that have not run yet:
    their own calls find these decisions. When any call is refused, everything the
    request consumed in earlier decisions is given back, so a refused request consumes
    nothing anywhere. Otherwise the request waits out the longest ``delay`` a queueing
    strategy asked for. Shadow throttles neither refuse nor delay.
    """
    if len(calls) == 1:
        throttle, cost, key_suffix = calls[0]
        outcomes: list[Outcome] = [await decide_one(throttle, connection, cost, None, key_suffix)]
    else:
        outcomes = await pipeline_decide(
            [(throttle, connection, cost, key_suffix) for throttle, cost, key_suffix in calls]
        )
    earlier = ledger.record(outcomes, planned_from)
    refused = False
    delay = 0.0
    for outcome in outcomes:
        decision = outcome.decision
        if outcome.throttle.shadow:
            continue
        if not decision.allowed:
            refused = True
        elif decision.delay > delay:
            delay = decision.delay
    if refused:
        if earlier:
            with anyio.CancelScope(shield=True):
                for outcome in earlier:
                    await outcome.give_back()
    elif delay > 0:
        await wait_out(delay)
    return outcomes

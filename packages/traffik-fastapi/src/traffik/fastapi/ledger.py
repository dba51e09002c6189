"""What throttling decided for one request, kept on the request itself: a plain record.

Every decision taken for a request — by the middleware, a dependency, a decorator or a
direct call — is recorded in one `RequestLedger` at ``scope["traffik.ledger"]``
(`traffik.fastapi.enforcement` decides, the ledger records):

* the decisions taken ahead for the route's plan, until each throttle's own call reads
  its own;
* the outcomes whose units a refusal gives back, and the slots held until the request
  ends (concurrency limits), released from here;
* response headers are rendered from it, and `is_throttled`, `get_wait` /
  `get_retry_after` and `get_decision` read it.
"""

from __future__ import annotations

from asyncio import sleep
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import anyio
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Scope

from traffik.checks import Outcome as CoreOutcome
from traffik.decision import Decision
from traffik.fastapi.headers import RawHeaders, render_headers

if TYPE_CHECKING:
    from traffik.fastapi.connection_throttle import ConnectionThrottle

    Outcome: TypeAlias = CoreOutcome[ConnectionThrottle]
else:
    Outcome = CoreOutcome

Call = tuple["ConnectionThrottle", int | None, str | None]
"""``(throttle, cost, key_suffix)``: one throttle to decide; None means its defaults."""

__all__ = [
    "LEDGER_KEY",
    "Call",
    "Outcome",
    "RequestLedger",
    "get_decision",
    "get_retry_after",
    "get_wait",
    "is_throttled",
    "ledger_of",
    "wait_out",
]

LEDGER_KEY: Final = "traffik.ledger"
"""The ASGI scope key holding a request's `RequestLedger`."""


_NO_PLANNED: Final[dict[Any, Any]] = {}  # never written to: `record` makes a dict of its own
_NOTHING_WRITTEN: Final[RawHeaders] = []  # never written to: `write_headers` replaces it


class RequestLedger:
    """The decisions taken for one request, in order.

    :param managed: whether a `ThrottleMiddleware` writes the headers of this request
        (at ``http.response.start``); dependencies then leave them alone.
    :param planned_decided: whether the route's plan (the throttles it declares) has
        been decided.
    """

    __slots__ = ("managed", "outcomes", "planned", "planned_decided", "written")

    def __init__(
        self,
        *,
        managed: bool = False,
        planned_decided: bool = False,
        outcomes: list[Outcome] | None = None,
    ) -> None:
        self.managed = managed
        self.outcomes: list[Outcome] = [] if outcomes is None else outcomes
        #: Decisions taken for the plan's throttles ahead of their own calls, until they
        #: run (a shared empty mapping until there is one: most requests have none).
        self.planned: dict[ConnectionThrottle, Outcome] = _NO_PLANNED
        self.planned_decided = planned_decided
        #: The headers last written into a FastAPI sub-response.
        self.written: RawHeaders = _NOTHING_WRITTEN

    def planned_outcome(self, throttle: ConnectionThrottle) -> Outcome | None:
        """The decision taken ahead for ``throttle``'s call, if any (once)."""
        return self.planned.pop(throttle, None) if self.planned else None

    def record(self, outcomes: list[Outcome], planned_from: int) -> list[Outcome]:
        """Add ``outcomes``, those from ``planned_from`` on taken ahead for the plan's
        throttles; return the outcomes recorded before."""
        earlier = self.outcomes
        self.outcomes = [*earlier, *outcomes] if earlier else outcomes[:]
        for outcome in outcomes[planned_from:]:
            if self.planned is _NO_PLANNED:
                self.planned = {}
            self.planned[outcome.throttle] = outcome
        return earlier

    def holding(self) -> bool:
        """Whether any decision holds a slot until the request ends (see `release`)."""
        for outcome in self.outcomes:  # noqa: SIM110 - a loop: no generator on every request
            if outcome.consumed and outcome.throttle.holds:
                return True
        return False

    async def release(self, throttle: ConnectionThrottle | None = None) -> None:
        """Give back the slots held until the request ends (of ``throttle``, or all).

        Safe to call several times and from a cancelled task: the refunds are shielded.
        """
        holding = []
        for outcome in self.outcomes:  # a loop, not a comprehension: one frame fewer
            if (
                outcome.consumed
                and outcome.throttle.holds
                and (throttle is None or outcome.throttle is throttle)
            ):
                holding.append(outcome)
        if holding:
            with anyio.CancelScope(shield=True):
                for outcome in holding:
                    await outcome.give_back()

    # -- reading -----------------------------------------------------------------------

    @property
    def throttled(self) -> bool:
        """Whether any limit refused this request (shadow throttles never do)."""
        return any(outcome.refused for outcome in self.outcomes)

    @property
    def wait(self) -> float:
        """The longest ``retry_after`` among the refusals, in seconds (0 when none)."""
        return max(
            (o.decision.retry_after for o in self.outcomes if o.refused),
            default=0.0,
        )

    def violated_policies(self) -> list[str]:
        """The uids of the throttles that refused this request, in order."""
        uids: list[str] = []
        for outcome in self.outcomes:
            if outcome.refused and outcome.throttle.uid not in uids:
                uids.append(outcome.throttle.uid)
        return uids

    def headers(self, scope: Scope | None = None) -> RawHeaders:
        """The rate-limit header block for this request (empty when nothing applied);
        custom headers' resolvers see the connection of ``scope``."""
        outcomes = self.outcomes
        return render_headers(outcomes, scope) if outcomes else []

    def write_headers(self, response: Response, scope: Scope | None = None) -> None:
        """Put the header block into ``response``, replacing any block written before.

        FastAPI copies the headers of the sub-response its dependencies receive into the
        response of a route that returns data; each throttle rewrites the whole block, so
        the last one to run leaves every limit in it.
        """
        raw = response.raw_headers
        if self.written:
            previous = {id(header) for header in self.written}
            raw[:] = [header for header in raw if id(header) not in previous]
        outcomes = self.outcomes
        block = render_headers(outcomes, scope) if outcomes else []
        raw.extend(block)
        self.written = block


async def wait_out(delay: float) -> None:
    """Wait ``delay`` seconds: a queueing strategy's slot for an admitted request."""
    await sleep(delay)


def ledger_of(scope: Scope) -> RequestLedger:
    """The ledger of the request ``scope`` belongs to, created on first use."""
    ledger: RequestLedger | None = scope.get(LEDGER_KEY)
    if ledger is None:
        ledger = scope[LEDGER_KEY] = RequestLedger()
    return ledger


def is_throttled(connection: HTTPConnection) -> bool:
    """Whether a limit refused this request (useful with a ``handle_throttled`` that lets
    requests through, or in an exception handler). On a WebSocket after ``accept``: whether
    the message last checked was refused (traffik-websocket)."""
    ledger: RequestLedger | None = connection.scope.get(LEDGER_KEY)
    return ledger is not None and ledger.throttled


def get_retry_after(connection: HTTPConnection) -> float:
    """Seconds this request's client must wait before retrying (0.0 when not refused;
    ``math.inf`` when waiting cannot help). `get_wait` is the same in milliseconds."""
    ledger: RequestLedger | None = connection.scope.get(LEDGER_KEY)
    return ledger.wait if ledger is not None else 0.0


def get_wait(connection: HTTPConnection) -> float:
    """Milliseconds this request's client must wait before retrying, as in traffik 1.x
    (0.0 when not refused; ``math.inf`` when waiting cannot help). In seconds:
    `get_retry_after`."""
    return get_retry_after(connection) * 1000.0


def get_decision(
    connection: HTTPConnection, throttle: ConnectionThrottle | None = None
) -> Decision | None:
    """The `Decision` recorded for this request by ``throttle`` (the last one it took),
    or by any throttle when None: a refusal if one refused, else the last decision.
    None when nothing was decided. Call it after the throttle ran (a dependency, a
    decorator, the middleware or a direct call)."""
    ledger: RequestLedger | None = connection.scope.get(LEDGER_KEY)
    if ledger is None:
        return None
    found: Decision | None = None
    for outcome in ledger.outcomes:
        if throttle is None:
            if outcome.refused:
                return outcome.decision
            found = outcome.decision
        elif outcome.throttle is throttle:
            found = outcome.decision
    return found

"""What throttling decided for one request, kept on the request itself.

Every decision taken for a request — by the middleware, a dependency, a decorator or a
direct call — is recorded in one `RequestLedger` at ``scope["traffik.ledger"]``. The
ledger is what makes a request's limits behave as one:

* decisions gathered ahead of time for a throttle are *claimed* by that throttle's own
  call instead of being taken twice;
* when a request is refused, whatever it consumed earlier is given back (see
  `RequestLedger.decide`);
* slots held until the request ends (concurrency limits) are released from here;
* response headers are rendered from it, and `is_throttled` / `get_wait` read it.
"""

from __future__ import annotations

from asyncio import sleep
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import anyio
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Scope

from traffik.checks import Outcome as CoreOutcome
from traffik.fastapi.headers import RawHeaders, render_headers
from traffik.pipeline import decide, decide_one

if TYPE_CHECKING:
    from traffik.fastapi.throttle import BaseHTTPThrottle

    Outcome: TypeAlias = CoreOutcome[BaseHTTPThrottle]
else:
    Outcome = CoreOutcome

Call = tuple["BaseHTTPThrottle", int | None, str | None]
"""``(throttle, cost, key_suffix)``: one throttle to decide; None means its defaults."""

__all__ = [
    "LEDGER_KEY",
    "Call",
    "Outcome",
    "RequestLedger",
    "get_wait",
    "is_throttled",
    "ledger_of",
    "wait_out",
]

LEDGER_KEY: Final = "traffik.ledger"
"""The ASGI scope key holding a request's `RequestLedger`."""


_NO_PENDING: Final[dict[Any, Any]] = {}  # never written to: `decide` makes a dict of its own
_NOTHING_WRITTEN: Final[RawHeaders] = []  # never written to: `write_headers` replaces it


class RequestLedger:
    """The decisions taken for one request, in order.

    :param managed: whether a `ThrottleMiddleware` writes the headers of this request
        (at ``http.response.start``); dependencies then leave them alone.
    """

    __slots__ = ("gathered", "managed", "outcomes", "pending", "written")

    def __init__(
        self,
        *,
        managed: bool = False,
        gathered: bool = False,
        outcomes: list[Outcome] | None = None,
    ) -> None:
        self.managed = managed
        self.outcomes: list[Outcome] = [] if outcomes is None else outcomes
        #: Decisions taken for a throttle by another one's call, until it claims them
        #: (a shared empty mapping until there is one: most requests never have any).
        self.pending: dict[BaseHTTPThrottle, Outcome] = _NO_PENDING
        #: Whether the route's throttles have been gathered into a decision.
        self.gathered = gathered
        #: The headers last written into a FastAPI sub-response.
        self.written: RawHeaders = _NOTHING_WRITTEN

    def claim(self, throttle: BaseHTTPThrottle) -> Outcome | None:
        """The decision taken for ``throttle`` by another's call, if any (once)."""
        return self.pending.pop(throttle, None) if self.pending else None

    async def decide(
        self, connection: HTTPConnection, calls: Sequence[Call], *, claimable_from: int
    ) -> list[Outcome]:
        """Decide ``calls`` all-or-nothing and record them.

        The calls from ``claimable_from`` on were gathered for throttles that have not run
        yet: their own calls claim these decisions. When any call is refused, everything
        the request consumed in earlier decisions is given back, so a refused request
        consumes nothing anywhere. Otherwise the request waits out the longest ``delay``
        a queueing strategy asked for. Shadow throttles neither refuse nor delay.
        """
        outcomes: list[Outcome] = await decide(
            [(throttle, connection, cost, key_suffix) for throttle, cost, key_suffix in calls]
        )
        earlier = self.outcomes
        self.outcomes = [*earlier, *outcomes] if earlier else outcomes[:]
        for outcome in outcomes[claimable_from:]:
            if self.pending is _NO_PENDING:
                self.pending = {}
            self.pending[outcome.throttle] = outcome
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

    async def decide_one(
        self,
        connection: HTTPConnection,
        throttle: BaseHTTPThrottle,
        cost: int | None,
        key_suffix: str | None = None,
    ) -> Outcome:
        """`decide` for one call alone, whose decision nobody else claims."""
        outcome: Outcome = await decide_one(throttle, connection, cost, None, key_suffix)
        earlier = self.outcomes
        self.outcomes = [*earlier, outcome] if earlier else [outcome]
        if throttle.shadow:
            return outcome
        decision = outcome.decision
        if not decision.allowed:
            if earlier:
                with anyio.CancelScope(shield=True):
                    for previous in earlier:
                        await previous.give_back()
        elif decision.delay > 0:
            await wait_out(decision.delay)
        return outcome

    def holding(self) -> bool:
        """Whether any decision holds a slot until the request ends (see `release`)."""
        for outcome in self.outcomes:  # noqa: SIM110 - a loop: no generator on every request
            if outcome.consumed and outcome.throttle.holds:
                return True
        return False

    async def release(self, throttle: BaseHTTPThrottle | None = None) -> None:
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

    def headers(self) -> RawHeaders:
        """The rate-limit header block for this request (empty when nothing applied)."""
        outcomes = self.outcomes
        return render_headers(outcomes) if outcomes else []

    def write_headers(self, response: Response) -> None:
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
        block = render_headers(outcomes) if outcomes else []
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


def get_wait(connection: HTTPConnection) -> float:
    """Seconds this request's client must wait before retrying (0.0 when not refused;
    ``math.inf`` when waiting cannot help). traffik 1.x returned milliseconds."""
    ledger: RequestLedger | None = connection.scope.get(LEDGER_KEY)
    return ledger.wait if ledger is not None else 0.0

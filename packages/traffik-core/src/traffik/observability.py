"""Observing decisions: one `DecisionEvent` per decision, handed to the observers you add.

::

    from traffik.observability import DecisionEvent, add_observer

    def log_refusals(event: DecisionEvent) -> None:
        if event.outcome == "throttled":
            print(f"{event.uid}: {event.key} refused, retry in {event.retry_after:.1f}s")

    add_observer(log_refusals)

Every decision a throttle takes for a request — ``Throttle.decide`` / ``hit``, ``peek`` / ``check``,
`traffik.hit_all`, and every way into the HTTP package (dependency, decorator, middleware,
several limits at once) — is reported, once, with its ``outcome``:

* ``"allowed"`` / ``"throttled"``: a limit applied and admitted / refused the request (a
  shadow throttle's refusal is ``"throttled"`` with ``shadow=True``: it would have refused);
* ``"exempted"``: no limit applied without asking the backend (disabled throttle, rules
  that leave the request alone, cost 0, unlimited rate, an `EXEMPTED` client);
* ``"error"``: deciding failed and ``on_error`` decided instead (``allowed`` says how;
  ``error`` holds the exception). With ``on_error="raise"`` the event comes before the
  error propagates.

Observers are plain synchronous callables, called in the order added, on the event loop
that decided: keep them quick (count, enqueue); do I/O elsewhere. An observer that raises
is logged once (with its traceback) under ``traffik.observability`` and then ignored for
that event: it can never break a request. Ready-made exporters for Prometheus and
OpenTelemetry are in the ``traffik-metrics`` distribution.

Observers are process-wide, like logging handlers. With none added, the decision paths do
no extra work: one truth test of `OBSERVERS`, no clock reads, no event objects.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from traffik._logging import logger as _root_logger
from traffik.decision import NOT_LIMITED, Decision
from traffik.exceptions import ConfigurationError

if TYPE_CHECKING:
    from traffik.backends.base import Hit
    from traffik.throttle import Throttle

__all__ = [
    "OBSERVERS",
    "DecisionEvent",
    "Observer",
    "Outcome",
    "add_observer",
    "emit",
    "observing",
    "remove_observer",
    "report_decision",
    "report_exempted",
    "report_failure",
]

logger = _root_logger.getChild("observability")

Outcome = Literal["allowed", "throttled", "exempted", "error"]


@dataclass(frozen=True, slots=True)
class DecisionEvent:
    """One decision about one request against one throttle.

    :ivar uid: the throttle's uid.
    :ivar outcome: ``"allowed"``, ``"throttled"``, ``"exempted"`` or ``"error"``.
    :ivar allowed: whether the decision admits the request (for ``"error"``, what
        ``on_error`` chose; False when it raises). A shadow throttle's request goes
        through whatever this says.
    :ivar key: the stored key; None when no key was needed or could be made.
    :ivar strategy: the strategy's name (``"fixed_window"``, ...).
    :ivar cost: the units the request was charged (0 when none was resolved).
    :ivar limit: the limit that applied, in units of cost (0: none applied).
    :ivar remaining: what is left after this request (unchanged when refused).
    :ivar retry_after: seconds until the same request could pass (0 when allowed,
        ``inf`` when waiting cannot help).
    :ivar latency: seconds the backend call took, when one was made (limits decided in
        one call share it); None otherwise.
    :ivar shadow: whether the throttle is in shadow mode (decides, never refuses).
    :ivar peek: whether this was a look (``peek`` / ``check``) that consumed nothing.
        Failures found before the backend is asked (a raising identifier) report False.
    :ivar error: the exception behind an ``"error"`` outcome.
    :ivar throttle: the throttle itself.
    """

    uid: str
    outcome: Outcome
    allowed: bool
    key: str | None
    strategy: str
    cost: int
    limit: int
    remaining: int
    retry_after: float
    latency: float | None
    shadow: bool
    peek: bool
    error: BaseException | None
    throttle: Throttle[Any]

    @property
    def used(self) -> int:
        """Units of the limit in use after this request (0 when no limit applied)."""
        return self.limit - self.remaining if self.limit > 0 else 0


Observer = Callable[[DecisionEvent], object]
"""``observer(event)``: called once per decision; its return value is ignored."""

OBSERVERS: Final[list[Observer]] = []
"""The observers added, in order. Read it (its truth says whether anyone listens); change
it only through `add_observer` / `remove_observer`."""

# Observers whose failure has been logged: each is reported once, not once per request.
_reported_failures: set[int] = set()


def add_observer(observer: Observer) -> None:
    """Call ``observer(event)`` for every decision from now on (once, if added twice)."""
    if not callable(observer):
        raise ConfigurationError(f"an observer must be callable, got {observer!r}")
    if observer not in OBSERVERS:
        OBSERVERS.append(observer)


def remove_observer(observer: Observer) -> None:
    """Stop calling ``observer``; nothing happens when it was not added."""
    with contextlib.suppress(ValueError):
        OBSERVERS.remove(observer)
    _reported_failures.discard(id(observer))


@contextlib.contextmanager
def observing(*observers: Observer) -> Iterator[None]:
    """Add ``observers`` for the ``with`` block, and remove them after it."""
    added = [observer for observer in observers if observer not in OBSERVERS]
    for observer in added:
        add_observer(observer)
    try:
        yield
    finally:
        for observer in added:
            remove_observer(observer)


def emit(event: DecisionEvent) -> None:
    """Hand ``event`` to every observer; an observer's failure is logged once, then ignored."""
    for observer in tuple(OBSERVERS):  # an observer may remove itself meanwhile
        try:
            observer(event)
        except Exception as exc:
            if id(observer) not in _reported_failures:
                _reported_failures.add(id(observer))
                # A failure being reported (a dead store) is not part of the observer's bug.
                exc.__suppress_context__ = True
                logger.warning(
                    "Observer %r raised on a decision event; it is ignored for this event "
                    "and its later failures are not logged",
                    observer,
                    exc_info=exc,
                )


# -- building events (for the code that decides: throttles, transports) -------------------


def report_decision(
    throttle: Throttle[Any],
    hit: Hit,
    decision: Decision,
    latency: float | None,
    *,
    peek: bool = False,
) -> None:
    """Report what the backend decided for ``hit``."""
    emit(
        DecisionEvent(
            uid=throttle.uid,
            outcome="allowed" if decision.allowed else "throttled",
            allowed=decision.allowed,
            key=hit.key,
            strategy=hit.strategy.name,
            cost=hit.cost,
            limit=decision.limit,
            remaining=decision.remaining,
            retry_after=decision.retry_after,
            latency=latency,
            shadow=throttle.shadow,
            peek=peek,
            error=None,
            throttle=throttle,
        )
    )


def report_exempted(throttle: Throttle[Any], *, peek: bool = False) -> None:
    """Report that no limit applied to a request (decided without the backend)."""
    emit(
        DecisionEvent(
            uid=throttle.uid,
            outcome="exempted",
            allowed=True,
            key=None,
            strategy=throttle.strategy.name,
            cost=0,
            limit=0,
            remaining=0,
            retry_after=0.0,
            latency=None,
            shadow=throttle.shadow,
            peek=peek,
            error=None,
            throttle=throttle,
        )
    )


def report_failure(
    throttle: Throttle[Any],
    error: BaseException,
    decision: Decision | None,
    *,
    key: str | None,
    cost: int | None,
    latency: float | None,
    peek: bool = False,
) -> None:
    """Report a failure and what ``on_error`` made of it (``decision`` None: it raised)."""
    if decision is None:
        decision = _RAISED
    emit(
        DecisionEvent(
            uid=throttle.uid,
            outcome="error",
            allowed=decision.allowed,
            key=key,
            strategy=throttle.strategy.name,
            cost=cost or 0,
            limit=decision.limit,
            remaining=decision.remaining,
            retry_after=decision.retry_after,
            latency=latency,
            shadow=throttle.shadow,
            peek=peek,
            error=error,
            throttle=throttle,
        )
    )


# What an event says of a failure that on_error turned into an exception.
_RAISED: Final = NOT_LIMITED._replace(allowed=False)

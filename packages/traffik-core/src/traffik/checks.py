"""One throttle's part in one decision: `Outcome`.

An `Outcome` never holds the connection it was decided for: the connection (a request)
holds the record of its outcomes in its scope, so an outcome pointing back at it would
make every request a reference cycle, left for the cyclic garbage collector. Whatever
needs the connection takes it as an argument.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from traffik._logging import logger
from traffik.decision import NOT_LIMITED, Decision

if TYPE_CHECKING:
    from traffik.backends.base import Hit, ThrottleBackend
    from traffik.rates import Rate
    from traffik.throttle import Throttle

__all__ = ["Outcome", "unconsumed"]

T = TypeVar("T", bound="Throttle[Any]")


class Outcome(Generic[T]):
    """One throttle's decision on one connection, and whether it still holds what it took.

    :ivar hit: what was asked of the backend; None when no backend was asked (a
        short-circuit, or ``on_error`` deciding a failure of the user's own function).
    :ivar consumed: whether the backend stored this decision (and it was not given back).
    :ivar handled: whether the throttle's refusal handler has seen this refusal.
    """

    __slots__ = ("backend", "consumed", "decision", "handled", "hit", "throttle")

    def __init__(
        self,
        throttle: T,
        decision: Decision = NOT_LIMITED,
        hit: Hit | None = None,
        backend: ThrottleBackend | None = None,
    ) -> None:
        self.throttle = throttle
        self.decision = decision
        self.hit = hit
        self.backend = backend
        self.consumed = False
        self.handled = False

    @property
    def refused(self) -> bool:
        """Whether this decision refuses the request (a shadow throttle's never does)."""
        return not self.decision.allowed and not self.throttle.shadow

    @property
    def rate(self) -> Rate | None:
        return self.hit.rate if self.hit is not None else self.throttle.rate

    async def give_back(self) -> None:
        """Refund what this decision consumed, once. Failures are logged, not raised:
        every stored state expires, so a refund that cannot be made only lasts so long."""
        if not self.consumed:
            return
        self.consumed = False
        hit, backend = self.hit, self.backend
        assert hit is not None
        assert backend is not None
        self.decision = unconsumed(self.decision, hit)
        try:
            await backend.refund(*hit)
        except Exception as exc:
            logger.warning(
                "Throttle %r could not give back %d unit(s) for %r (%s: %s); they return "
                "when the stored state expires",
                self.throttle.uid,
                hit.cost,
                hit.key,
                type(exc).__name__,
                exc,
            )

    def __repr__(self) -> str:
        return f"Outcome({self.throttle.uid!r}, {self.decision!r}, consumed={self.consumed})"


def unconsumed(decision: Decision, hit: Hit | None) -> Decision:
    """``decision`` with the units of ``hit`` back in ``remaining``."""
    cost = hit.cost if hit is not None else 0
    return decision._replace(remaining=min(decision.limit, decision.remaining + cost))

"""A circuit breaker: stop calling a store that keeps failing, and probe it back.

::

    CLOSED --(failure_threshold consecutive failures)--> OPEN
    OPEN   --(recovery_timeout elapsed; the next call is the single probe)--> HALF_OPEN
    HALF_OPEN --(success_threshold probe successes in a row)--> CLOSED
    HALF_OPEN --(a probe fails, or is cancelled)--> OPEN

While OPEN no call is let through, so no request touches a dead store. In HALF_OPEN
exactly one probe is in flight at a time; every other call is refused until it settles.
Each state change is logged once, as a warning, under ``traffik.resilience``.

The breaker is process-local and not thread-safe: it belongs to one event loop, like the
backends it guards. Time comes from ``clock`` (monotonic by default), injectable in tests.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from typing import Any

from traffik.exceptions import BackendError, ConfigurationError

__all__ = ["CircuitBreaker", "CircuitOpenError", "CircuitState"]

logger = logging.getLogger("traffik.resilience")

StateListener = Callable[["CircuitBreaker", "CircuitState", "CircuitState"], None]


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(BackendError):
    """Refused without calling the store: its circuit breaker is open."""


class CircuitBreaker:
    """Counts consecutive failures of a store and opens after ``failure_threshold``.

    :param failure_threshold: consecutive failures that open the circuit.
    :param recovery_timeout: seconds the circuit stays open before one probe is allowed.
    :param success_threshold: probe successes in a row that close it again.
    :param name: a label for logs and metrics.
    :param clock: seconds from a monotonic source; inject one in tests.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        success_threshold: int = 1,
        *,
        name: str = "backend",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_count(failure_threshold, "failure_threshold")
        _check_count(success_threshold, "success_threshold")
        if (
            isinstance(recovery_timeout, bool)
            or not isinstance(recovery_timeout, (int, float))
            or not recovery_timeout > 0
        ):
            raise ConfigurationError(
                f"recovery_timeout must be a number of seconds > 0, got {recovery_timeout!r}"
            )
        self.failure_threshold = failure_threshold
        self.recovery_timeout = float(recovery_timeout)
        self.success_threshold = success_threshold
        self.name = name
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._successes = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._listeners: list[StateListener] = []

    # -- reading ---------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The state now; an open circuit whose timeout has elapsed reads as half-open."""
        if self._state is CircuitState.OPEN and self._recovery_due():
            return CircuitState.HALF_OPEN
        return self._state

    @property
    def is_closed(self) -> bool:
        return self.state is CircuitState.CLOSED

    @property
    def is_open(self) -> bool:
        return self.state is CircuitState.OPEN

    @property
    def is_half_open(self) -> bool:
        return self.state is CircuitState.HALF_OPEN

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "failures": self._failures,
            "successes": self._successes,
            "failure_threshold": self.failure_threshold,
            "success_threshold": self.success_threshold,
            "recovery_timeout": self.recovery_timeout,
            "probe_in_flight": self._probe_in_flight,
        }

    def add_listener(self, listener: StateListener) -> None:
        """Call ``listener(breaker, old_state, new_state)`` on every state change."""
        self._listeners.append(listener)

    # -- the protocol of a guarded call -------------------------------------------------

    def allow_execution(self) -> bool:
        """Whether a call may go to the store now. In half-open, grants the single probe.

        Every granted call must end in `record_success`, `record_failure` or (when it is
        abandoned, say cancelled) `record_abandoned`.
        """
        state = self._state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.OPEN:
            if not self._recovery_due():
                return False
            self._transition(CircuitState.HALF_OPEN)
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self) -> None:
        if self._state is CircuitState.HALF_OPEN:
            self._probe_in_flight = False
            self._successes += 1
            if self._successes >= self.success_threshold:
                self._transition(CircuitState.CLOSED)
        else:
            self._failures = 0

    def record_failure(self) -> None:
        if self._state is CircuitState.HALF_OPEN:
            self._probe_in_flight = False
            self._transition(CircuitState.OPEN)
        elif self._state is CircuitState.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._transition(CircuitState.OPEN)

    def record_abandoned(self) -> None:
        """A granted call ended without an answer (cancelled): a probe counts as failed."""
        if self._state is CircuitState.HALF_OPEN and self._probe_in_flight:
            self.record_failure()

    # -- manual control ------------------------------------------------------------------

    def force_open(self) -> None:
        self._transition(CircuitState.OPEN)

    def force_close(self) -> None:
        self._transition(CircuitState.CLOSED)

    # -- internals ----------------------------------------------------------------------

    def _recovery_due(self) -> bool:
        return self._clock() - self._opened_at >= self.recovery_timeout

    def _transition(self, new: CircuitState) -> None:
        old = self._state
        self._state = new
        self._failures = 0
        self._successes = 0
        self._probe_in_flight = False
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
        if old is new:
            return
        if new is CircuitState.OPEN:
            logger.warning(
                "Circuit %r opened: the store is not called for %.3g s",
                self.name,
                self.recovery_timeout,
            )
        elif new is CircuitState.CLOSED:
            logger.warning("Circuit %r closed: the store answers again", self.name)
        else:
            logger.warning("Circuit %r half-open: probing the store", self.name)
        for listener in self._listeners:
            listener(self, old, new)

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.value!r})"


def _check_count(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a whole number >= 1, got {value!r}")

"""What every exporter shares: reading decision events and circuit breakers as metrics.

An exporter is an observer (`traffik.observability`): ``exporter.install()`` adds it,
``exporter.uninstall()`` removes it. For each decision event that consumed or refused
something — peeks (``Throttle.peek`` / ``check``) are left out — it records:

* one decision, labelled by throttle uid and outcome (``allowed``, ``throttled``,
  ``exempted``, ``error``); a shadow throttle's ``throttled`` is what it *would* have
  refused;
* a failed-open admission when deciding failed and ``on_error`` let the request through
  unlimited (a store outage under ``on_error="allow"``): the number operators watch to
  know the limit is not holding;
* a near-limit admission when an admitted request leaves at least ``near_limit`` (80% by
  default) of its limit in use;
* the backend latency, when the decision took a backend call.

``exporter.watch(breaker)`` follows a `traffik.resilience.CircuitBreaker` (or anything with
its ``name``, ``state`` and ``add_listener``): its current state, and every transition.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Final, Protocol, TypeVar

from traffik.exceptions import ConfigurationError
from traffik.observability import DecisionEvent, add_observer, remove_observer

__all__ = [
    "BREAKER_STATES",
    "LATENCY_BUCKETS",
    "OUTCOMES",
    "MetricsExporter",
    "WatchedBreaker",
    "missing_extra",
]

OUTCOMES: Final = ("allowed", "throttled", "exempted", "error")
"""The values of the outcome label."""

BREAKER_STATES: Final = ("closed", "open", "half_open")
"""The values of a circuit breaker's state (``CircuitState.value``)."""

LATENCY_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
"""Histogram bucket bounds for backend latency, in seconds: an in-memory decision takes
microseconds, a Redis round trip a fraction of a millisecond, a time budget 50 ms."""

E = TypeVar("E", bound="MetricsExporter")


class _State(Protocol):
    @property
    def value(self) -> str: ...


class WatchedBreaker(Protocol):
    """What `MetricsExporter.watch` needs of a circuit breaker."""

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> Any: ...  # a CircuitState: its ``value`` is one of BREAKER_STATES

    def add_listener(self, listener: Any) -> None: ...


class MetricsExporter(ABC):
    """Turns decision events into metrics; subclasses write them to a metrics library.

    :param near_limit: the share of a limit in use (after the request) from which an
        admission counts as near the limit: ``0 < near_limit <= 1``.
    """

    def __init__(self, *, near_limit: float = 0.8) -> None:
        if (
            isinstance(near_limit, bool)
            or not isinstance(near_limit, (int, float))
            or not math.isfinite(near_limit)
            or not 0 < near_limit <= 1
        ):
            raise ConfigurationError(
                f"near_limit must be a share of the limit, 0 < near_limit <= 1; got {near_limit!r}"
            )
        self.near_limit = float(near_limit)

    # -- as an observer ------------------------------------------------------------------

    def install(self: E) -> E:
        """Start observing every decision (`traffik.observability.add_observer`)."""
        add_observer(self)
        return self

    def uninstall(self) -> None:
        """Stop observing decisions. Breakers being watched stay watched."""
        remove_observer(self)

    def __call__(self, event: DecisionEvent) -> None:
        if event.peek:
            return
        uid = event.uid
        outcome = event.outcome
        self._record_decision(uid, outcome)
        if outcome == "error" and event.allowed:
            self._record_failed_open(uid)
        if event.latency is not None:
            self._record_latency(uid, event.latency)
        if outcome == "allowed" and event.limit > 0 and event.used / event.limit >= self.near_limit:
            self._record_near_limit(uid)

    # -- circuit breakers ----------------------------------------------------------------

    def watch(self, breaker: WatchedBreaker) -> None:
        """Report ``breaker``'s state from now on (its current state at once)."""
        name = breaker.name
        self._record_breaker_state(name, _state_value(breaker.state))

        def on_transition(_: object, old: _State, new: _State) -> None:
            self._record_breaker_state(name, new.value)
            self._record_breaker_transition(name, new.value)

        breaker.add_listener(on_transition)

    # -- what a metrics library implements -----------------------------------------------

    @abstractmethod
    def _record_decision(self, uid: str, outcome: str) -> None: ...

    @abstractmethod
    def _record_failed_open(self, uid: str) -> None: ...

    @abstractmethod
    def _record_near_limit(self, uid: str) -> None: ...

    @abstractmethod
    def _record_latency(self, uid: str, seconds: float) -> None: ...

    @abstractmethod
    def _record_breaker_state(self, breaker: str, state: str) -> None: ...

    @abstractmethod
    def _record_breaker_transition(self, breaker: str, state: str) -> None: ...


def _state_value(state: Any) -> str:
    value = getattr(state, "value", state)
    if value not in BREAKER_STATES:
        raise ConfigurationError(
            f"A watched breaker's state must be one of {', '.join(BREAKER_STATES)}, got {state!r}"
        )
    return str(value)


def missing_extra(exc: ModuleNotFoundError, module: str, exporter: str, extra: str) -> Exception:
    """What to raise when importing ``module`` for ``exporter`` failed with ``exc``: an
    ImportError naming the extra, when ``module`` itself is missing; else ``exc`` itself
    (a dependency missing *inside* an installed library is its own problem)."""
    missing = exc.name or ""
    if module != missing and not module.startswith(missing + "."):
        return exc
    error = ImportError(
        f"{exporter} needs {module.split('.')[0]}: pip install 'traffik-metrics[{extra}]'",
        name=module,
    )
    error.__cause__ = exc
    return error

"""`OpenTelemetryExporter`: decisions as OpenTelemetry metrics, through ``opentelemetry-api``.

::

    from traffik.metrics import OpenTelemetryExporter

    exporter = OpenTelemetryExporter().install()  # the global MeterProvider
    exporter.watch(breaker)                       # a traffik.resilience.CircuitBreaker

The instruments come from the meter ``traffik.metrics``:

* ``traffik.decisions`` (counter, ``{decision}``): attributes ``traffik.throttle`` (the
  uid) and ``traffik.outcome``;
* ``traffik.near_limit`` (counter, ``{request}``): ``traffik.throttle``;
* ``traffik.backend.duration`` (histogram, ``s``): ``traffik.throttle``;
* ``traffik.circuit_breaker.state`` (observable gauge): ``traffik.breaker`` and
  ``traffik.breaker.state``, 1 for the current state and 0 for the others;
* ``traffik.circuit_breaker.transitions`` (counter, ``{transition}``): ``traffik.breaker``
  and ``traffik.breaker.state`` (the state entered).

Configuring the SDK (readers, exporters, views) is the application's business; without
it, the API's no-op provider makes every instrument a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from traffik.metrics._version import __version__
from traffik.metrics.exporter import BREAKER_STATES, LATENCY_BUCKETS, MetricsExporter, missing_extra

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.util.types import Attributes

__all__ = ["METER_NAME", "OpenTelemetryExporter"]

METER_NAME = "traffik.metrics"
"""The instrumentation scope of every instrument."""


class OpenTelemetryExporter(MetricsExporter):
    """Writes decision events and breaker states to OpenTelemetry instruments.

    :param meter_provider: where the meter comes from: the global provider
        (``opentelemetry.metrics.get_meter_provider()``) unless given.
    :param near_limit: the share of a limit in use from which an admission counts as near
        the limit (0.8 by default).
    :param buckets: the latency histogram's bucket bounds, in seconds (advice to the SDK;
        a view configured by the application wins).
    """

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        *,
        near_limit: float = 0.8,
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(near_limit=near_limit)
        try:
            from opentelemetry import metrics
        except ModuleNotFoundError as exc:
            raise missing_extra(
                exc, "opentelemetry.metrics", "OpenTelemetryExporter", "opentelemetry"
            ) from exc
        if meter_provider is None:
            meter_provider = metrics.get_meter_provider()
        meter = meter_provider.get_meter(METER_NAME, __version__)
        self._observation = metrics.Observation
        self._decisions = meter.create_counter(
            "traffik.decisions",
            unit="{decision}",
            description="Rate-limit decisions, by throttle and outcome (a shadow throttle's "
            "'throttled' is what it would have refused).",
        )
        self._failed_open = meter.create_counter(
            "traffik.failed_open",
            unit="{request}",
            description="Requests let through unlimited because deciding failed (on_error "
            "allowed them).",
        )
        self._near_limit = meter.create_counter(
            "traffik.near_limit",
            unit="{request}",
            description=f"Admitted requests that left at least {self.near_limit:.0%} of their "
            "limit in use.",
        )
        self._latency = meter.create_histogram(
            "traffik.backend.duration",
            unit="s",
            description="Seconds each decision's backend call took.",
            explicit_bucket_boundaries_advisory=list(buckets),
        )
        self._transitions = meter.create_counter(
            "traffik.circuit_breaker.transitions",
            unit="{transition}",
            description="Circuit breaker state changes, by the state entered.",
        )
        # breaker name -> its state, kept by the breakers' listeners, read at collection.
        self._breaker_states: dict[str, str] = {}
        meter.create_observable_gauge(
            "traffik.circuit_breaker.state",
            callbacks=[self._observe_breakers],
            unit="1",
            description="1 for the current state of each watched circuit breaker, 0 for the "
            "others.",
        )
        # Attribute sets, built once per label set rather than once per request.
        self._decision_attributes: dict[tuple[str, str], Attributes] = {}
        self._throttle_attributes: dict[str, Attributes] = {}

    def _record_decision(self, uid: str, outcome: str) -> None:
        attributes = self._decision_attributes.get((uid, outcome))
        if attributes is None:
            attributes = self._decision_attributes[uid, outcome] = {
                "traffik.throttle": uid,
                "traffik.outcome": outcome,
            }
        self._decisions.add(1, attributes)

    def _record_failed_open(self, uid: str) -> None:
        self._failed_open.add(1, self._attributes_of(uid))

    def _record_near_limit(self, uid: str) -> None:
        self._near_limit.add(1, self._attributes_of(uid))

    def _record_latency(self, uid: str, seconds: float) -> None:
        self._latency.record(seconds, self._attributes_of(uid))

    def _record_breaker_state(self, breaker: str, state: str) -> None:
        self._breaker_states[breaker] = state

    def _record_breaker_transition(self, breaker: str, state: str) -> None:
        self._transitions.add(1, {"traffik.breaker": breaker, "traffik.breaker.state": state})

    def _attributes_of(self, uid: str) -> Attributes:
        attributes = self._throttle_attributes.get(uid)
        if attributes is None:
            attributes = self._throttle_attributes[uid] = {"traffik.throttle": uid}
        return attributes

    def _observe_breakers(self, options: CallbackOptions) -> Iterable[Observation]:
        for breaker, current in list(self._breaker_states.items()):
            for state in BREAKER_STATES:
                yield self._observation(
                    1 if state == current else 0,
                    {"traffik.breaker": breaker, "traffik.breaker.state": state},
                )

    def __repr__(self) -> str:
        return f"OpenTelemetryExporter(near_limit={self.near_limit})"

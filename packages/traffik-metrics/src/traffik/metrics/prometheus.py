"""`PrometheusExporter`: decisions as Prometheus metrics, through ``prometheus_client``.

::

    from prometheus_client import make_asgi_app
    from traffik.metrics import PrometheusExporter

    exporter = PrometheusExporter().install()  # the default registry
    exporter.watch(breaker)                    # a traffik.resilience.CircuitBreaker
    app.mount("/metrics", make_asgi_app())

With the default namespace ``traffik``:

* ``traffik_decisions_total`` (counter): labels ``throttle`` (the uid) and ``outcome``;
* ``traffik_failed_open_total`` (counter): ``throttle``; requests let through unlimited
  because deciding failed (``on_error`` allowed them);
* ``traffik_near_limit_total`` (counter): ``throttle``;
* ``traffik_backend_latency_seconds`` (histogram): ``throttle``;
* ``traffik_circuit_breaker_state`` (enum): ``breaker``, one series per state, 1 for the
  current one;
* ``traffik_circuit_breaker_transitions_total`` (counter): ``breaker`` and ``state`` (the
  state entered).

``outcome`` is ``allowed``, ``throttled``, ``exempted`` or ``error``; see
`traffik.metrics.exporter` for what each metric counts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from traffik.exceptions import ConfigurationError
from traffik.metrics.exporter import BREAKER_STATES, LATENCY_BUCKETS, MetricsExporter, missing_extra

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["PrometheusExporter"]

_METRIC_PREFIX: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class PrometheusExporter(MetricsExporter):
    """Writes decision events and breaker states to ``prometheus_client`` metrics.

    :param registry: where the metrics are registered: prometheus_client's default
        ``REGISTRY`` unless given. One exporter per registry (metric names are unique).
    :param namespace: the prefix of every metric name.
    :param near_limit: the share of a limit in use from which an admission counts as near
        the limit (0.8 by default).
    :param buckets: the latency histogram's bucket bounds, in seconds.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        namespace: str = "traffik",
        near_limit: float = 0.8,
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(near_limit=near_limit)
        try:
            import prometheus_client
        except ModuleNotFoundError as exc:
            raise missing_extra(
                exc, "prometheus_client", "PrometheusExporter", "prometheus"
            ) from exc
        if not isinstance(namespace, str) or not _METRIC_PREFIX.fullmatch(namespace):
            raise ConfigurationError(
                f"namespace must match [A-Za-z_][A-Za-z0-9_]*, got {namespace!r}"
            )
        if registry is None:
            registry = prometheus_client.REGISTRY
        self.registry = registry
        self.namespace = namespace
        self._decisions = prometheus_client.Counter(
            f"{namespace}_decisions",
            "Rate-limit decisions, by throttle and outcome (a shadow throttle's "
            "'throttled' is what it would have refused).",
            ("throttle", "outcome"),
            registry=registry,
        )
        self._failed_open = prometheus_client.Counter(
            f"{namespace}_failed_open",
            "Requests let through unlimited because deciding failed (on_error allowed them).",
            ("throttle",),
            registry=registry,
        )
        self._near_limit = prometheus_client.Counter(
            f"{namespace}_near_limit",
            f"Admitted requests that left at least {self.near_limit:.0%} of their limit in use.",
            ("throttle",),
            registry=registry,
        )
        self._latency = prometheus_client.Histogram(
            f"{namespace}_backend_latency_seconds",
            "Seconds each decision's backend call took.",
            ("throttle",),
            buckets=tuple(buckets),
            registry=registry,
        )
        self._breaker_state = prometheus_client.Enum(
            f"{namespace}_circuit_breaker_state",
            "The state of each watched circuit breaker.",
            ("breaker",),
            states=list(BREAKER_STATES),
            registry=registry,
        )
        self._transitions = prometheus_client.Counter(
            f"{namespace}_circuit_breaker_transitions",
            "Circuit breaker state changes, by the state entered.",
            ("breaker", "state"),
            registry=registry,
        )
        # Labelled children, looked up once per label set rather than once per request.
        self._decision_children: dict[tuple[str, str], Counter] = {}
        self._failed_open_children: dict[str, Counter] = {}
        self._near_limit_children: dict[str, Counter] = {}
        self._latency_children: dict[str, Histogram] = {}

    def _record_decision(self, uid: str, outcome: str) -> None:
        child = self._decision_children.get((uid, outcome))
        if child is None:
            child = self._decision_children[uid, outcome] = self._decisions.labels(uid, outcome)
        child.inc()

    def _record_failed_open(self, uid: str) -> None:
        child = self._failed_open_children.get(uid)
        if child is None:
            child = self._failed_open_children[uid] = self._failed_open.labels(uid)
        child.inc()

    def _record_near_limit(self, uid: str) -> None:
        child = self._near_limit_children.get(uid)
        if child is None:
            child = self._near_limit_children[uid] = self._near_limit.labels(uid)
        child.inc()

    def _record_latency(self, uid: str, seconds: float) -> None:
        child = self._latency_children.get(uid)
        if child is None:
            child = self._latency_children[uid] = self._latency.labels(uid)
        child.observe(seconds)

    def _record_breaker_state(self, breaker: str, state: str) -> None:
        self._breaker_state.labels(breaker).state(state)

    def _record_breaker_transition(self, breaker: str, state: str) -> None:
        self._transitions.labels(breaker, state).inc()

    def __repr__(self) -> str:
        return f"PrometheusExporter(namespace={self.namespace!r}, near_limit={self.near_limit})"

"""A FastAPI app on Redis behind a circuit breaker, exported to Prometheus and OpenTelemetry
at once: every number read back through the client libraries after a known sequence of
requests — including a shadow limit, a store outage and its recovery."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from prometheus_client import CollectorRegistry, make_asgi_app

from traffik import HTTPThrottle, InMemoryBackend, ManualClock
from traffik.backends.redis import RedisBackend
from traffik.metrics import OpenTelemetryExporter, PrometheusExporter
from traffik.resilience import CircuitBreaker, ResilientBackend

NOW = 1_800_000_010.0  # 10 s into a minute


class Exporters:
    """Both exporters, installed, each on fresh state of its own library."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reader = InMemoryMetricReader()
        self.prometheus = PrometheusExporter(self.registry).install()
        self.opentelemetry = OpenTelemetryExporter(
            MeterProvider(metric_readers=[self.reader])
        ).install()

    def uninstall(self) -> None:
        self.prometheus.uninstall()
        self.opentelemetry.uninstall()

    def prometheus_value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def opentelemetry_values(self) -> dict[tuple[str, frozenset[tuple[str, Any]]], float]:
        """Every counter and gauge point, by (instrument, attributes)."""
        data = self.reader.get_metrics_data()
        assert data is not None
        return {
            (metric.name, frozenset((point.attributes or {}).items())): float(point.value)
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            for point in metric.data.data_points
            if isinstance(point, NumberDataPoint)
        }

    def decisions(self, throttle: str, outcome: str) -> tuple[float, float]:
        """(Prometheus, OpenTelemetry): the two must always agree."""
        attributes = frozenset({"traffik.throttle": throttle, "traffik.outcome": outcome}.items())
        return (
            self.prometheus_value("traffik_decisions_total", throttle=throttle, outcome=outcome),
            self.opentelemetry_values().get(("traffik.decisions", attributes), 0.0),
        )

    def breaker(self, name: str) -> tuple[str, str]:
        """The state each library reports for breaker ``name``."""
        states = ("closed", "open", "half_open")
        metric = "traffik_circuit_breaker_state"
        (from_prometheus,) = [
            state
            for state in states
            if self.prometheus_value(metric, breaker=name, **{metric: state})
        ]
        values = self.opentelemetry_values()
        (from_opentelemetry,) = [
            state
            for state in states
            if values[
                "traffik.circuit_breaker.state",
                frozenset({"traffik.breaker": name, "traffik.breaker.state": state}.items()),
            ]
        ]
        return from_prometheus, from_opentelemetry


@pytest.fixture
def exporters() -> Iterator[Exporters]:
    exporters = Exporters()
    yield exporters
    exporters.uninstall()


def test_decisions_a_shadow_limit_and_an_outage_on_redis(
    server_factory: Callable[..., Any], namespace: str, exporters: Exporters
) -> None:
    server = server_factory("redis")
    breaker_clock = ManualClock(0.0)
    breaker = CircuitBreaker(
        failure_threshold=2, recovery_timeout=10, name="redis", clock=breaker_clock
    )
    backend = ResilientBackend(
        RedisBackend(server.url, namespace=namespace, clock=ManualClock(NOW)),
        breaker=breaker,
    )
    exporters.prometheus.watch(breaker)
    exporters.opentelemetry.watch(breaker)
    api = HTTPThrottle("api", rate="5/min")
    trial = HTTPThrottle("trial", rate="2/min", shadow=True)
    app = FastAPI(lifespan=backend.lifespan)
    app.mount("/metrics", make_asgi_app(exporters.registry))

    @app.get("/items", dependencies=[Depends(api), Depends(trial)])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app, client=("198.51.100.1", 40000)) as client:
        statuses = [client.get("/items").status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        # api admitted 5 and refused 2; the trial would have refused requests 3 to 5, and
        # only looked at 6 and 7 (refused by api, they consume nothing anywhere).
        assert exporters.decisions("api", "allowed") == (5, 5)
        assert exporters.decisions("api", "throttled") == (2, 2)
        assert exporters.decisions("trial", "allowed") == (2, 2)
        assert exporters.decisions("trial", "throttled") == (3, 3)
        assert exporters.prometheus_value("traffik_near_limit_total", throttle="api") == 2
        assert exporters.prometheus_value("traffik_near_limit_total", throttle="trial") == 1
        count = exporters.prometheus_value("traffik_backend_latency_seconds_count", throttle="api")
        assert count == 7
        assert exporters.breaker("redis") == ("closed", "closed")

        exposition = client.get("/metrics/").text
        assert 'traffik_decisions_total{outcome="throttled",throttle="trial"} 3.0' in exposition

        server.stop()
        outage = [client.get("/items").status_code for _ in range(3)]
        assert outage == [200] * 3  # on_error="allow": the API stays up
        # The first request's two failures opened the circuit; the rest never reached Redis.
        assert exporters.decisions("api", "error") == (3, 3)
        assert exporters.decisions("trial", "error") == (3, 3)
        assert exporters.breaker("redis") == ("open", "open")

        server.start()
        breaker_clock.advance(10)
    with TestClient(app, client=("198.51.100.2", 40000)) as client:
        assert client.get("/items").status_code == 200  # the probe found Redis answering
    assert exporters.breaker("redis") == ("closed", "closed")
    for state, entered in (("open", 1), ("half_open", 1), ("closed", 1)):
        assert (
            exporters.prometheus_value(
                "traffik_circuit_breaker_transitions_total", breaker="redis", state=state
            )
            == entered
        )
    assert exporters.decisions("api", "allowed") == (6, 6)


def test_shadow_mode_answers_200_and_counts_what_it_would_have_throttled(
    exporters: Exporters,
) -> None:
    backend = InMemoryBackend(namespace="shadow", clock=ManualClock(NOW))
    trial = HTTPThrottle("trial", rate="5/min", shadow=True)
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/items", dependencies=[Depends(trial)])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app, client=("198.51.100.1", 40000)) as client:
        assert [client.get("/items").status_code for _ in range(20)] == [200] * 20
    assert exporters.decisions("trial", "allowed") == (5, 5)
    assert exporters.decisions("trial", "throttled") == (15, 15)

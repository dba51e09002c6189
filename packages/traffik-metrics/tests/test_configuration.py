"""Building exporters: bad input, missing client libraries, installing."""

from __future__ import annotations

import sys

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from traffik import ConfigurationError, DecisionEvent, InMemoryBackend, Limiter
from traffik.metrics import MetricsExporter, OpenTelemetryExporter, PrometheusExporter
from traffik.observability import OBSERVERS


@pytest.mark.parametrize("share", [0, -0.5, 1.01, float("nan"), True, "0.8"])
def test_near_limit_must_be_a_share_of_the_limit(share: object) -> None:
    with pytest.raises(ConfigurationError, match="near_limit"):
        PrometheusExporter(CollectorRegistry(), near_limit=share)  # type: ignore[arg-type]


async def test_a_custom_near_limit(backend: InMemoryBackend) -> None:
    registry = CollectorRegistry()
    exporter = PrometheusExporter(registry, near_limit=0.5).install()
    try:
        limiter = Limiter("api", rate="4/min", backend=backend)
        for _ in range(4):
            await limiter.decide("k")
    finally:
        exporter.uninstall()
    # Used after each: 1, 2, 3, 4 of 4: the last three are at 50% or more.
    assert registry.get_sample_value("traffik_near_limit_total", {"throttle": "api"}) == 3


@pytest.mark.parametrize("namespace", ["", "9lives", "my-app", "spaced out"])
def test_a_prometheus_namespace_must_prefix_metric_names(namespace: str) -> None:
    with pytest.raises(ConfigurationError, match="namespace"):
        PrometheusExporter(CollectorRegistry(), namespace=namespace)


async def test_another_namespace(backend: InMemoryBackend) -> None:
    registry = CollectorRegistry()
    with_prefix = PrometheusExporter(registry, namespace="myapp_limits").install()
    try:
        await Limiter("api", rate="4/min", backend=backend).decide("k")
    finally:
        with_prefix.uninstall()
    labels = {"throttle": "api", "outcome": "allowed"}
    assert registry.get_sample_value("myapp_limits_decisions_total", labels) == 1


def test_a_missing_client_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"pip install 'traffik-metrics\[prometheus\]'"):
        PrometheusExporter()
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError, match=r"pip install 'traffik-metrics\[opentelemetry\]'"):
        OpenTelemetryExporter()


def test_install_and_uninstall() -> None:
    exporter = OpenTelemetryExporter(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    assert exporter.install() is exporter
    exporter.install()
    assert [exporter] == OBSERVERS
    exporter.uninstall()
    exporter.uninstall()
    assert OBSERVERS == []


def test_peeks_are_not_counted() -> None:
    registry = CollectorRegistry()
    exporter = PrometheusExporter(registry)
    peek = DecisionEvent(
        uid="api",
        outcome="allowed",
        allowed=True,
        key="api:{k}:fixed_window",
        strategy="fixed_window",
        cost=1,
        limit=10,
        remaining=0,
        retry_after=0.0,
        latency=0.001,
        shadow=False,
        peek=True,
        error=None,
        throttle=Limiter("api", rate="10/min"),
    )
    exporter(peek)
    assert (
        registry.get_sample_value(
            "traffik_decisions_total", {"throttle": "api", "outcome": "allowed"}
        )
        is None
    )
    assert isinstance(exporter, MetricsExporter)

"""Both exporters after a known sequence of decisions, read back through the real client
libraries: a fresh ``prometheus_client.CollectorRegistry``, and an OpenTelemetry
``MeterProvider`` with an ``InMemoryMetricReader``."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from prometheus_client import CollectorRegistry

from traffik import InMemoryBackend, Limiter
from traffik.metrics import (
    LATENCY_BUCKETS,
    OUTCOMES,
    MetricsExporter,
    OpenTelemetryExporter,
    PrometheusExporter,
)
from traffik.observability import OBSERVERS

# What `run_known_sequence` decides, by (throttle, outcome); every other pair is 0.
DECISIONS = {
    ("api", "allowed"): 5,
    ("api", "throttled"): 2,
    ("api", "exempted"): 1,
    ("trial", "allowed"): 2,
    ("trial", "throttled"): 1,  # a shadow throttle: what it would have refused
    ("down", "error"): 1,
    ("refusing", "error"): 1,
}
# Requests let through unlimited because deciding failed: "down" allowed one, "refusing"
# refused its failure (on_error="throttle"), which is no failed-open admission.
FAILED_OPEN = {"api": 0, "trial": 0, "down": 1, "refusing": 0}
# Admissions that left >= 80% of the limit in use: api's 4th and 5th of 5, trial's 2nd of 2.
NEAR_LIMIT = {"api": 2, "trial": 1, "down": 0, "refusing": 0}
# Backend calls per throttle (the peek and the exemption made none that count).
LATENCY_COUNTS = {"api": 7, "trial": 3, "down": 1, "refusing": 1}


async def run_known_sequence(backend: InMemoryBackend, broken: InMemoryBackend) -> None:
    api = Limiter("api", rate="5/min", backend=backend)
    trial = Limiter("trial", rate="2/min", backend=backend, shadow=True)
    down = Limiter("down", rate="5/min", backend=broken)
    for _ in range(7):
        await api.decide("alice")
    await api.decide("bob", cost=0)  # exempted: costs nothing
    assert not await api.check("alice")  # a peek: no request was decided
    for _ in range(3):
        await trial.acquire("alice")  # shadow mode: the third is let through
    await down.decide("alice")  # the store is down; on_error="allow"
    refusing = Limiter("refusing", rate="5/min", backend=broken, on_error="throttle")
    await refusing.decide("alice")


class Readout(Protocol):
    """The exporters' metrics, as their client library reports them."""

    def decisions(self, throttle: str, outcome: str) -> float: ...
    def near_limit(self, throttle: str) -> float: ...
    def failed_open(self, throttle: str) -> float: ...
    def latency(self, throttle: str) -> tuple[int, float]: ...  # (count, sum)
    def latency_bounds(self, throttle: str) -> tuple[float, ...]: ...
    def breaker_state(self, breaker: str) -> dict[str, float]: ...
    def transitions(self, breaker: str, state: str) -> float: ...


class PrometheusReadout:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def _value(self, name: str, labels: dict[str, str]) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def decisions(self, throttle: str, outcome: str) -> float:
        return self._value("traffik_decisions_total", {"throttle": throttle, "outcome": outcome})

    def near_limit(self, throttle: str) -> float:
        return self._value("traffik_near_limit_total", {"throttle": throttle})

    def failed_open(self, throttle: str) -> float:
        return self._value("traffik_failed_open_total", {"throttle": throttle})

    def latency(self, throttle: str) -> tuple[int, float]:
        labels = {"throttle": throttle}
        count = self._value("traffik_backend_latency_seconds_count", labels)
        return int(count), self._value("traffik_backend_latency_seconds_sum", labels)

    def latency_bounds(self, throttle: str) -> tuple[float, ...]:
        (family,) = [m for m in self.registry.collect() if m.name.endswith("latency_seconds")]
        bounds = [
            float(sample.labels["le"])
            for sample in family.samples
            if sample.name.endswith("_bucket") and sample.labels["throttle"] == throttle
        ]
        return tuple(bound for bound in bounds if bound != float("inf"))

    def breaker_state(self, breaker: str) -> dict[str, float]:
        name = "traffik_circuit_breaker_state"
        return {
            state: self._value(name, {"breaker": breaker, name: state})
            for state in ("closed", "open", "half_open")
        }

    def transitions(self, breaker: str, state: str) -> float:
        labels = {"breaker": breaker, "state": state}
        return self._value("traffik_circuit_breaker_transitions_total", labels)


class OpenTelemetryReadout:
    def __init__(self, reader: InMemoryMetricReader) -> None:
        self.reader = reader
        self._collected: dict[str, list[Any]] | None = None

    def _points(self, name: str) -> list[Any]:
        if self._collected is None:  # collect once: cumulative points, one snapshot
            data = self.reader.get_metrics_data()
            self._collected = {
                metric.name: list(metric.data.data_points)
                for resource in (data.resource_metrics if data is not None else ())
                for scope in resource.scope_metrics
                if scope.scope.name == "traffik.metrics"
                for metric in scope.metrics
            }
        return self._collected.get(name, [])

    def _sum(self, name: str, attributes: dict[str, str]) -> float:
        values = [
            point.value
            for point in self._points(name)
            if isinstance(point, NumberDataPoint) and dict(point.attributes or {}) == attributes
        ]
        return float(sum(values))

    def _histogram(self, throttle: str) -> HistogramDataPoint | None:
        for point in self._points("traffik.backend.duration"):
            if dict(point.attributes or {}) == {"traffik.throttle": throttle}:
                assert isinstance(point, HistogramDataPoint)
                return point
        return None

    def decisions(self, throttle: str, outcome: str) -> float:
        attributes = {"traffik.throttle": throttle, "traffik.outcome": outcome}
        return self._sum("traffik.decisions", attributes)

    def near_limit(self, throttle: str) -> float:
        return self._sum("traffik.near_limit", {"traffik.throttle": throttle})

    def failed_open(self, throttle: str) -> float:
        return self._sum("traffik.failed_open", {"traffik.throttle": throttle})

    def latency(self, throttle: str) -> tuple[int, float]:
        point = self._histogram(throttle)
        return (point.count, point.sum) if point is not None else (0, 0.0)

    def latency_bounds(self, throttle: str) -> tuple[float, ...]:
        point = self._histogram(throttle)
        assert point is not None
        return tuple(point.explicit_bounds)

    def breaker_state(self, breaker: str) -> dict[str, float]:
        return {
            state: self._sum(
                "traffik.circuit_breaker.state",
                {"traffik.breaker": breaker, "traffik.breaker.state": state},
            )
            for state in ("closed", "open", "half_open")
        }

    def transitions(self, breaker: str, state: str) -> float:
        attributes = {"traffik.breaker": breaker, "traffik.breaker.state": state}
        return self._sum("traffik.circuit_breaker.transitions", attributes)


ReadoutFactory = Callable[[], Readout]


@pytest.fixture(params=["prometheus", "opentelemetry"])
def exporter(request: pytest.FixtureRequest) -> Iterator[tuple[MetricsExporter, ReadoutFactory]]:
    """An installed exporter of each kind on fresh metric state, and how to read it back."""
    installed: MetricsExporter
    read: ReadoutFactory
    if request.param == "prometheus":
        registry = CollectorRegistry()
        installed = PrometheusExporter(registry).install()

        def read() -> Readout:
            return PrometheusReadout(registry)

    else:
        reader = InMemoryMetricReader()
        installed = OpenTelemetryExporter(MeterProvider(metric_readers=[reader])).install()

        def read() -> Readout:
            return OpenTelemetryReadout(reader)

    yield installed, read
    installed.uninstall()
    assert OBSERVERS == []


async def test_counters_and_histograms_after_a_known_sequence(
    exporter: tuple[MetricsExporter, ReadoutFactory],
    backend: InMemoryBackend,
    broken: InMemoryBackend,
) -> None:
    _, read = exporter
    await run_known_sequence(backend, broken)
    readout = read()
    for throttle in ("api", "trial", "down", "refusing"):
        for outcome in OUTCOMES:
            expected = DECISIONS.get((throttle, outcome), 0)
            assert readout.decisions(throttle, outcome) == expected, (throttle, outcome)
        assert readout.near_limit(throttle) == NEAR_LIMIT[throttle], throttle
        assert readout.failed_open(throttle) == FAILED_OPEN[throttle], throttle
        count, total = readout.latency(throttle)
        assert count == LATENCY_COUNTS[throttle], throttle
        assert 0 <= total < 1.0  # in-memory decisions: seconds, and far below one
    assert readout.latency_bounds("api") == LATENCY_BUCKETS


async def test_an_uninstalled_exporter_counts_nothing(
    exporter: tuple[MetricsExporter, ReadoutFactory],
    backend: InMemoryBackend,
    broken: InMemoryBackend,
) -> None:
    installed, read = exporter
    installed.uninstall()
    await run_known_sequence(backend, broken)
    assert read().decisions("api", "allowed") == 0


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class SwitchBreaker:
    """The part of a circuit breaker `MetricsExporter.watch` relies on: a name, a state
    and state-change listeners. (tests-integration watches the real CircuitBreaker.)"""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = State.CLOSED
        self._listeners: list[Callable[[object, State, State], None]] = []

    def add_listener(self, listener: Callable[[object, State, State], None]) -> None:
        self._listeners.append(listener)

    def switch(self, new: State) -> None:
        old, self.state = self.state, new
        for listener in self._listeners:
            listener(self, old, new)


def test_breaker_state_and_transitions(exporter: tuple[MetricsExporter, ReadoutFactory]) -> None:
    installed, read = exporter
    breaker = SwitchBreaker("redis")
    installed.watch(breaker)
    assert read().breaker_state("redis") == {"closed": 1, "open": 0, "half_open": 0}
    for state in (State.OPEN, State.HALF_OPEN, State.OPEN, State.HALF_OPEN, State.CLOSED):
        breaker.switch(state)
    readout = read()
    assert readout.breaker_state("redis") == {"closed": 1, "open": 0, "half_open": 0}
    assert readout.transitions("redis", "open") == 2
    assert readout.transitions("redis", "half_open") == 2
    assert readout.transitions("redis", "closed") == 1
    breaker.switch(State.OPEN)
    assert read().breaker_state("redis") == {"closed": 0, "open": 1, "half_open": 0}

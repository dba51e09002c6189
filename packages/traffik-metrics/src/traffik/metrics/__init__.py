"""Traffik metrics: rate-limit decisions exported to Prometheus or OpenTelemetry.

* `PrometheusExporter` (``pip install 'traffik-metrics[prometheus]'``) and
  `OpenTelemetryExporter` (``pip install 'traffik-metrics[opentelemetry]'``): observers of
  `traffik.observability` events; ``exporter.install()``, ``exporter.watch(breaker)``.
* `MetricsExporter`: what both share, to write another library's exporter.

Importing this package needs neither client library; building an exporter needs its own.
"""

from traffik.metrics._version import __version__
from traffik.metrics.exporter import BREAKER_STATES, LATENCY_BUCKETS, OUTCOMES, MetricsExporter
from traffik.metrics.opentelemetry import OpenTelemetryExporter
from traffik.metrics.prometheus import PrometheusExporter

__all__ = [
    "BREAKER_STATES",
    "LATENCY_BUCKETS",
    "OUTCOMES",
    "MetricsExporter",
    "OpenTelemetryExporter",
    "PrometheusExporter",
    "__version__",
]

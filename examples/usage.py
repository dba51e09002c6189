"""Example: show clients their quota at ``/usage``, export metrics at ``/metrics``, and try a
stricter limit in shadow mode before enforcing it.

Run with ``python examples/usage.py``: two API clients call ``/items``; the script prints
what ``/usage`` tells each of them, then the Prometheus metrics of the run. Or serve it:
``uvicorn examples.usage:app`` and ``curl -H 'X-API-Key: k1' localhost:8000/usage``.

* Each API key (header ``X-API-Key``) may call the API 10 times a minute and 100 times a
  day, whatever the route (``key_by="client"``).
* ``api:proposed`` is a stricter per-minute limit under evaluation: in shadow mode it
  refuses nothing, but ``/usage`` and the ``RateLimit`` headers show where clients stand
  against it, and ``traffik_decisions_total{outcome="throttled"}`` counts what it would
  have refused.
* ``/usage`` reads each quota with ``throttle.stat(request)``, which consumes nothing.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest, make_asgi_app

from traffik import HTTPThrottle, InMemoryBackend, header_identifier
from traffik.metrics import PrometheusExporter

backend = InMemoryBackend(namespace="usage-example")
registry = CollectorRegistry()  # a registry of its own, so the example can run twice
exporter = PrometheusExporter(registry)

by_api_key = header_identifier("X-API-Key")  # requests without one: by client address
per_minute = HTTPThrottle(
    "api:minute", rate="10/min", identifier=by_api_key, key_by="client", use_method=False
)
per_day = HTTPThrottle(
    "api:day", rate="100/d", identifier=by_api_key, key_by="client", use_method=False
)
proposed = HTTPThrottle(
    "api:proposed",
    rate="5/min",
    identifier=by_api_key,
    key_by="client",
    use_method=False,
    shadow=True,
)
QUOTAS = (per_minute, per_day, proposed)

Quota = dict[str, str | int | bool]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    exporter.install()
    try:
        async with backend.lifespan(app):
            yield
    finally:
        exporter.uninstall()


app = FastAPI(lifespan=lifespan)
app.mount("/metrics", make_asgi_app(registry))


@app.get("/items", dependencies=[Depends(throttle) for throttle in QUOTAS])
async def list_items() -> dict[str, list[str]]:
    return {"items": ["widget", "gizmo", "thingamajig"]}


@app.get("/usage")
async def usage(request: Request) -> dict[str, list[Quota]]:
    """Where the calling client stands against each quota; calling it costs nothing."""
    quotas: list[Quota] = []
    for throttle in QUOTAS:
        stat = await throttle.stat(request)
        if stat is None:  # no limit applies to this client
            continue
        quotas.append(
            {
                "policy": throttle.uid,
                "limit": stat.limit,
                "used": stat.limit - stat.remaining,
                "remaining": stat.remaining,
                "resets_in": math.ceil(stat.reset_after),
                "enforced": not throttle.shadow,
            }
        )
    return {"quotas": quotas}


CLIENTS = {"k-calm": 3, "k-busy": 12}


def main() -> None:
    with TestClient(app) as client:
        for key, count in CLIENTS.items():
            headers = {"X-API-Key": key}
            codes = [client.get("/items", headers=headers).status_code for _ in range(count)]
            print(f"{key}: {count} calls -> {codes.count(200)} served, {codes.count(429)} refused")
            for quota in client.get("/usage", headers=headers).json()["quotas"]:
                mode = "" if quota["enforced"] else "  (shadow: not enforced)"
                print(
                    f"  {quota['policy']:<13} {quota['used']:>3}/{quota['limit']:<3} used, "
                    f"resets in {quota['resets_in']} s{mode}"
                )
    print("\nmetrics:")
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith(("traffik_decisions_total", "traffik_near_limit_total")):
            print(f"  {line}")


if __name__ == "__main__":
    main()

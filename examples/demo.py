"""Demo: an app on the in-memory backend, and a few clients calling it.

Run with ``python3 dev.py demo``. Each client fires requests at ``/items`` (limited to
5 per 10 seconds per client) and at ``/search`` (a token bucket: bursts of 3, refilling one
per second); the demo prints, per client, how many were allowed and throttled.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from traffik import HTTPThrottle, TokenBucket
from traffik.backends.inmemory import InMemoryBackend

backend = InMemoryBackend(namespace="demo")
app = FastAPI(lifespan=backend.lifespan)
items_throttle = HTTPThrottle("demo:items", rate="5/10s")
search_throttle = HTTPThrottle("demo:search", rate="1/s", strategy=TokenBucket(burst_size=3))


@app.get("/items", dependencies=[Depends(items_throttle)])
async def list_items() -> dict[str, list[str]]:
    return {"items": ["widget", "gizmo", "thingamajig"]}


@app.get("/search", dependencies=[Depends(search_throttle)])
async def search(q: str = "") -> dict[str, str]:
    return {"q": q}


CLIENTS = {
    "alice (calm)": ("10.0.0.1", 3),
    "bob (busy)": ("10.0.0.2", 8),
    "eve (flood)": ("10.0.0.3", 40),
}


def main() -> None:
    header = f"{'client':<14} {'path':<8} {'sent':>4} {'allowed':>8} {'throttled':>10}"
    print(f"{header}  first Retry-After")
    for name, (address, count) in CLIENTS.items():
        with TestClient(app, client=(address, 40000)) as client:
            for path in ("/items", "/search"):
                statuses = [client.get(path) for _ in range(count)]
                allowed = sum(r.status_code == 200 for r in statuses)
                throttled = [r for r in statuses if r.status_code == 429]
                retry = throttled[0].headers["Retry-After"] + " s" if throttled else "-"
                print(f"{name:<14} {path:<8} {count:>4} {allowed:>8} {len(throttled):>10}  {retry}")


if __name__ == "__main__":
    main()

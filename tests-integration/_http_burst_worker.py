"""One app instance of the HTTP burst tests: a FastAPI app with every setting as shipped.

Run as ``python _http_burst_worker.py <redis|memcached> <url>``. The app's backend is
``RedisBackend(url)`` or ``MemcachedBackend(url)``, nothing else set; its lifespan runs
(and makes it the app's backend), then the worker prints ``ready``. Then, line by line on
stdin (so that every instance fires at once when told):

* ``route <uid> <strategy>`` adds ``GET /<uid>`` with
  ``Depends(HTTPThrottle(uid, rate="100/hour", strategy=...))`` and prints ``ready``;
  ``<strategy>`` is a class of `traffik.strategies`, or ``Name:option=value,...``.
* ``go <uid> <requests>`` sends that many simultaneous requests to it, from one client,
  through ``httpx.ASGITransport``, and prints a JSON line: the statuses counted, the first
  errors, and the wall-clock times of the first request and of the last answer.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import httpx2
from fastapi import Depends, FastAPI

import traffik.strategies
from traffik import HTTPThrottle, ThrottleBackend

RATE = "100/hour"


def make_strategy(spec: str) -> Any:
    """A strategy from ``Name`` or ``Name:option=value,...`` (whole-number options)."""
    name, _, options = spec.partition(":")
    kwargs = {
        option: int(value)
        for option, value in (item.split("=") for item in options.split(",") if item)
    }
    return getattr(traffik.strategies, name)(**kwargs)


def make_backend(kind: str, url: str) -> ThrottleBackend:
    if kind == "redis":
        from traffik.backends.redis import RedisBackend

        return RedisBackend(url)
    from traffik.backends.memcached import MemcachedBackend

    return MemcachedBackend(url)


async def burst(client: httpx2.AsyncClient, uid: str, requests: int) -> dict[str, object]:
    started = time.time()
    answers = await asyncio.gather(
        *(client.get(f"/{uid}") for _ in range(requests)), return_exceptions=True
    )
    ended = time.time()
    statuses: Counter[str] = Counter()
    errors: list[str] = []
    for answer in answers:
        if isinstance(answer, BaseException):
            statuses["error"] += 1
            errors.append(repr(answer))
        else:
            statuses[str(answer.status_code)] += 1
    return {"statuses": statuses, "errors": errors[:3], "started": started, "ended": ended}


async def main(kind: str, url: str) -> None:
    backend = make_backend(kind, url)
    app = FastAPI(lifespan=backend.lifespan)

    async def ok() -> dict[str, bool]:
        return {"ok": True}

    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app, client=("203.0.113.9", 4000))
        async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
            print("ready", flush=True)
            for line in sys.stdin:  # blocks the loop on purpose: nothing else is running
                command, uid, argument = line.split()
                if command == "route":
                    throttle = HTTPThrottle(uid, rate=RATE, strategy=make_strategy(argument))
                    app.add_api_route(f"/{uid}", ok, dependencies=[Depends(throttle)])
                    print("ready", flush=True)
                else:
                    print(json.dumps(await burst(client, uid, int(argument))), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))

"""One app instance of the Cluster topology tests: hit one key until told to stop.

Run as ``python _cluster_worker.py <cluster_url> <namespace> <key> <rate> <now> <callers>``.
It connects (a backend of the shipped defaults on the Cluster) and prints ``ready``; on a
line on stdin, ``callers`` callers hit the key at once, each awaiting one check after
another, until the next line on stdin; then it prints a JSON summary line:
``{"allowed", "refused", "error_count", "errors"}`` (errors: the first few, as reprs).
"""

from __future__ import annotations

import asyncio
import json
import sys

from traffik import FixedWindow, ManualClock, Rate
from traffik.backends.redis import RedisBackend
from traffik.strategies import NO_PARAMS


async def main(url: str, namespace: str, key: str, rate: str, now: str, callers: int) -> None:
    backend = RedisBackend(url, cluster=True, namespace=namespace, clock=ManualClock(float(now)))
    strategy, limit = FixedWindow(), Rate.parse(rate)
    counts = {"allowed": 0, "refused": 0, "error_count": 0}
    errors: list[str] = []
    stop = asyncio.Event()

    async def caller() -> None:
        while not stop.is_set():
            try:
                decision = await backend.apply(key, strategy, limit, 1, NO_PARAMS)
            except Exception as exc:  # every error counts: none is expected
                counts["error_count"] += 1
                errors.append(repr(exc))
                continue
            counts["allowed" if decision.allowed else "refused"] += 1

    async with backend:
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)  # go
        tasks = [asyncio.create_task(caller()) for _ in range(callers)]
        await loop.run_in_executor(None, sys.stdin.readline)  # stop
        stop.set()
        await asyncio.gather(*tasks)
    print(json.dumps({**counts, "errors": errors[:5]}), flush=True)


if __name__ == "__main__":
    url, namespace, key, rate, now, callers = sys.argv[1:]
    asyncio.run(main(url, namespace, key, rate, now, int(callers)))

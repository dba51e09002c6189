"""One app instance of the multi-process tests: fire a burst at one key, report the count.

Run as ``python _burst_worker.py <redis_url> <namespace> <strategy> <hits> <rate> <now>``.
It connects, prints ``ready``, waits for a line on stdin (so that every process fires at
once), fires ``hits`` simultaneous checks and prints a JSON summary.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import traffik.strategies
from traffik import ManualClock, Rate
from traffik.backends.redis import RedisBackend
from traffik.strategies import NO_PARAMS


def make_strategy(name: str) -> Any:
    """A strategy by class name from traffik.strategies (a new strategy joins by its name).

    ``subclass:<name>`` makes a trivial subclass, which the backend decides through its
    generic optimistic path instead of the native script.
    """
    if name.startswith("subclass:"):
        builtin = getattr(traffik.strategies, name.removeprefix("subclass:"))
        return type(f"Own{builtin.__name__}", (builtin,), {})()
    return getattr(traffik.strategies, name)()


async def main(
    url: str, namespace: str, strategy_name: str, hits: int, rate: str, now: str
) -> None:
    strategy = make_strategy(strategy_name)
    clock = ManualClock(float(now)) if now != "server" else None
    # Default settings but the time budget: four processes flooding redis-server on a
    # 2-core box can starve it of CPU for longer than 50 ms (see conftest.py).
    backend = RedisBackend(url, namespace=namespace, clock=clock, timeout=5.0)
    async with backend:
        print("ready", flush=True)
        sys.stdin.readline()  # blocks the loop on purpose: nothing else is running yet
        results = await asyncio.gather(
            *(
                backend.apply("shared", strategy, Rate.parse(rate), 1, NO_PARAMS)
                for _ in range(hits)
            ),
            return_exceptions=True,
        )
    errors = [repr(result) for result in results if isinstance(result, BaseException)]
    allowed = sum(
        1 for result in results if not isinstance(result, BaseException) and result.allowed
    )
    print(json.dumps({"allowed": allowed, "errors": errors[:5], "error_count": len(errors)}))


if __name__ == "__main__":
    url, namespace, strategy_name, hits, rate, now = sys.argv[1:7]
    asyncio.run(main(url, namespace, strategy_name, int(hits), rate, now))

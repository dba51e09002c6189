"""One app instance whose wall clock is off by some seconds (the clock-skew test).

Run as ``python _skewed_instance.py <redis_url> <namespace> <skew_seconds>``. It patches
``time.time`` to run ``skew_seconds`` ahead, builds a Limiter on Redis (server time) and
one on the in-memory backend (its own, skewed, clock), prints ``ready``, reads two real
moments from stdin, fires the same burst on both at each moment and prints JSON: the
decisions and the real times each burst started and ended.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Mapping

from traffik import InMemoryBackend, Limiter
from traffik.backends.redis import RedisBackend

REAL_TIME = time.time
BURST = 3
RATE = "2/2s"


async def fire(limiters: Mapping[str, Limiter], at: float) -> dict[str, object]:
    await asyncio.sleep(max(at - REAL_TIME(), 0))
    started = REAL_TIME()
    # A loop, not a comprehension: Python 3.10 refuses an await in a comprehension nested
    # in another one.
    decisions: dict[str, list[bool]] = {}
    for name, limiter in limiters.items():
        decisions[name] = [(await limiter.decide("client")).allowed for _ in range(BURST)]
    return {"started": started, "ended": REAL_TIME(), "decisions": decisions}


async def main(url: str, namespace: str, skew: float) -> None:
    # This host's clock is off by `skew` seconds (system_clock reads time.time at each call).
    time.time = lambda: REAL_TIME() + skew

    redis_backend = RedisBackend(url, namespace=namespace)  # no clock: the server's TIME
    memory_backend = InMemoryBackend()  # the host clock, skewed
    limiters = {
        "redis": Limiter("skew", rate=RATE, backend=redis_backend, on_error="raise"),
        "memory": Limiter("skew", rate=RATE, backend=memory_backend),
    }
    async with redis_backend:
        print("ready", flush=True)
        first, second = (float(value) for value in sys.stdin.readline().split())
        bursts = [await fire(limiters, first), await fire(limiters, second)]
    print(json.dumps(bursts))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))

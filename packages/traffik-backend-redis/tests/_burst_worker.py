"""One app instance of the multi-process tests: fire bursts at one key, report the counts.

Run as ``python _burst_worker.py <redis_url> <namespace> <hits> <rate> <now> <strategy>...``.
It connects and prints ``ready``; then, for each strategy in turn, it waits for a line on
stdin (so that every process fires at once), fires ``hits`` simultaneous checks at one
key and prints a JSON summary line.
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


def make_strategy(spec: str) -> Any:
    """A strategy from ``Name`` or ``Name:option=value,...`` (whole-number options).

    Names are classes of traffik.strategies (a new strategy joins by its name).
    ``subclass:<Name>`` makes a trivial subclass, which the backend decides through its
    generic optimistic path instead of the native script.
    """
    if spec.startswith("subclass:"):
        builtin = getattr(traffik.strategies, spec.removeprefix("subclass:"))
        return type(f"Own{builtin.__name__}", (builtin,), {})()
    name, _, options = spec.partition(":")
    kwargs = {
        option: int(value)
        for option, value in (item.split("=") for item in options.split(",") if item)
    }
    return getattr(traffik.strategies, name)(**kwargs)


async def main(url: str, namespace: str, hits: int, rate: str, now: str, specs: list[str]) -> None:
    clock = ManualClock(float(now)) if now != "server" else None
    backend = RedisBackend(url, namespace=namespace, clock=clock)  # the shipped defaults
    async with backend:
        print("ready", flush=True)
        for spec in specs:
            strategy = make_strategy(spec)
            sys.stdin.readline()  # blocks the loop on purpose: nothing else is running
            results = await asyncio.gather(
                *(
                    backend.apply(spec, strategy, Rate.parse(rate), 1, NO_PARAMS)
                    for _ in range(hits)
                ),
                return_exceptions=True,
            )
            errors = [repr(result) for result in results if isinstance(result, BaseException)]
            allowed = sum(
                1 for result in results if not isinstance(result, BaseException) and result.allowed
            )
            summary = {"allowed": allowed, "errors": errors[:5], "error_count": len(errors)}
            print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    url, namespace, hits, rate, now, *specs = sys.argv[1:]
    asyncio.run(main(url, namespace, int(hits), rate, now, specs))

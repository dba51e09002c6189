"""One "app instance" of the multi-process contention test (run as a script, not by pytest).

Usage: ``python _contention_worker.py URL NAMESPACE STRATEGY COUNT RATE NOW INSTANCES``
(URL: one ``memcached://`` URL, or several servers as ``host:port,host:port,...``). It
connects INSTANCES backends, prints ``ready``, waits for a line on stdin, fires COUNT
simultaneous hits on one key (spread over its backends) with its clock frozen at NOW, and
prints a JSON summary.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from traffik import Decision, ManualClock, Rate
from traffik.backends.memcached import MemcachedBackend


def strategies() -> dict[str, Any]:
    """The test module's `STRATEGIES`, loaded from its file (pytest imports it by path)."""
    path = Path(__file__).with_name("test_contention.py")
    spec = importlib.util.spec_from_file_location("memcached_contention_tests", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return dict(module.STRATEGIES)


async def main(*arguments: str) -> None:
    url, namespace, strategy_name, count, rate, now, instances = arguments
    strategy = strategies()[strategy_name]()
    limit, clock = Rate.parse(rate), ManualClock(float(now))
    # The shipped defaults: queueing behind a hot key is never memcached's silence.
    # URL: one server, or several as comma-separated "host:port" (MemcachedBackend(servers=)).
    where: dict[str, Any] = {"servers": url.split(",")} if "," in url else {"url": url}
    backends = [
        MemcachedBackend(**where, namespace=namespace, clock=clock) for _ in range(int(instances))
    ]
    for backend in backends:
        await backend.initialize()
        assert await backend.ready()  # opens the pool's connections
        await backend.storage_key("hot")  # reads the namespace's generation
    print("ready", flush=True)
    sys.stdin.readline()  # every process starts together
    results = await asyncio.gather(
        *(
            backends[i % len(backends)].apply("hot", strategy, limit, 1, {})
            for i in range(int(count))
        ),
        return_exceptions=True,
    )
    for backend in backends:
        await backend.close()
    decisions = [r for r in results if isinstance(r, Decision)]
    summary = {
        "allowed": sum(d.allowed for d in decisions),
        "refused": sum(not d.allowed for d in decisions),
        "errors": dict(Counter(type(r).__name__ for r in results if not isinstance(r, Decision))),
        "stats": [dataclasses.asdict(backend.cas_stats) for backend in backends],
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))

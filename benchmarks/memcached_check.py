"""Microseconds per memcached check, against a bare aiomcache ``incr`` in the same run.

    hatch run python benchmarks/memcached_check.py [memcached://host:port] [--rounds N]

Without a URL it starts a private memcached on a free loopback port. Every figure is the
median over interleaved rounds (one round of each workload, in turn, ``--rounds`` times),
so drift on a shared machine affects them all alike; ratios are against ``incr``.

Workloads (one client, one key each):
* ``incr``: aiomcache's ``incr`` — one round trip, the floor.
* ``check, admitted``: FixedWindow and TokenBucket that admit (``gets`` + ``cas``).
* ``check, refused``: a FixedWindow at its limit (``gets`` only: nothing to write).
* ``peek``: FixedWindow (``gets`` only).
* ``burst of 500``: 500 simultaneous checks on one key (coalesced into few rounds), per
  check; against 500 simultaneous ``incr``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import aiomcache

from traffik import Rate
from traffik.backends.memcached import MemcachedBackend
from traffik.strategies import FixedWindow, TokenBucket

SEQUENTIAL = 400  # operations per round, one after another
BURST = 500  # simultaneous operations per burst round


def start_memcached() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    binary = shutil.which("memcached")
    if binary is None:
        raise SystemExit("memcached is not installed (apt-get install memcached)")
    process = subprocess.Popen(
        [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64", "-u", "root"]
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process, f"memcached://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.02)
    process.kill()
    raise SystemExit("memcached did not start")


async def per_operation(step: Callable[[], Awaitable[object]], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await step()
    return (time.perf_counter() - started) / count * 1e6


async def per_burst_operation(step: Callable[[], Awaitable[object]], count: int) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(step() for _ in range(count)))
    return (time.perf_counter() - started) / count * 1e6


async def main(url: str, rounds: int) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 11211
    client = aiomcache.Client(host, port, pool_size=10)
    backend = MemcachedBackend(url, namespace=f"bench-{uuid.uuid4().hex[:8]}")
    await client.set(b"bench:incr", b"0")
    plenty, one = Rate.parse("1000000000/h"), Rate.parse("1/h")
    window, bucket = FixedWindow(), TokenBucket()

    async with backend:
        await backend.apply("refused", window, one, 1, {})  # at its limit from now on
        workloads: dict[str, Callable[[], Awaitable[float]]] = {
            "incr (floor)": lambda: per_operation(lambda: client.incr(b"bench:incr"), SEQUENTIAL),
            "check, admitted, FixedWindow": lambda: per_operation(
                lambda: backend.apply("fw", window, plenty, 1, {}), SEQUENTIAL
            ),
            "check, admitted, TokenBucket": lambda: per_operation(
                lambda: backend.apply("tb", bucket, plenty, 1, {}), SEQUENTIAL
            ),
            "check, refused, FixedWindow": lambda: per_operation(
                lambda: backend.apply("refused", window, one, 1, {}), SEQUENTIAL
            ),
            "peek, FixedWindow": lambda: per_operation(
                lambda: backend.peek("fw", window, plenty, 1, {}), SEQUENTIAL
            ),
            f"burst of {BURST} incr (floor)": lambda: per_burst_operation(
                lambda: client.incr(b"bench:incr"), BURST
            ),
            f"burst of {BURST} checks, FixedWindow": lambda: per_burst_operation(
                lambda: backend.apply("burst", window, plenty, 1, {}), BURST
            ),
        }
        for run in workloads.values():  # warm up: connections, generation, caches
            await run()
        samples: dict[str, list[float]] = {name: [] for name in workloads}
        for _ in range(rounds):
            for name, run in workloads.items():
                samples[name].append(await run())
        stats = backend.cas_stats
    await client.close()

    floor = statistics.median(samples["incr (floor)"])
    burst_floor = statistics.median(samples[f"burst of {BURST} incr (floor)"])
    print(f"memcached at {host}:{port}; median of {rounds} interleaved rounds\n")
    print(f"{'workload':<40} {'us/op':>8} {'x floor':>8}")
    for name, values in samples.items():
        median = statistics.median(values)
        base = burst_floor if name.startswith("burst") else floor
        print(f"{name:<40} {median:>8.1f} {median / base:>8.2f}")
    print(
        f"\ncompare-and-swap: {stats.rounds} rounds, {stats.writes} writes, "
        f"{stats.conflicts} conflicts, {stats.operations} operations"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="memcached://host:port (default: start one)")
    parser.add_argument("--rounds", type=int, default=15)
    arguments = parser.parse_args()
    server = None
    if arguments.url is None:
        server, arguments.url = start_memcached()
    try:
        asyncio.run(main(arguments.url, arguments.rounds))
    finally:
        if server is not None:
            server.kill()
            server.wait()

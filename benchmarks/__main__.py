"""``python -m benchmarks`` (``hatch run bench``): run the suite, print and save the table.

    hatch run bench                       # everything: a couple of minutes
    hatch run bench --quick               # fewer rounds and operations: a quick look
    hatch run bench --only memory,http    # in-process sections only (no servers needed)

Sections: ``memory`` = (a) in-memory checks and (g) memory per key; ``http`` = (b) the
``Depends`` route and (c) the middleware; ``redis`` = (d), (e) and (h), on a Cluster;
``memcached`` = (f); ``uvicorn`` = (i) FastAPI served by uvicorn (uvloop, httptools) in
processes of their own, on memory and on Redis.
The network sections start private servers (redis-server, memcached on the PATH).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from benchmarks.harness import Section, Settings
from benchmarks.report import render

GROUPS = ("memory", "http", "redis", "memcached", "uvicorn")
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.md"

# Which sections each group holds, by letter and title, for the "skipped" entries.
_SKELETONS = {
    "memory": [("a", "In-memory check per strategy"), ("g", "Memory per tracked key")],
    "http": [
        ("b", "FastAPI route with `Depends(throttle)`"),
        ("c", "FastAPI route behind `ThrottleMiddleware`"),
    ],
    "redis": [
        ("d", "Redis check per strategy, one at a time"),
        ("e", "Redis throughput"),
        ("h", "Redis Cluster throughput"),
    ],
    "memcached": [("f", "Memcached check per strategy, one at a time")],
    "uvicorn": [("i", "FastAPI under uvicorn (uvloop, httptools)")],
}


async def _run_group(group: str, settings: Settings) -> list[Section]:
    runners: list[Callable[[Settings], Awaitable[Section | list[Section]]]]
    if group == "memory":
        from benchmarks.in_memory import check_section, key_memory_section

        runners = [check_section, key_memory_section]
    elif group == "http":
        from benchmarks.http import dependency_section, middleware_section

        runners = [dependency_section, middleware_section]
    elif group == "redis":
        from benchmarks.cluster import cluster_section
        from benchmarks.network import redis_sections

        runners = [redis_sections, cluster_section]
    elif group == "memcached":
        from benchmarks.network import memcached_section

        runners = [memcached_section]
    else:
        from benchmarks.uvicorn_row import uvicorn_section

        runners = [uvicorn_section]
    sections: list[Section] = []
    for runner in runners:
        started = time.perf_counter()
        result = await runner(settings)
        produced = result if isinstance(result, list) else [result]
        for section in produced:
            print(
                f"  ({section.letter}) {section.title}: {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
        sections += produced
    return sections


async def run(groups: Sequence[str], settings: Settings, only: str | None) -> list[Section]:
    sections: list[Section] = []
    for group in GROUPS:
        if group in groups:
            sections += await _run_group(group, settings)
        else:
            sections += [
                Section(letter, title, "time", "", skipped=f"not selected (`--only {only}`).")
                for letter, title in _SKELETONS[group]
            ]
    return sorted(sections, key=lambda section: section.letter)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and operations")
    parser.add_argument(
        "--only", help=f"comma-separated groups to run, among {', '.join(GROUPS)} (default: all)"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (15; 5 with --quick)")
    parser.add_argument(
        "--scale", type=float, help="multiplies the operations per round (1; 0.25 with --quick)"
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"markdown file ({DEFAULT_OUTPUT})"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    arguments = parser.parse_args(argv)

    groups: list[str] = list(GROUPS)
    if arguments.only:
        groups = [group.strip() for group in arguments.only.split(",") if group.strip()]
        unknown = [group for group in groups if group not in GROUPS]
        if unknown:
            parser.error(f"unknown group(s) {', '.join(unknown)}; choose among {', '.join(GROUPS)}")
    settings = Settings(
        rounds=arguments.rounds or (5 if arguments.quick else 15),
        scale=arguments.scale or (0.25 if arguments.quick else 1.0),
        quick=arguments.quick,
    )
    if settings.rounds < 1 or settings.scale <= 0:
        parser.error("--rounds must be at least 1 and --scale above 0")
    command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
    started = time.perf_counter()
    sections = asyncio.run(run(groups, settings, arguments.only))
    text = render(sections, settings, command.strip())
    print(text)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(text + "\n", encoding="utf-8")
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"sections": [section.as_json() for section in sections]}
        arguments.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    print(
        f"\nWritten to {arguments.output} in {time.perf_counter() - started:.0f} s.",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

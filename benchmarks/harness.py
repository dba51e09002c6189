"""How every figure of the suite is measured: interleaved rounds, medians, ratios to a floor.

A section compares *contenders* with a *floor* measured in the same run. A contender is a
`Measure`: an async function that runs ``n`` operations and returns the seconds one took.
Each round runs every contender (the floor included) once, in an order rotated from round
to round, so drift on a shared machine and the advantage of going first fall on all alike.
What is reported, per contender, is

* the median over rounds of its time per operation (or operations per second, or bytes
  per key), and
* the median over rounds of its ratio to *that round's* floor — a ratio taken within a
  round cancels whatever slowed the whole round down.
"""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Call",
    "Contender",
    "Measure",
    "Row",
    "Section",
    "Settings",
    "Target",
    "compare",
    "concurrent",
    "sequential",
]

Call = Callable[[], Awaitable[object]]
"""One operation: ``await call()``."""

Measure = Callable[[int], Awaitable[float]]
"""``await measure(n)``: run ``n`` operations; the seconds one took."""

Kind = Literal["time", "throughput", "bytes"]


@dataclass(frozen=True)
class Settings:
    """How long to measure.

    :ivar rounds: interleaved rounds per section (after one warm-up round).
    :ivar scale: multiplies every section's operations per round.
    :ivar quick: the ``--quick`` mode (sections may also trim their contenders' setup).
    """

    rounds: int = 15
    scale: float = 1.0
    quick: bool = False

    def ops(self, base: int) -> int:
        """Operations per round for a section whose default is ``base``."""
        return max(1, round(base * self.scale))


@dataclass(frozen=True)
class Target:
    """A goal for a ratio: at most ``bound`` (times), or at least it for throughput."""

    bound: float
    at_least: bool = False

    def met(self, ratio: float) -> bool:
        return ratio >= self.bound if self.at_least else ratio <= self.bound

    def __str__(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.bound:g}x"


@dataclass(frozen=True)
class Contender:
    name: str
    measure: Measure
    target: Target | None = None
    note: str = ""


@dataclass(frozen=True)
class Row:
    """One contender's result. ``value`` is seconds per operation (kind "time"),
    operations per second ("throughput") or bytes per key ("bytes")."""

    name: str
    value: float
    ratio: float
    target: Target | None = None
    note: str = ""
    floor: bool = False

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.ratio)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "ratio": self.ratio,
            "target": None if self.target is None else str(self.target),
            "met": self.met,
            "note": self.note,
            "floor": self.floor,
        }


@dataclass
class Section:
    """One table of the report: ``(a)``, ``(b)``, ...

    ``skipped`` says why a section did not run (it then has no rows).
    """

    letter: str
    title: str
    kind: Kind
    description: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "letter": self.letter,
            "title": self.title,
            "kind": self.kind,
            "description": self.description,
            "rows": [row.as_json() for row in self.rows],
            "notes": self.notes,
            "skipped": self.skipped,
        }


def sequential(call: Callable[..., Awaitable[object]], *args: object) -> Measure:
    """``await call(*args)``, one at a time: the same loop for a floor and a contender."""

    async def measure(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            await call(*args)
        return (time.perf_counter() - started) / n

    return measure


def concurrent(callers: int, call_for: Callable[[int], Call]) -> Measure:
    """``callers`` tasks at once, each awaiting its call ``n`` times in a row.

    ``call_for(i)`` gives caller ``i``'s call. The figure is the wall time per operation
    of the whole burst (the inverse of its throughput).
    """
    calls = [call_for(index) for index in range(callers)]

    async def caller(call: Call, n: int) -> None:
        for _ in range(n):
            await call()

    async def measure(n: int) -> float:
        started = time.perf_counter()
        await asyncio.gather(*(caller(call, n) for call in calls))
        return (time.perf_counter() - started) / (n * callers)

    return measure


async def compare(
    floor: Contender,
    contenders: Sequence[Contender],
    *,
    rounds: int,
    ops: int,
    kind: Kind = "time",
) -> list[Row]:
    """Measure ``floor`` and ``contenders`` in interleaved rounds of ``ops`` operations.

    The first round warms up (caches, connections, code paths) and is discarded. For kind
    "throughput" the ratio is the contender's operations per second over the floor's
    (higher is better); otherwise it is the contender's time over the floor's.
    """
    everyone = [floor, *contenders]
    samples: list[list[float]] = [[] for _ in everyone]
    for round_index in range(rounds + 1):
        gc.collect()
        shift = round_index % len(everyone)
        for index in [*range(shift, len(everyone)), *range(shift)]:
            seconds = await everyone[index].measure(ops)
            if round_index > 0:
                samples[index].append(seconds)
    floor_samples = samples[0]
    rows = []
    for contender, values in zip(everyone, samples, strict=True):
        if kind == "throughput":
            ratios = [base / value for base, value in zip(floor_samples, values, strict=True)]
            value = 1 / statistics.median(values)
        else:
            ratios = [value / base for base, value in zip(floor_samples, values, strict=True)]
            value = statistics.median(values)
        rows.append(
            Row(
                contender.name,
                value,
                statistics.median(ratios),
                contender.target,
                contender.note,
                floor=contender is floor,
            )
        )
    return rows


def format_value(value: float, kind: Kind) -> str:
    """A row's value in the unit its section reads best in."""
    if kind == "throughput":
        return f"{value:,.0f}/s"
    if kind == "bytes":
        return f"{value:,.0f} B"
    if not math.isfinite(value):
        return "-"
    if value < 1e-6:
        return f"{value * 1e9:,.0f} ns"
    return f"{value * 1e6:,.1f} µs"

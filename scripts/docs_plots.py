"""Draw the documentation's strategy plots from the real strategies.

Each scenario sends a scripted load to a `Limiter` on the in-memory backend, on a
`ManualClock`, and counts the requests admitted and refused per time bin; each strategy
family gets one SVG in ``docs/assets/plots/`` (generated, never committed). The output is
deterministic — a fixed SVG hash salt, no dates, text kept as text — so the same code
always draws the same bytes.

Run ``hatch run docs:plots`` (``hatch run docs:build`` runs it first). The counts themselves
(`simulate`) need only traffik-core; drawing needs matplotlib.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traffik import (
    GCRA,
    AdaptiveThrottle,
    Concurrency,
    CostBasedTokenBucket,
    FixedWindow,
    InMemoryBackend,
    LeakyBucket,
    LeakyBucketWithQueue,
    Limiter,
    ManualClock,
    Priority,
    PriorityQueue,
    QuotaWithRollover,
    SlidingWindowCounter,
    SlidingWindowLog,
    Strategy,
    TieredRate,
    TimeOfDay,
    TokenBucket,
    TokenBucketWithDebt,
)

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "assets" / "plots"

SECOND, MINUTE, HOUR = 1_000, 60_000, 3_600_000
T0 = 1_800_000_000_000 - 1_800_000_000_000 % (24 * HOUR)  # midnight UTC: windows align here


@dataclass(frozen=True)
class Request:
    """One request of the scripted load: when (ms after T0), and what it carries."""

    at: int
    cost: int = 1
    params: Mapping[str, object] = field(default_factory=dict)
    client: str = "client"
    hold: int = 0  # for concurrency: how long the request keeps its slot (ms)


@dataclass(frozen=True)
class Scenario:
    """A strategy at a rate under a scripted load, counted in bins of ``bin_ms``."""

    title: str
    strategy: Strategy[Any]
    rate: str
    load: Sequence[Request]
    bin_ms: int
    unit_ms: int = SECOND  # the unit of the x axis
    unit: str = "s"
    series: Callable[[Request], str] = lambda request: "requests"  # what bars stack by


@dataclass
class Counts:
    """Admitted and refused requests per bin, per series."""

    bins: int
    admitted: dict[str, list[int]] = field(default_factory=dict)
    refused: list[int] = field(default_factory=list)

    def add(self, index: int, series: str, allowed: bool) -> None:
        if allowed:
            self.admitted.setdefault(series, [0] * self.bins)[index] += 1
        else:
            self.refused[index] += 1

    def total_admitted(self) -> int:
        return sum(sum(values) for values in self.admitted.values())


def every(start: int, end: int, step: int, **fields: Any) -> list[Request]:
    """One request every ``step`` ms in ``[start, end)``."""
    return [Request(at, **fields) for at in range(start, end, step)]


def burst(at: int, count: int, **fields: Any) -> list[Request]:
    """``count`` simultaneous requests."""
    return [Request(at, **fields) for _ in range(count)]


async def _simulate(scenario: Scenario) -> Counts:
    clock = ManualClock(T0 / 1000)
    limiter = Limiter(
        "plot", rate=scenario.rate, strategy=scenario.strategy, backend=InMemoryBackend(clock=clock)
    )
    end = max(request.at + request.hold for request in scenario.load)
    counts = Counts(bins=end // scenario.bin_ms + 1)
    counts.refused = [0] * counts.bins
    # Slots held by admitted requests are given back when they end (concurrency).
    releases: list[tuple[int, Request]] = []
    for request in sorted(scenario.load, key=lambda r: r.at):
        releases.sort(key=lambda item: item[0])
        while releases and releases[0][0] <= request.at:
            released_at, held = releases.pop(0)
            clock.set((T0 + released_at) / 1000)
            await limiter.refund(held.client, cost=held.cost, params=held.params)
        clock.set((T0 + request.at) / 1000)
        decision = await limiter.decide(request.client, cost=request.cost, params=request.params)
        counts.add(request.at // scenario.bin_ms, scenario.series(request), decision.allowed)
        if decision.allowed and request.hold:
            releases.append((request.at + request.hold, request))
    return counts


def simulate(scenario: Scenario) -> Counts:
    """Run the scripted load through the real strategy; the counts per bin."""
    return asyncio.run(_simulate(scenario))


# -- the scripted loads ------------------------------------------------------------------

# Against "10/s": 5/s (under the rate), a burst of 25, 20/s (twice the rate), a pause,
# then exactly 10/s.
STEADY_LOAD = [
    *every(0, 1_500, 200),
    *burst(1_500, 25),
    *every(2_000, 4_000, 50),
    *every(5_000, 7_000, 100),
]


def rate_family(strategies: Sequence[tuple[str, Strategy[Any]]]) -> list[Scenario]:
    return [
        Scenario(title, strategy, "10/s", STEADY_LOAD, bin_ms=100) for title, strategy in strategies
    ]


def _priority_name(request: Request) -> str:
    priority = request.params["priority"]
    assert isinstance(priority, Priority)
    return priority.name


def _tier_name(request: Request) -> str:
    return str(request.params["tier"])


FAMILIES: dict[str, list[Scenario]] = {
    "windows": rate_family(
        [
            ('FixedWindow() at "10/s"', FixedWindow()),
            ('SlidingWindowLog() at "10/s"', SlidingWindowLog()),
            ('SlidingWindowCounter() at "10/s"', SlidingWindowCounter()),
        ]
    ),
    "token-buckets": [
        *rate_family(
            [
                ('TokenBucket() at "10/s"', TokenBucket()),
                ('TokenBucket(burst_size=3) at "10/s"', TokenBucket(burst_size=3)),
                (
                    'TokenBucketWithDebt(burst_size=5, max_debt=5) at "10/s"',
                    TokenBucketWithDebt(burst_size=5, max_debt=5),
                ),
            ]
        ),
        Scenario(
            'CostBasedTokenBucket() at "100/min": 30 requests of cost 4 each minute',
            CostBasedTokenBucket(),
            "100/min",
            [r for minute in range(6) for r in burst(minute * MINUTE, 30, cost=4)],
            bin_ms=MINUTE,
            unit_ms=MINUTE,
            unit="min",
        ),
    ],
    "leaky-buckets": rate_family(
        [
            ('LeakyBucket() at "10/s"', LeakyBucket()),
            ('LeakyBucketWithQueue() at "10/s"', LeakyBucketWithQueue()),
            ('GCRA() at "10/s"', GCRA()),
            ('GCRA(burst_tolerance_ms=400) at "10/s"', GCRA(burst_tolerance_ms=400)),
        ]
    ),
    "adaptive": [
        Scenario(
            'AdaptiveThrottle() at "100/min": 200 a minute, then 10, then 200',
            AdaptiveThrottle(),
            "100/min",
            [
                r
                for minute, count in enumerate([200] * 6 + [10] * 4 + [200] * 2)
                for r in every(minute * MINUTE, (minute + 1) * MINUTE, MINUTE // count)
            ],
            bin_ms=MINUTE,
            unit_ms=MINUTE,
            unit="min",
        ),
        Scenario(
            'QuotaWithRollover() at "100/min": 40, 200, 200, 0, 200 a minute',
            QuotaWithRollover(),
            "100/min",
            [
                r
                for minute, count in enumerate([40, 200, 200, 0, 200])
                for r in burst(minute * MINUTE, count)
            ],
            bin_ms=MINUTE,
            unit_ms=MINUTE,
            unit="min",
        ),
        Scenario(
            'TieredRate() at "10/min": a free and a premium client, 1 request a second each',
            TieredRate(),
            "10/min",
            [
                r
                for tier in ("free", "premium")
                for r in every(0, 3 * MINUTE, SECOND, params={"tier": tier}, client=tier)
            ],
            bin_ms=10 * SECOND,
            series=_tier_name,
        ),
        Scenario(
            'TimeOfDay() at "100/h": 180 requests an hour for a day (UTC)',
            TimeOfDay(),
            "100/h",
            every(0, 24 * HOUR, 20 * SECOND),
            bin_ms=HOUR,
            unit_ms=HOUR,
            unit="h",
        ),
        Scenario(
            'PriorityQueue() at "100/min": LOW, NORMAL, HIGH, CRITICAL in turn, 4 a second',
            PriorityQueue(),
            "100/min",
            [
                Request(at, params={"priority": priority})
                for at in range(0, 2 * MINUTE, SECOND)
                for priority in Priority
            ],
            bin_ms=5 * SECOND,
            series=_priority_name,
        ),
    ],
    "concurrency": [
        Scenario(
            'Concurrency() with 4 slots (rate "4/min": a 1-minute lease): '
            "requests of 450 ms, 10 a second, then 2 a second",
            Concurrency(),
            "4/min",
            [*every(0, 3_000, 100, hold=450), *every(3_000, 6_000, 500, hold=450)],
            bin_ms=100,
        ),
    ],
}

# -- drawing -----------------------------------------------------------------------------

REFUSED_COLOR = "#d9534f"
ADMITTED_COLORS = ["#2e7d32", "#66bb6a", "#1565c0", "#64b5f6", "#6a1b9a"]


def render(name: str, scenarios: Sequence[Scenario], output: Path) -> Path:
    """One figure per family: a row per scenario, admitted (stacked by series) and refused."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.hashsalt": "traffik-docs",  # stable element ids
            "svg.fonttype": "none",  # text as text: no embedded glyph paths
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
    figure, axes = plt.subplots(len(scenarios), 1, figsize=(9, 2.1 * len(scenarios)), squeeze=False)
    for axis, scenario in zip(axes[:, 0], scenarios, strict=True):
        counts = simulate(scenario)
        positions = [i * scenario.bin_ms / scenario.unit_ms for i in range(counts.bins)]
        width = scenario.bin_ms / scenario.unit_ms * 0.9
        bottom = [0] * counts.bins
        # Series in the order they first appear in the load (LOW before CRITICAL, ...).
        for index, (series, values) in enumerate(counts.admitted.items()):
            label = "admitted" if series == "requests" else f"admitted: {series}"
            color = ADMITTED_COLORS[index % len(ADMITTED_COLORS)]
            axis.bar(
                positions, values, width, bottom=bottom, color=color, label=label, align="edge"
            )
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        axis.bar(
            positions,
            counts.refused,
            width,
            bottom=bottom,
            color=REFUSED_COLOR,
            label="refused",
            align="edge",
        )
        axis.set_title(scenario.title, loc="left", fontsize=9)
        axis.set_ylabel("requests")
        axis.set_xlabel(f"time ({scenario.unit})")
        axis.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    figure.tight_layout()
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"{name}.svg"
    figure.savefig(path, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(figure)
    return path


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument(
        "families", nargs="*", help=f"any of {', '.join(FAMILIES)} (all by default)"
    )
    arguments = parser.parse_args(argv)
    unknown = [name for name in arguments.families if name not in FAMILIES]
    if unknown:
        parser.error(f"unknown families: {', '.join(unknown)}")
    for name in arguments.families or FAMILIES:
        print(render(name, FAMILIES[name], arguments.output).relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The report: a markdown table per section, and a summary of the targets."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness import Section, Settings, format_value

__all__ = ["render"]

_ROOT = Path(__file__).resolve().parent.parent


def render(sections: Sequence[Section], settings: Settings, command: str) -> str:
    lines = [
        "# Traffik benchmarks",
        "",
        _environment(settings, command),
        "",
        "Every figure is a ratio against a floor measured in the same run. Rounds are "
        "interleaved (each runs every contender once, in an order rotated from round to "
        "round; one warm-up round is discarded); a row shows the median over rounds of its "
        "time per operation (or throughput, or bytes), and the median over rounds of its "
        "ratio to that round's floor.",
        "",
    ]
    targets = [(section, row) for section in sections for row in section.rows if row.target]
    if targets:
        lines += [
            "## Targets",
            "",
            "| section | row | x floor | target | met |",
            "|---|---|---:|---|---|",
        ]
        for section, row in targets:
            lines.append(
                f"| ({section.letter}) | {row.name} | {row.ratio:.2f} | {row.target} | "
                f"{'yes' if row.met else '**no**'} |"
            )
        lines.append("")
    for section in sections:
        lines += [f"## ({section.letter}) {section.title}", ""]
        if section.skipped:
            lines += [f"Skipped: {section.skipped}", ""]
            continue
        lines += [section.description, ""]
        value_header = {"time": "per op", "throughput": "throughput", "bytes": "per key"}
        lines += [
            f"| row | {value_header[section.kind]} | x floor | target | note |",
            "|---|---:|---:|---|---|",
        ]
        for row in section.rows:
            target = "" if row.target is None else f"{row.target} {'✓' if row.met else '✗'}"
            name = f"**{row.name}**" if row.floor else row.name
            lines.append(
                f"| {name} | {format_value(row.value, section.kind)} | {row.ratio:.2f} | "
                f"{target} | {row.note} |"
            )
        for note in section.notes:
            lines += ["", note]
        lines.append("")
    return "\n".join(lines)


def _environment(settings: Settings, command: str) -> str:
    try:
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        load = "unknown"
    return (
        f"`{command}` — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {_commit()}; "
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{load} at the start; {settings.rounds} rounds"
        f"{', operations x' + format(settings.scale, 'g') if settings.scale != 1 else ''}"
        f"{' (--quick)' if settings.quick else ''}."
    )


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' + changes' if dirty else ''}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run the suite with: python -m benchmarks")

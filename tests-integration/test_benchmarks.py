"""The benchmark suite runs and reports every row (``python -m benchmarks --quick``).

Only that it runs: the figures are never asserted (speed belongs to the benchmark's own
report, not to tests). Tiny round counts keep these quick.
"""

from __future__ import annotations

import inspect
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import traffik.strategies

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

STRATEGY_NAMES = sorted(
    name
    for name, value in vars(traffik.strategies).items()
    if name in traffik.strategies.__all__
    and inspect.isclass(value)
    and value is not traffik.strategies.Strategy  # the protocol itself
    and callable(getattr(value, "decide", None))
)


REFUSED = {
    "FixedWindow, refused, `limiter.decide`",
    "FixedWindow, refused, `limiter.decide`, refusal cache on",
}


def run_suite(tmp_path: Path, *arguments: str) -> dict[str, dict[str, Any]]:
    output, results = tmp_path / "latest.md", tmp_path / "latest.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--rounds", "1", "--scale", "0.01",
         "--output", str(output), "--json", str(results), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    table = output.read_text(encoding="utf-8")
    assert table.strip() in completed.stdout  # printed and written
    sections = {
        section["letter"]: section for section in json.loads(results.read_text())["sections"]
    }
    assert sorted(sections) == list("abcdefghi")
    for section in sections.values():
        assert f"## ({section['letter']}) " in table
        for row in section["rows"]:
            assert math.isfinite(row["value"]), row
            assert row["value"] > 0, row
            assert math.isfinite(row["ratio"]), row
            assert row["ratio"] > 0, row
            assert f"| {row['name']} |" in table or f"| **{row['name']}** |" in table
    return sections


def names(section: dict[str, Any]) -> list[str]:
    return [row["name"] for row in section["rows"]]


def test_in_process_sections_report_every_row(tmp_path: Path) -> None:
    sections = run_suite(tmp_path, "--only", "memory,http")

    checks = names(sections["a"])
    assert checks[0] == "dict counter (floor)"
    assert set(STRATEGY_NAMES) <= set(checks)  # a strategy added to core is measured too
    assert "FixedWindow, `await limiter.decide(key)`" in checks
    assert "FixedWindow, refused" in checks
    assert checks[checks.index("FixedWindow") + 1] == "fixed window in one function (reference)"
    assert set(checks) >= REFUSED
    assert names(sections["b"]) == [
        "no-op `Depends` (floor)",
        "bare route",
        "`Depends(throttle)`",
        "`Depends(throttle)`, headers off",
        "hand-written counter, same headers",
        "hand-written counter, on our store and record",
    ]
    assert names(sections["c"]) == [
        "bare route (floor)",
        "middleware throttle",
        "middleware, no throttles",
        "hand-written middleware, same headers",
        "hand-written middleware, on our store and record",
    ]
    assert names(sections["g"])[:2] == ["dict of [window, count] (floor)", "FixedWindow"]
    for letter in "defhi":
        assert sections[letter]["skipped"] == "not selected (`--only memory,http`)."
        assert sections[letter]["rows"] == []
    # The targets the issue sets are on the rows they concern.
    targets = {
        (letter, row["name"]): row["target"]
        for letter, section in sections.items()
        for row in section["rows"]
        if row["target"]
    }
    assert targets == {
        ("a", "FixedWindow"): "≤ 3x",
        ("b", "`Depends(throttle)`"): "≤ 1.1x",
        ("c", "middleware throttle"): "≤ 1.1x",
        ("g", "FixedWindow"): "≤ 1.2x",
    }


@pytest.mark.redis
@pytest.mark.memcached
def test_network_sections_start_their_own_servers(tmp_path: Path) -> None:
    sections = run_suite(tmp_path, "--only", "redis,memcached")

    assert names(sections["d"])[0] == "`INCR` (floor)"
    assert names(sections["e"])[0] == "50 x `INCR` (floor)"
    assert names(sections["f"])[0] == "`incr` (floor)"
    assert names(sections["h"]) == [
        "50 x `INCR` (floor)", "FixedWindow", "TokenBucket", "GCRA", "FixedWindow, `coalesce=False`"
    ]  # fmt: skip
    assert [row["target"] for row in sections["h"]["rows"]] == [None, *["≥ 2.5x"] * 3, None]
    targets = {row["name"]: row["target"] for row in sections["d"]["rows"]}
    # A concurrency check is two round trips (take, give back): 1.3x per call.
    assert targets["Concurrency"] == "≤ 2.6x"
    assert targets["FixedWindow"] == "≤ 1.3x"
    for letter in "def":
        measured = set(names(sections[letter])[1:])
        assert "FixedWindow" in measured
        assert measured - set(STRATEGY_NAMES) == (REFUSED if letter != "e" else set())
    for letter in "abcg":
        assert sections[letter]["skipped"] is not None


@pytest.mark.redis
def test_uvicorn_section_serves_each_app_in_a_process_of_its_own(tmp_path: Path) -> None:
    sections = run_suite(tmp_path, "--only", "uvicorn")

    rows = sections["i"]["rows"]
    assert sections["i"]["kind"] == "throughput"
    assert [(row["name"], row["target"]) for row in rows] == [
        ("bare route (floor)", None),
        ("no-op `Depends`", None),
        ("`Depends(throttle)`, memory", "≥ 0.9x"),
        ("middleware throttle, memory", "≥ 0.9x"),
        ("`Depends(throttle)`, Redis", "≥ 0.75x"),
        ("middleware throttle, Redis", "≥ 0.75x"),
        ("hand-written counter, memory", None),
        ("hand-written middleware, memory", None),
        ("hand-written middleware, on our store and record", None),
        ("hand-written `INCR`, Redis", None),
        ("client ceiling", None),
    ]
    for letter in "abcdefgh":
        assert sections[letter]["skipped"] is not None

"""Two app instances whose clocks differ by 5 s decide alike on Redis, which keeps the time.

Each instance is a subprocess whose ``time.time`` runs 0 s or 5 s ahead. Both fire the
same burst at the same two real moments, half a second either side of a "2/2s" window
boundary, once on Redis (server time) and once on the in-memory backend (the host's own
clock), each instance against its own key. The in-memory control shows the disagreement
skew causes: the skewed host, whose windows start on odd seconds, sees both bursts in one
window. On Redis both instances see what the server sees.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

INSTANCE = Path(__file__).with_name("_skewed_instance.py")
SKEWS = (0.0, 5.0)
WINDOW = 2.0


def run_instances(redis_url: str, namespace: str) -> tuple[float, dict[float, Any]]:
    processes = {
        skew: subprocess.Popen(
            [sys.executable, str(INSTANCE), redis_url, f"{namespace}-{skew:g}", str(skew)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for skew in SKEWS
    }
    try:
        for process in processes.values():
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        # The next real window boundary at least a second away; a burst either side of it.
        boundary = math.ceil((time.time() + 1.0) / WINDOW) * WINDOW
        for process in processes.values():
            assert process.stdin is not None
            process.stdin.write(f"{boundary - 0.5} {boundary + 0.5}\n")
            process.stdin.flush()
        reports = {
            skew: json.loads(process.communicate(timeout=30)[0])
            for skew, process in processes.items()
        }
    finally:
        for process in processes.values():
            process.kill()
            process.communicate()  # reaps it and closes its pipes (no ResourceWarning later)
    return boundary, reports


@pytest.mark.slow
def test_skewed_instances_agree_on_redis_and_disagree_on_their_own_clocks(
    redis_url: str, namespace: str
) -> None:
    boundary, reports = run_instances(redis_url, namespace)
    for skew, (before, after) in reports.items():
        # The premise: each burst really ran on its side of the boundary (0.5 s margins).
        assert boundary - 1.0 <= before["started"], (skew, before)
        assert before["ended"] < boundary, (skew, before)
        assert boundary <= after["started"], (skew, after)
        assert after["ended"] < boundary + 1.0, (skew, after)

    def decisions(skew: float, backend: str) -> list[bool]:
        return [flag for burst in reports[skew] for flag in burst["decisions"][backend]]

    fresh_window_each_burst = [True, True, False, True, True, False]
    # Redis: both instances decide as the server's clock says, whatever their own.
    assert decisions(0.0, "redis") == decisions(5.0, "redis") == fresh_window_each_burst
    # Control: on their own clocks they disagree; the skewed one sees a single window.
    assert decisions(0.0, "memory") == fresh_window_each_burst
    assert decisions(5.0, "memory") == [True, True, False, False, False, False]

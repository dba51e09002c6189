"""The README's quick look, run verbatim on a controlled clock."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from traffik import ManualClock

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_look_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (source,) = [block for block in blocks if 'HTTPThrottle("api:items"' in block]
    return str(source)


def test_the_documented_example_runs_verbatim() -> None:
    namespace: dict[str, Any] = {"__name__": "quick_look"}
    exec(compile(quick_look_source(), str(README), "exec"), namespace)
    app, backend = namespace["app"], namespace["backend"]
    # 10 s into a minute: 101 requests cannot straddle a window boundary.
    backend.clock = ManualClock(1_800_000_010.0)

    with TestClient(app, client=("198.51.100.1", 40000)) as first:
        responses = [first.get("/items") for _ in range(100)]
        assert [r.status_code for r in responses] == [200] * 100
        assert responses[-1].json() == {"items": ["widget", "gizmo", "thingamajig"]}
        refused = first.get("/items")  # the 101st
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "50"
        assert "Too many requests" in refused.json()["detail"]

    with TestClient(app, client=("198.51.100.2", 40000)) as second:
        assert second.get("/items").status_code == 200

    # A minute later the first client is welcome again.
    backend.clock.advance(50.0)
    with TestClient(app, client=("198.51.100.1", 40000)) as first:
        assert first.get("/items").status_code == 200

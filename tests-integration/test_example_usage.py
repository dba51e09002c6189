"""examples/usage.py: the ``/usage`` endpoint, its shadow limit and its metrics, driven as
a client would, and the script run as a user would run it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from traffik import InMemoryBackend, ManualClock

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "usage.py"
NOW = 1_799_971_210.0  # 10 s into a minute and into a (UTC) day


@pytest.fixture
def example() -> ModuleType:
    """A fresh copy of the example module (its own registry and exporter), its backend on
    a clock of the test's, so that no window ends during the test."""
    spec = importlib.util.spec_from_file_location("usage_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    vars(module)["backend"] = InMemoryBackend("usage-example", clock=ManualClock(NOW))
    return module


@pytest.fixture
def client(example: ModuleType) -> Iterator[TestClient]:
    with TestClient(example.app) as client:
        yield client


def quotas(client: TestClient, key: str) -> dict[str, tuple[int, int, int, bool]]:
    response = client.get("/usage", headers={"X-API-Key": key})
    assert response.status_code == 200
    result = {}
    for quota in response.json()["quotas"]:
        assert quota["resets_in"] == (86_390 if quota["policy"] == "api:day" else 50)
        result[quota["policy"]] = (
            quota["used"],
            quota["remaining"],
            quota["limit"],
            quota["enforced"],
        )
    return result


def test_usage_reports_each_quota_without_consuming_it(client: TestClient) -> None:
    fresh = {
        "api:minute": (0, 10, 10, True),
        "api:day": (0, 100, 100, True),
        "api:proposed": (0, 5, 5, False),
    }
    assert quotas(client, "alice") == fresh
    assert quotas(client, "alice") == fresh  # asking costs nothing
    for _ in range(3):
        assert client.get("/items", headers={"X-API-Key": "alice"}).status_code == 200
    assert quotas(client, "alice") == {
        "api:minute": (3, 7, 10, True),
        "api:day": (3, 97, 100, True),
        "api:proposed": (3, 2, 5, False),
    }
    assert quotas(client, "bob") == fresh  # per API key


def test_the_shadow_limit_refuses_nothing_but_shows_and_counts(client: TestClient) -> None:
    headers = {"X-API-Key": "carol"}
    responses = [client.get("/items", headers=headers) for _ in range(12)]
    assert [r.status_code for r in responses] == [200] * 10 + [429] * 2
    # The proposed 5/min limit would have refused calls 6 to 10; it refused nothing.
    assert '"api:proposed";r=0' in responses[5].headers["RateLimit"]
    assert quotas(client, "carol") == {
        "api:minute": (10, 0, 10, True),
        "api:day": (10, 90, 100, True),  # the refused calls consumed nothing
        "api:proposed": (5, 0, 5, False),
    }
    metrics = client.get("/metrics/").text
    for line in (
        'traffik_decisions_total{outcome="throttled",throttle="api:minute"} 2.0',
        'traffik_decisions_total{outcome="throttled",throttle="api:proposed"} 5.0',
        'traffik_decisions_total{outcome="allowed",throttle="api:proposed"} 5.0',
        'traffik_near_limit_total{throttle="api:minute"} 3.0',
    ):
        assert line in metrics


def test_the_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    # On the wall clock: the counts depend on when it runs (a minute may end meanwhile).
    assert "k-busy: 12 calls -> " in result.stdout
    assert "(shadow: not enforced)" in result.stdout
    assert 'traffik_decisions_total{outcome="allowed",throttle="api:proposed"}' in result.stdout

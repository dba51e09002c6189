"""Logging: under ``traffik.*``, silent until the application configures logging, and never
a traceback (or a warning) per request."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parents[1] / "packages"

# The logger each distribution writes to: the package it owns (core: the root, "traffik").
OWN_LOGGER = {
    "traffik-core": "traffik",
    "traffik-fastapi": "traffik.fastapi",
    "traffik-websocket": "traffik.websocket",
    "traffik-resilience": "traffik.resilience",
    "traffik-backend-redis": "traffik.backends.redis",
    "traffik-backend-memcached": "traffik.backends.memcached",
    "traffik-metrics": "traffik.metrics",
    "traffik-testing": "traffik.testing",
}

# The conformance kit is test code: its tests report what they ran (examples, decisions)
# on stdout, where pytest shows it with -s, like any test.
MAY_PRINT = {"traffik-testing"}


def logger_names(path: Path) -> list[str]:
    """The names passed to ``logging.getLogger`` / ``logger.getChild`` in one module."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr not in ("getLogger", "getChild"):
                continue
            argument = node.args[0] if node.args else None
            assert isinstance(argument, ast.Constant), f"{path}:{node.lineno}: a computed name"
            prefix = "traffik." if node.func.attr == "getChild" else ""
            names.append(prefix + str(argument.value))
    return names


def test_every_distribution_logs_under_its_own_traffik_logger() -> None:
    found = 0
    for package in sorted(PACKAGES.iterdir()):
        for path in sorted((package / "src").rglob("*.py")):
            for name in logger_names(path):
                found += 1
                own = OWN_LOGGER[package.name]
                assert name == own or name.startswith(own + "."), f"{path}: logger {name!r}"
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call):
                    called = node.func
                    if package.name not in MAY_PRINT:
                        assert not (isinstance(called, ast.Name) and called.id == "print"), path
                    # A traceback per failure would flood the logs during an outage.
                    assert not (
                        isinstance(called, ast.Attribute)
                        and called.attr == "exception"
                        and isinstance(called.value, ast.Name)
                        and called.value.id == "logger"
                    ), f"{path}:{node.lineno}: logger.exception"
    assert found >= 6


SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, sys
    from traffik import InMemoryBackend, Limiter, add_observer

    class DeadStore(InMemoryBackend):
        async def apply(self, *args):
            raise ConnectionError("store unreachable")

    def broken_observer(event):
        raise RuntimeError("observer bug")

    if sys.argv[1] == "configured":
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s %(message)s")
    add_observer(broken_observer)

    async def main():
        limiter = Limiter("api", rate="5/min", backend=DeadStore())
        for _ in range(100):
            assert (await limiter.decide("k")).allowed  # on_error="allow"

    asyncio.run(main())
    print("served 100 requests")
    """
)


@pytest.mark.parametrize("mode", ["silent", "configured"])
def test_a_dead_store_and_a_broken_observer_log_once_and_only_when_asked(mode: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "served 100 requests"
    if mode == "silent":
        assert result.stderr == ""  # a NullHandler: nothing reaches stderr unasked
        return
    lines = [line for line in result.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert [line.split(" ", 2)[:2] for line in lines] == [
        ["WARNING", "traffik"],  # the store: once per throttle per 30 s
        ["WARNING", "traffik.observability"],  # the observer: once, with its traceback
    ]
    assert result.stderr.count("Traceback") == 1
    assert "observer bug" in result.stderr
    assert "store unreachable" in result.stderr

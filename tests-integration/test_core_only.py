"""traffik-core installed alone, into a fresh venv: no web stack, clear errors for extras."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.util
    import traffik
    from traffik import InMemoryBackend, Limiter, ManualClock

    assert importlib.util.find_spec("starlette") is None, "starlette must not be installed"
    assert importlib.util.find_spec("fastapi") is None

    async def main():
        limiter = Limiter("jobs", rate="2/min", backend=InMemoryBackend(clock=ManualClock(0.0)))
        allowed = [(await limiter.decide("queue")).allowed for _ in range(3)]
        assert allowed == [True, True, False], allowed
        assert (await limiter.peek("queue")).retry_after == 60.0
        async with limiter.quota("batch") as quota:  # quota contexts need no web stack
            await quota(cost=1)
            await quota(cost=1)
        assert (quota.applied_cost, (await limiter.peek("batch")).allowed) == (2, False)

    asyncio.run(main())

    try:
        from traffik import HTTPThrottle
    except ImportError as exc:
        assert "pip install 'traffik[fastapi]'" in str(exc), str(exc)
    else:
        raise AssertionError("HTTPThrottle imported without traffik-fastapi")

    try:
        traffik.__version__
    except AttributeError as exc:  # the meta-package's version, and it is not installed
        assert "'traffik' distribution" in str(exc), str(exc)
    else:
        raise AssertionError("traffik.__version__ without the traffik distribution")

    namespace = {}
    exec("from traffik import *", namespace)
    assert "Limiter" in namespace and "HTTPThrottle" not in namespace

    # traffik 1.x's paths: core forwards them, and names the extra a missing target needs.
    for statement, extra in [
        ("from traffik.throttles import HTTPThrottle", "fastapi"),
        ("from traffik.decorators import throttled", "fastapi"),
        ("from traffik.registry import GLOBAL_REGISTRY", "fastapi"),
        ("from traffik.middleware import ThrottleMiddleware", "fastapi"),
        ("from traffik.headers import Header", "fastapi"),
        ("from traffik import DEFAULT_HEADERS_ALWAYS", "fastapi"),
        ("from traffik.throttles import WebSocketThrottle", "websocket"),
        ("from traffik.error_handlers import CircuitBreaker", "resilience"),
    ]:
        try:
            exec(statement, {})
        except ImportError as exc:
            assert f"pip install 'traffik[{extra}]'" in str(exc), (statement, str(exc))
        else:
            raise AssertionError(f"{statement} without its distribution")

    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from traffik.strategies import FixedWindowStrategy
        namespace = {}
        exec("from traffik.throttles import *", namespace)
    assert FixedWindowStrategy is traffik.FixedWindow
    assert [name for name in namespace if not name.startswith("__")] == [
        "Throttle", "ThrottleExceptionInfo", "ExceptionInfo"
    ], namespace
    assert [str(w.message).rsplit(": ", 1)[1] for w in caught] == [
        "use `from traffik.strategies import FixedWindow`",
        "use `from traffik import Throttle`",
        "use `from traffik import ThrottleExceptionInfo`",
        "use `from traffik import ThrottleExceptionInfo`",
    ], [str(w.message) for w in caught]
    print("core-only OK")
    """
)


@pytest.mark.slow
def test_core_alone_works_and_names_the_missing_extra(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(ROOT / "packages" / "traffik-core")],
        check=True,
    )
    result = subprocess.run(
        [str(python), "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "core-only OK" in result.stdout

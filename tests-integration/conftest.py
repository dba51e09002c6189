"""Backends for the cross-package suites, one parameter per kind.

`backend_kind` runs a test once per backend that exists; `make_backend` builds one of that
kind on a clock the test controls. Backends added by later packages join as
`backend_kinds` says (the conformance kit's suite, `test_backend_conformance`, builds its
backends there too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from backend_kinds import BACKEND_KINDS, BackendMaker, build_backend, server_url

from traffik import ManualClock, ThrottleBackend


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the ``burst_repeat`` tests (minutes long) unless ``-m`` names them."""
    if "burst_repeat" in (config.option.markexpr or ""):
        return
    kept = [item for item in items if item.get_closest_marker("burst_repeat") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


@pytest.fixture(params=BACKEND_KINDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_backend(
    backend_kind: str, request: pytest.FixtureRequest, namespace: str
) -> AsyncIterator[BackendMaker]:
    """A factory of backends of ``backend_kind`` on a given clock; all closed afterwards."""
    made: list[ThrottleBackend] = []
    url = server_url(backend_kind, request)  # servers start only for the kinds that need them

    async def make(clock: ManualClock) -> ThrottleBackend:
        # Each backend made is separate, as in-memory ones are: its own namespace.
        backend = build_backend(backend_kind, clock, f"{namespace}-{len(made)}", url)
        await backend.initialize()
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()

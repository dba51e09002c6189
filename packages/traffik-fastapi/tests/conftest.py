from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from traffik import InMemoryBackend, ManualClock
from traffik.fastapi import headers

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000.0)  # 40 s into a minute


@pytest.fixture
def backend(clock: ManualClock) -> InMemoryBackend:
    return InMemoryBackend(namespace="test", clock=clock)


@pytest.fixture
def client_for() -> Iterator[ClientFactory]:
    """``client_for(app, host="10.0.0.1", raise_server_exceptions=True)``: a started client."""
    clients: list[TestClient] = []

    def make(app: Any, host: str = "10.0.0.1", **kwargs: Any) -> TestClient:
        client = TestClient(app, client=(host, 50000), **kwargs)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _default_headers_restored() -> Iterator[None]:
    before = headers.default_headers()
    yield
    headers.set_default_headers(before)

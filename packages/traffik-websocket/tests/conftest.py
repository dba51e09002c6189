from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from traffik import InMemoryBackend, ManualClock

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000.0)  # 40 s into a minute: a minute's budget resets in 20 s


@pytest.fixture
def backend(clock: ManualClock) -> InMemoryBackend:
    return InMemoryBackend(namespace="test", clock=clock)


@pytest.fixture
def client_for() -> Iterator[ClientFactory]:
    """``client_for(app, host="10.0.0.1")``: a started test client from that address."""
    clients: list[TestClient] = []

    def make(app: Any, host: str = "10.0.0.1", **kwargs: Any) -> TestClient:
        client = TestClient(app, client=(host, 50000), **kwargs)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        client.__exit__(None, None, None)


Wrapper = Callable[[ASGIApp], ASGIApp]


@pytest.fixture
def without_denial_responses() -> Wrapper:
    """``without_denial_responses(app)``: ``app`` behind a server that does not support the
    websocket denial-response extension (it is taken out of every websocket scope)."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def server(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "websocket":
                extensions = dict(scope.get("extensions") or {})
                extensions.pop("websocket.http.response", None)
                scope = {**scope, "extensions": extensions}
            await app(scope, receive, send)

        return server

    return wrap

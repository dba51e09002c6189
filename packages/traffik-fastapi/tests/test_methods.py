"""Invented HTTP methods cannot multiply budgets, keys or cache entries."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
from fastapi import Depends, FastAPI
from starlette.testclient import TestClient

from traffik import HTTPThrottle, InMemoryBackend
from traffik.fastapi import MiddlewareThrottle, ThrottleMiddleware
from traffik.fastapi.methods import HTTP_METHODS, OTHER_METHOD, key_method

ClientFactory = Callable[..., TestClient]


def test_registered_methods_keep_their_name_and_others_share_one() -> None:
    assert {key_method(method) for method in HTTP_METHODS} == HTTP_METHODS
    assert {key_method(m) for m in ("PURGE", "PROPFIND", "get", "X-1", "OTHER")} == {OTHER_METHOD}
    assert key_method(None) is None
    assert key_method("") == ""


async def test_a_flood_of_invented_methods_through_the_middleware(
    backend: InMemoryBackend,
) -> None:
    throttle = HTTPThrottle("invented", rate="3/min", backend=backend)
    entry = MiddlewareThrottle(throttle, "/")
    app = FastAPI()
    app.get("/x")(ok)
    transport = httpx2.ASGITransport(app=ThrottleMiddleware(app, [entry]), client=("10.0.0.1", 1))
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
        statuses = [(await client.request(f"M{i}", "/x")).status_code for i in range(2_000)]
        # One budget for every invented method: 3 through (to the app's 405), then refused.
        assert statuses[:3] == [405, 405, 405]
        assert set(statuses[3:]) == {429}
        assert (await client.get("/x")).status_code == 200  # GET keeps a budget of its own
    assert sorted(backend._entries) == [
        "invented:{10.0.0.1}:GET:/:fixed_window",
        "invented:{10.0.0.1}:OTHER:/:fixed_window",
    ]
    assert len(entry._suffixes) <= len(HTTP_METHODS) + 1


def test_a_route_of_invented_methods_shares_one_budget(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("webdav", rate="2/min", backend=backend)
    app = FastAPI()
    app.api_route("/files", methods=["PROPFIND", "MKCOL"], dependencies=[Depends(throttle)])(ok)
    client = client_for(app)
    assert client.request("PROPFIND", "/files").status_code == 200
    assert client.request("MKCOL", "/files").status_code == 200
    assert client.request("PROPFIND", "/files").status_code == 429
    assert list(backend._entries) == ["webdav:{10.0.0.1}:OTHER:/files:fixed_window"]


async def ok() -> dict[str, bool]:
    return {"ok": True}

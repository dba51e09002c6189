"""traffik 1.x's custom headers, written as its guide ("Response Headers") and its test
suite (tests/integration/fastapi/test_throttle_headers.py) write them, over real requests.

Deviations from the 1.x text, each needed to make a test deterministic: a backend on a
`ManualClock` (40 s into a minute), small rates so that a 429 is reached, and a registry of
its own per throttle. traffik 2 also writes the headers on the response itself (1.x only
resolved them for ``get_headers``), so a 429 carries them without a custom handler.
"""

from __future__ import annotations

import warnings
from typing import Any

import httpx2
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from traffik import HTTPThrottle, ManualClock, set_default_headers
from traffik.backends.inmemory import InMemoryBackend
from traffik.fastapi import ThrottleRegistry

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # the 1.x path warns: tested elsewhere
    from traffik.headers import DEFAULT_HEADERS_ALWAYS, DEFAULT_HEADERS_THROTTLED, Header, Headers

THREE = ("x-ratelimit-limit", "x-ratelimit-remaining", "retry-after")


def backend(namespace: str = "myapi") -> InMemoryBackend:
    return InMemoryBackend(namespace=namespace, clock=ManualClock(1_000.0))


def picked(response: Any, names: tuple[str, ...] = THREE) -> dict[str, str]:
    return {name: response.headers[name] for name in names if name in response.headers}


# -- the guide: "Attaching Headers to a Throttle", the presets -----------------------------


def test_attaching_the_always_preset() -> None:
    memory = backend()
    app = FastAPI(lifespan=memory.lifespan)
    throttle = HTTPThrottle(
        "api:items", rate="2/min", headers=DEFAULT_HEADERS_ALWAYS, registry=ThrottleRegistry()
    )

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items() -> list[str]:
        return []

    with TestClient(app) as client:
        responses = [client.get("/items") for _ in range(3)]
    assert [response.status_code for response in responses] == [200, 200, 429]
    assert [picked(response) for response in responses] == [
        {"x-ratelimit-limit": "2", "x-ratelimit-remaining": "1", "retry-after": "0"},
        {"x-ratelimit-limit": "2", "x-ratelimit-remaining": "0", "retry-after": "0"},
        {"x-ratelimit-limit": "2", "x-ratelimit-remaining": "0", "retry-after": "20"},
    ]


def test_the_throttled_preset_appears_only_on_429() -> None:
    memory = backend()
    app = FastAPI(lifespan=memory.lifespan)
    throttle = HTTPThrottle(
        "api:items", rate="1/min", headers=DEFAULT_HEADERS_THROTTLED, registry=ThrottleRegistry()
    )

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items() -> list[str]:
        return []

    with TestClient(app) as client:
        ok, refused = client.get("/items"), client.get("/items")
    assert picked(ok) == {}
    assert refused.status_code == 429
    assert picked(refused) == {
        "x-ratelimit-limit": "1",
        "x-ratelimit-remaining": "0",
        "retry-after": "20",
    }


# -- the guide: conditions, values, collections --------------------------------------------


def test_a_custom_condition_warn_when_low() -> None:
    def warn_when_low(connection: Any, stat: Any, context: Any) -> bool:
        """Include the header when the client is below 10% quota remaining."""
        return bool(stat.hits_remaining < (stat.rate.limit * 0.1))

    memory = backend()
    app = FastAPI(lifespan=memory.lifespan)
    throttle = HTTPThrottle(
        "api:low",
        rate="10/min",
        headers=Headers({"X-RateLimit-Remaining": Header.REMAINING(when=warn_when_low)}),
        registry=ThrottleRegistry(),
    )

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items() -> list[str]:
        return []

    with TestClient(app) as client:
        seen = [client.get("/items").headers.get("x-ratelimit-remaining") for _ in range(10)]
    assert seen == [None] * 9 + ["0"]


def test_chaining_when() -> None:
    base = Header.REMAINING(when="always")
    throttled_only = base.when("throttled")
    assert repr(throttled_only) == repr(base.throttled)
    assert repr(base.always) == repr(base.when("always")) == repr(base)
    assert "when='throttled'" in repr(throttled_only)


def test_static_and_resolved_values_in_a_collection() -> None:
    def my_resolver(connection: Any, stat: Any, context: Any) -> str:
        if stat:
            return str(int(stat.hits_remaining))
        return "unknown"

    my_headers = Headers(
        {
            "X-RateLimit-Limit": Header.LIMIT(when="always"),
            "X-RateLimit-Remaining": Header.REMAINING(when="always"),
            "Retry-After": Header.RESET_SECONDS(when="throttled"),
            "RateLimit-Policy": Header("100;w=60"),
            "X-Custom-Remaining": Header(my_resolver, when="always"),
        }
    )
    memory = backend()
    app = FastAPI(lifespan=memory.lifespan)
    throttle = HTTPThrottle(
        "api:items", rate="2/min", headers=my_headers, registry=ThrottleRegistry()
    )

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items() -> list[str]:
        return []

    with TestClient(app) as client:
        ok, _, refused = client.get("/items"), client.get("/items"), client.get("/items")
    assert picked(ok, (*THREE, "ratelimit-policy", "x-custom-remaining")) == {
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "1",
        "ratelimit-policy": "100;w=60",
        "x-custom-remaining": "1",
    }
    assert refused.status_code == 429
    assert picked(refused, (*THREE, "ratelimit-policy")) == {
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "0",
        "retry-after": "20",
        "ratelimit-policy": "100;w=60",
    }


def test_merging_and_copying() -> None:
    extra = Headers(
        {
            "X-Service-Name": Header("my-api"),
            "X-RateLimit-Reset-Ms": Header.RESET_MILLISECONDS(when="always"),
        }
    )
    combined = DEFAULT_HEADERS_ALWAYS | extra
    assert list(DEFAULT_HEADERS_ALWAYS) == [
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "Retry-After",
    ]
    assert list(combined) == [*DEFAULT_HEADERS_ALWAYS, "X-Service-Name", "X-RateLimit-Reset-Ms"]

    my_copy = DEFAULT_HEADERS_ALWAYS.copy()
    my_copy["X-Service-Name"] = Header("my-api")
    assert "X-Service-Name" not in DEFAULT_HEADERS_ALWAYS

    memory = backend()
    app = FastAPI(lifespan=memory.lifespan)
    throttle = HTTPThrottle(
        "api:merged", rate="1/min", headers=combined, registry=ThrottleRegistry()
    )

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items() -> list[str]:
        return []

    with TestClient(app) as client:
        ok, refused = client.get("/items"), client.get("/items")
    assert ok.headers["x-service-name"] == "my-api"
    assert ok.headers["x-ratelimit-reset-ms"] == "0"
    assert refused.headers["x-ratelimit-reset-ms"] == "20000"
    assert refused.headers["retry-after"] == "20"


# -- the guide: "Real-World Example" and "Disabling a Header Per-Request" -------------------

api_headers = Headers(
    {
        "X-RateLimit-Limit": Header.LIMIT(when="always"),
        "X-RateLimit-Remaining": Header.REMAINING(when="always"),
        "Retry-After": Header.RESET_SECONDS(when="throttled"),
        "X-RateLimit-Reset-Ms": Header.RESET_MILLISECONDS(when="always"),
        "RateLimit-Policy": Header("1000;w=60"),
    }
)


def test_the_real_world_example() -> None:
    memory = backend()
    app = FastAPI(lifespan=memory.lifespan)
    api_throttle = HTTPThrottle(
        "api:v1", rate="3/min", headers=api_headers, registry=ThrottleRegistry()
    )

    @app.get("/items")
    async def list_items(
        response: Response,
        request: Request = Depends(api_throttle),  # noqa: B008
    ) -> dict[str, list[str]]:
        headers = await api_throttle.get_headers(request)
        response.headers.update(headers)
        return {"items": ["widget", "gizmo"]}

    with TestClient(app) as client:
        ok = client.get("/items")
        client.get("/items"), client.get("/items")
        refused = client.get("/items")
    assert ok.status_code == 200
    assert ok.json() == {"items": ["widget", "gizmo"]}
    assert [name for name, _ in ok.headers.items()].count("x-ratelimit-remaining") == 1
    assert picked(ok, (*THREE, "x-ratelimit-reset-ms", "ratelimit-policy")) == {
        "x-ratelimit-limit": "3",
        "x-ratelimit-remaining": "2",
        "x-ratelimit-reset-ms": "0",
        "ratelimit-policy": "1000;w=60",
    }
    assert refused.status_code == 429
    assert refused.json() == {"detail": "Too many requests. Retry in 20 seconds."}
    assert picked(refused, (*THREE, "x-ratelimit-reset-ms", "ratelimit-policy")) == {
        "x-ratelimit-limit": "3",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset-ms": "20000",
        "ratelimit-policy": "1000;w=60",
        "retry-after": "20",
    }


def test_the_json_response_tip() -> None:
    memory = backend()
    app = FastAPI(lifespan=memory.lifespan)
    api_throttle = HTTPThrottle(
        "api:v1", rate="3/min", headers=api_headers, registry=ThrottleRegistry()
    )

    @app.get("/items")
    async def list_items(request: Request = Depends(api_throttle)) -> JSONResponse:  # noqa: B008
        headers = await api_throttle.get_headers(request)
        return JSONResponse({"items": ["widget", "gizmo"]}, headers=headers)

    with TestClient(app) as client:
        ok = client.get("/items")
    assert picked(ok) == {"x-ratelimit-limit": "3", "x-ratelimit-remaining": "2"}


async def test_disabling_a_header_per_request() -> None:
    """The guide's snippet, in a route written as 1.x's own tests write them (over httpx)."""
    memory = backend()
    app = FastAPI(lifespan=memory.lifespan)
    throttle = HTTPThrottle(
        "api:items", rate="5/min", headers=DEFAULT_HEADERS_ALWAYS, registry=ThrottleRegistry()
    )

    @app.get("/items")
    async def items(request: Request, _: Any = Depends(throttle)) -> JSONResponse:  # noqa: B008
        resolved = await throttle.get_headers(
            request,
            headers={"X-RateLimit-Remaining": Header.DISABLE},
        )
        return JSONResponse({"resolved": resolved}, headers=resolved)

    transport = httpx2.ASGITransport(app=app)
    async with (
        memory.lifespan(app),
        httpx2.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        response = await client.get("/items")
    assert response.json() == {"resolved": {"X-RateLimit-Limit": "5", "Retry-After": "0"}}
    assert "x-ratelimit-remaining" not in response.headers


# -- 1.x's own tests (tests/integration/fastapi/test_throttle_headers.py) -------------------


def _app_resolving(throttle: HTTPThrottle, **get_headers: Any) -> FastAPI:
    memory = backend()
    app = FastAPI(lifespan=memory.lifespan)

    @app.get("/api/data")
    async def handler(request: Request, _: Any = Depends(throttle)) -> JSONResponse:  # noqa: B008
        resolved = await throttle.get_headers(request, **get_headers)
        return JSONResponse({"ok": True, "header_count": len(resolved)}, headers=resolved)

    return app


def test_static_string_headers() -> None:
    throttle = HTTPThrottle(
        uid="static-headers-fastapi",
        rate="5/s",
        headers={"X-Custom": "hello", "X-Service": "traffik"},
        registry=ThrottleRegistry(),
    )
    with TestClient(_app_resolving(throttle)) as client:
        resp = client.get("/api/data")
    assert resp.status_code == 200
    assert resp.headers["X-Custom"] == "hello"
    assert resp.headers["X-Service"] == "traffik"


def test_override_headers_in_get_headers() -> None:
    throttle = HTTPThrottle(
        uid="override-headers-fastapi",
        rate="5/s",
        headers={"X-Version": "v1"},
        registry=ThrottleRegistry(),
    )
    app = _app_resolving(throttle, headers={"X-Version": "v2", "X-Extra": "bonus"})
    with TestClient(app) as client:
        resp = client.get("/api/data")
    assert resp.headers["X-Version"] == "v2"
    assert resp.headers["X-Extra"] == "bonus"


def test_no_headers_returns_empty() -> None:
    throttle = HTTPThrottle(uid="no-headers-fastapi", rate="5/s", registry=ThrottleRegistry())
    with TestClient(_app_resolving(throttle)) as client:
        resp = client.get("/api/data")
    assert resp.status_code == 200
    assert resp.json()["header_count"] == 0


def test_remaining_decrements_across_hits() -> None:
    throttle = HTTPThrottle(
        uid="decrement-headers-fastapi",
        rate="5/s",
        headers={
            "X-RateLimit-Limit": Header.LIMIT(when="always"),
            "X-RateLimit-Remaining": Header.REMAINING(when="always"),
        },
        registry=ThrottleRegistry(),
    )
    seen = []
    with TestClient(_app_resolving(throttle)) as client:
        for _ in range(6):
            resp = client.get("/api/data")
            seen.append((resp.status_code, resp.headers.get("X-RateLimit-Remaining")))
    assert seen == [(200, "4"), (200, "3"), (200, "2"), (200, "1"), (200, "0"), (429, "0")]


# -- as defaults, and several throttles on a route -----------------------------------------


def test_the_presets_as_defaults_with_several_throttles() -> None:
    memory = backend()
    app = FastAPI(lifespan=memory.lifespan)
    per_minute = HTTPThrottle("api:minute", rate="2/min", registry=ThrottleRegistry())
    per_hour = HTTPThrottle("api:hour", rate="10/hour", registry=ThrottleRegistry())

    @app.get("/items", dependencies=[Depends(per_hour), Depends(per_minute)])
    async def items() -> list[str]:
        return []

    set_default_headers(DEFAULT_HEADERS_THROTTLED)
    try:
        with TestClient(app) as client:
            responses = [client.get("/items") for _ in range(3)]
    finally:
        set_default_headers(True)
    assert [response.status_code for response in responses] == [200, 200, 429]
    assert picked(responses[0]) == {}
    assert picked(responses[1]) == {}
    # The refusing limit (per minute) gives the values; no standard header besides.
    assert picked(responses[2]) == {
        "x-ratelimit-limit": "2", "x-ratelimit-remaining": "0", "retry-after": "20",
    }  # fmt: skip
    assert "ratelimit" not in responses[2].headers

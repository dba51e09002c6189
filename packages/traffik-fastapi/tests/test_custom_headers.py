"""Custom headers: checked at construction, cleaned when resolved, on 200 and 429, per
throttle, as defaults, beside the standard headers and under several throttles."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from traffik import ConfigurationError, HTTPThrottle, InMemoryBackend, set_default_headers
from traffik.fastapi import (
    DEFAULT_HEADERS_ALWAYS,
    DEFAULT_HEADERS_THROTTLED,
    HEADER_NAMES,
    Header,
    Headers,
    HeaderStat,
    MiddlewareThrottle,
    ThrottleMiddleware,
    throttled,
)

ClientFactory = Callable[..., TestClient]
THREE = ("x-ratelimit-limit", "x-ratelimit-remaining", "retry-after")
STANDARD = ("ratelimit-policy", "ratelimit", "x-ratelimit-reset")


def app_with(backend: InMemoryBackend, *throttles: HTTPThrottle, **kwargs: Any) -> FastAPI:
    app = FastAPI(lifespan=backend.lifespan, **kwargs)

    @app.get("/items", dependencies=[Depends(throttle) for throttle in throttles])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    return app


def picked(response: Any, names: tuple[str, ...] = THREE) -> dict[str, str]:
    return {name: response.headers[name] for name in names if name in response.headers}


# -- construction: names and constant values are checked --------------------------------


@pytest.mark.parametrize(
    "name", ["X Bad", "X-Bad:", "X-Bad\r\nSet-Cookie", "", "Ünïcode", "Content-Length",
             "transfer-encoding", 7]
)  # fmt: skip
def test_bad_header_names_are_refused(name: Any) -> None:
    with pytest.raises(ConfigurationError, match="Header name"):
        Headers({name: "v"})
    with pytest.raises(ConfigurationError, match="Header name"):
        HTTPThrottle("bad-name", rate="1/s", headers={name: Header("v")})


@pytest.mark.parametrize(
    "value", ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "nul\x00", "€uro", "\x7f"]
)
def test_constant_values_with_control_characters_are_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="cannot be sent"):
        Header(value)
    with pytest.raises(ConfigurationError, match="cannot be sent"):
        Headers({"X-Ok": value})
    with pytest.raises(ConfigurationError, match="cannot be sent"):
        set_default_headers({"X-Ok": value})


def test_resolvers_and_conditions_are_checked() -> None:
    async def late(connection: Any, stat: Any, context: Any) -> str:
        return "never"

    with pytest.raises(ConfigurationError, match="is async"):
        Header(late, when="always")
    with pytest.raises(ConfigurationError, match="is async"):
        Header("v", when=late)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="when must be"):
        Header("v", when="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="a string or a function"):
        Header(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="a string or a Header"):
        Headers({"X-Number": 3})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="headers must be"):
        HTTPThrottle("bad-spec", rate="1/s", headers=3)  # type: ignore[arg-type]


def test_one_entry_per_name_whatever_its_case() -> None:
    headers = Headers({"X-Service": "a"})
    headers["x-service"] = "b"
    assert list(headers) == ["x-service"]
    assert headers["x-service"].constant == "b"


def test_presets_and_defaults_of_when() -> None:
    assert list(DEFAULT_HEADERS_ALWAYS) == [
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "Retry-After",
    ]
    assert list(DEFAULT_HEADERS_THROTTLED) == list(DEFAULT_HEADERS_ALWAYS)
    stat = HeaderStat("k", None, 10, 4, 30.0, 0.0, throttled=False)
    assert Header("100;w=60").check(None, stat, None)  # type: ignore[arg-type]  # a constant: always
    assert not Header(lambda c, s, x: "v").check(None, stat, None)  # type: ignore[arg-type]
    refused = HeaderStat("k", None, 10, 0, 30.0, 1.2, throttled=True)
    assert Header(lambda c, s, x: "v").check(None, refused, None)  # type: ignore[arg-type]
    assert Header.RESET_SECONDS(when="always").resolve(None, refused) == "2"  # type: ignore[arg-type]
    assert Header.RESET_MILLISECONDS(when="always").resolve(None, refused) == "1200"  # type: ignore[arg-type]
    assert Header.RESET_SECONDS(when="always").resolve(None, stat) == "0"  # type: ignore[arg-type]
    assert refused.wait_ms == 1200.0
    assert refused.hits_remaining == 0


# -- on real requests ---------------------------------------------------------------------


def test_preset_always_on_200_and_429(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    client = client_for(
        app_with(backend, HTTPThrottle("always", rate="2/min", headers=DEFAULT_HEADERS_ALWAYS))
    )
    first, second, refused = client.get("/items"), client.get("/items"), client.get("/items")
    assert picked(first) == {
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "1",
        "retry-after": "0",
    }
    assert picked(second) == {
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "0",
        "retry-after": "0",
    }
    assert refused.status_code == 429
    # The clock stands 40 s into a minute: 20 s to wait.
    assert picked(refused) == {
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "0",
        "retry-after": "20",
    }
    assert refused.headers.get_list("retry-after") == ["20"]  # once: the standard one
    assert picked(first, STANDARD) == {}  # custom headers only: the throttle chose them


def test_preset_throttled_only_on_429(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    client = client_for(
        app_with(
            backend, HTTPThrottle("when-throttled", rate="1/min", headers=DEFAULT_HEADERS_THROTTLED)
        )
    )
    ok, refused = client.get("/items"), client.get("/items")
    assert ok.status_code == 200
    assert picked(ok) == {}
    assert refused.status_code == 429
    assert picked(refused) == {
        "x-ratelimit-limit": "1",
        "x-ratelimit-remaining": "0",
        "retry-after": "20",
    }


def test_mixed_with_standard_names(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    extra = Headers(
        {"X-Service": "catalogue", "X-RateLimit-Remaining": Header.REMAINING(when="always")}
    )
    throttle = HTTPThrottle(
        "mixed", rate="3/min", headers=["RateLimit", "X-RateLimit-Remaining", extra]
    )
    response = client_for(app_with(backend, throttle)).get("/items")
    assert response.headers["ratelimit"] == '"mixed";r=2;t=20'
    assert response.headers["x-service"] == "catalogue"
    assert response.headers.get_list("x-ratelimit-remaining") == ["2"]  # the custom one replaces it
    assert "ratelimit-policy" not in response.headers


def test_as_defaults(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    set_default_headers(DEFAULT_HEADERS_THROTTLED)
    client = client_for(app_with(backend, HTTPThrottle("by-default", rate="1/min")))
    ok, refused = client.get("/items"), client.get("/items")
    assert picked(ok) == {}
    assert picked(ok, STANDARD) == {}
    assert picked(refused) == {
        "x-ratelimit-limit": "1",
        "x-ratelimit-remaining": "0",
        "retry-after": "20",
    }
    set_default_headers([*HEADER_NAMES, {"X-Service": "catalogue"}])
    mixed = client.get("/items")
    assert mixed.headers["x-service"] == "catalogue"
    assert mixed.headers["ratelimit-policy"] == '"by-default";q=1;w=60'
    own = HTTPThrottle("own-choice", rate="5/min", headers=["RateLimit"])
    assert "x-service" not in client_for(app_with(backend, own)).get("/items").headers


def test_several_throttles_on_a_route(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    burst = HTTPThrottle("burst", rate="2/min", headers=DEFAULT_HEADERS_ALWAYS | {"X-Burst": "yes"})
    hourly = HTTPThrottle(
        "hourly", rate="5/hour", headers=DEFAULT_HEADERS_ALWAYS | {"X-Hourly": "yes"}
    )
    standard = HTTPThrottle("standard", rate="10/min")  # the default: the standard headers
    client = client_for(app_with(backend, hourly, burst, standard))
    first = client.get("/items")
    # One value per name, from the limit closest to refusing among those that send it; a
    # custom header replaces a standard one of its name.
    assert first.headers.get_list("x-ratelimit-remaining") == ["1"]
    assert first.headers.get_list("x-ratelimit-limit") == ["2"]
    assert first.headers["x-burst"] == "yes"
    assert first.headers["x-hourly"] == "yes"
    assert first.headers["ratelimit-policy"] == '"standard";q=10;w=60'
    client.get("/items")
    refused = client.get("/items")
    assert refused.status_code == 429
    assert refused.headers.get_list("retry-after") == ["20"]
    assert refused.headers.get_list("x-ratelimit-limit") == ["2"]


def test_under_the_middleware(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    throttle = HTTPThrottle("mw", rate="1/min", headers=DEFAULT_HEADERS_ALWAYS)
    app = app_with(backend, middleware=[])
    app.add_middleware(ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(throttle)])
    client = client_for(app)
    ok, refused = client.get("/items"), client.get("/items")
    assert picked(ok) == {
        "x-ratelimit-limit": "1",
        "x-ratelimit-remaining": "0",
        "retry-after": "0",
    }
    assert refused.status_code == 429
    assert picked(refused) == {
        "x-ratelimit-limit": "1",
        "x-ratelimit-remaining": "0",
        "retry-after": "20",
    }


# -- resolved values are cleaned; failing resolvers leave their header out -----------------


def _echo(connection: HTTPConnection, stat: HeaderStat, context: Any) -> str:
    return connection.query_params.get("tag", "")


async def test_resolved_values_cannot_inject_headers(backend: InMemoryBackend) -> None:
    throttle = HTTPThrottle("echo", rate="5/min", headers={"X-Tag": Header(_echo, when="always")})
    app = app_with(backend, throttle)
    transport = httpx2.ASGITransport(app=app)
    async with (
        backend.lifespan(app),
        httpx2.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        response = await client.get("/items", params={"tag": "a\r\nSet-Cookie: session=evil\x00€"})
    assert response.status_code == 200
    assert response.headers["x-tag"] == "aSet-Cookie: session=evil"
    assert "set-cookie" not in response.headers
    assert [name for name, _ in response.headers.raw].count(b"x-tag") == 1


def test_failing_resolvers_leave_their_header_out(
    backend: InMemoryBackend, client_for: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(connection: Any, stat: Any, context: Any) -> str:
        raise RuntimeError("resolver bug")

    def nothing(connection: Any, stat: Any, context: Any) -> Any:
        return None

    headers = {
        "X-Broken": Header(broken, when="always"),
        "X-Nothing": Header(nothing, when="always"),
        "X-Number": Header(lambda c, s, x: s.remaining, when="always"),
        "X-Fine": "fine",
    }
    client = client_for(app_with(backend, HTTPThrottle("broken", rate="5/min", headers=headers)))
    with caplog.at_level(logging.WARNING, logger="traffik.fastapi"):
        response = client.get("/items")
    assert response.status_code == 200
    assert "x-broken" not in response.headers
    assert "x-nothing" not in response.headers
    assert response.headers["x-number"] == "4"
    assert response.headers["x-fine"] == "fine"
    assert "'x-broken': its resolver or condition raised" in caplog.text


def test_through_the_decorator_and_set_headers(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle(
        "decorated",
        rate="1/min",
        headers=DEFAULT_HEADERS_ALWAYS | {"X-Plan": "free"},
        key_by="client",  # one budget for both routes
    )
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/decorated")
    @throttled(throttle)
    async def decorated(request: Request) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/set")
    async def set_them(request: Request) -> PlainTextResponse:
        response = PlainTextResponse("ok")
        await throttle.set_headers(response, request, headers={"X-Plan": Header.DISABLE})
        return response

    client = client_for(app)
    ok, refused = client.get("/decorated"), client.get("/decorated")
    assert picked(ok, (*THREE, "x-plan")) == {
        "x-ratelimit-limit": "1", "x-ratelimit-remaining": "0", "retry-after": "0",
        "x-plan": "free",
    }  # fmt: skip
    assert refused.status_code == 429
    assert refused.headers["x-plan"] == "free"
    assert refused.headers.get_list("retry-after") == ["20"]
    # Outside a decided request: the standing, read without consuming (nothing left).
    standing = client.get("/set")
    assert picked(standing, (*THREE, "x-plan")) == {
        "x-ratelimit-limit": "1", "x-ratelimit-remaining": "0", "retry-after": "20",
    }  # fmt: skip


def test_a_disabled_entry_is_left_out(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    merged = DEFAULT_HEADERS_ALWAYS | {"Retry-After": Header.DISABLE}
    throttle = HTTPThrottle("disabled", rate="1/min", headers=merged)
    client = client_for(app_with(backend, throttle))
    ok, refused = client.get("/items"), client.get("/items")
    assert picked(ok) == {"x-ratelimit-limit": "1", "x-ratelimit-remaining": "0"}
    assert refused.headers.get_list("retry-after") == ["20"]  # a refusal's own, never switched off

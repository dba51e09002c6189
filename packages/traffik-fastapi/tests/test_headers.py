"""Rate-limit headers: values against the decision, switches, and where they appear."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI, HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from traffik import (
    ConfigurationError,
    ConnectionThrottled,
    HTTPThrottle,
    InMemoryBackend,
    ManualClock,
    MiddlewareThrottle,
    Rate,
    ThrottleMiddleware,
    TieredRate,
    TokenBucket,
    set_default_headers,
    throttled,
    throttled_problem_handler,
)
from traffik.fastapi import default_headers, get_retry_after, get_wait, is_throttled

ClientFactory = Callable[..., TestClient]
RATE_HEADERS = ("ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining",
                "x-ratelimit-reset")  # fmt: skip


def rate_headers(response: Any) -> dict[str, str]:
    return {name: response.headers[name] for name in RATE_HEADERS if name in response.headers}


def app_with(backend: InMemoryBackend, *throttles: HTTPThrottle, **kwargs: Any) -> FastAPI:
    app = FastAPI(lifespan=backend.lifespan, **kwargs)

    @app.get("/items", dependencies=[Depends(throttle) for throttle in throttles])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    return app


def test_values_follow_the_decision(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    client = client_for(app_with(backend, HTTPThrottle("api", rate="3/min")))
    # The clock stands 40 s into a minute: the window resets in 20 s.
    assert rate_headers(client.get("/items")) == {
        "ratelimit-policy": '"api";q=3;w=60',
        "ratelimit": '"api";r=2;t=20',
        "x-ratelimit-limit": "3",
        "x-ratelimit-remaining": "2",
        "x-ratelimit-reset": "20",
    }
    client.get("/items")
    client.get("/items")
    refused = client.get("/items")
    assert refused.status_code == 429
    assert rate_headers(refused) == {
        "ratelimit-policy": '"api";q=3;w=60',
        "ratelimit": '"api";r=0;t=20',
        "x-ratelimit-limit": "3",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "20",
    }
    assert refused.headers.get_list("retry-after") == ["20"]


def test_fractions_of_a_second_round_up(
    backend: InMemoryBackend, clock: ManualClock, client_for: ClientFactory
) -> None:
    clock.set(1_000.4)
    throttle = HTTPThrottle("tb", rate="10/s", strategy=TokenBucket(burst_size=2))
    client = client_for(app_with(backend, throttle))
    assert rate_headers(client.get("/items"))["ratelimit"] == '"tb";r=1;t=1'  # 0.1 s to refill
    client.get("/items")
    refused = client.get("/items")
    assert refused.headers["retry-after"] == "1"  # 0.1 s, rounded up
    assert refused.headers["x-ratelimit-reset"] == "1"  # 0.2 s, rounded up


def test_sub_second_windows_have_no_w(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    client = client_for(
        app_with(backend, HTTPThrottle("fast", rate=Rate(limit=5, milliseconds=500)))
    )
    assert client.get("/items").headers["ratelimit-policy"] == '"fast";q=5'


def test_several_limits_are_listed_and_the_closest_one_is_summarised(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    burst = HTTPThrottle("burst", rate="2/s")
    daily = HTTPThrottle("daily", rate="1000/d")
    client = client_for(app_with(backend, burst, daily))
    response = client.get("/items")
    assert response.headers["ratelimit-policy"] == '"burst";q=2;w=1, "daily";q=1000;w=86400'
    # 1_000 s after the epoch: the day resets in 85_400 s.
    assert response.headers["ratelimit"] == '"burst";r=1;t=1, "daily";r=999;t=85400'
    assert response.headers["x-ratelimit-limit"] == "2"
    assert response.headers["x-ratelimit-remaining"] == "1"


def test_a_refusal_reports_what_the_others_really_have_left(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    burst = HTTPThrottle("burst", rate="1/s")
    daily = HTTPThrottle("daily", rate="1000/d")
    client = client_for(app_with(backend, burst, daily))
    client.get("/items")
    refused = client.get("/items")
    assert refused.status_code == 429
    # The refused request consumed nothing from "daily": 999 left, not 998.
    assert refused.headers["ratelimit"] == '"burst";r=0;t=1, "daily";r=999;t=85400'
    assert refused.headers["x-ratelimit-limit"] == "1"
    assert refused.headers["retry-after"] == "1"


def test_headers_can_be_switched_per_throttle(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    silent = HTTPThrottle("silent", rate="5/min", headers=False)
    ietf = HTTPThrottle("ietf", rate="5/min", headers=["RateLimit", "ratelimit-policy"])
    assert rate_headers(client_for(app_with(backend, silent)).get("/items")) == {}
    assert rate_headers(client_for(app_with(backend, ietf)).get("/items")) == {
        "ratelimit-policy": '"ietf";q=5;w=60',
        "ratelimit": '"ietf";r=4;t=20',
    }


def test_headers_can_be_switched_globally(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    set_default_headers(["X-RateLimit-Remaining"])
    assert default_headers() == {"X-RateLimit-Remaining"}
    client = client_for(app_with(backend, HTTPThrottle("g", rate="5/min")))
    assert rate_headers(client.get("/items")) == {"x-ratelimit-remaining": "4"}
    set_default_headers(False)
    assert rate_headers(client.get("/items")) == {}
    chosen = client_for(app_with(backend, HTTPThrottle("own", rate="5/min", headers=True)))
    assert len(rate_headers(chosen.get("/items"))) == 5  # a throttle's own choice wins
    set_default_headers(False)
    client.get("/items"), client.get("/items"), client.get("/items")
    assert client.get("/items").headers["retry-after"] == "20"  # never switched off


@pytest.mark.parametrize("spec", [["X-RateLimit"], "RateLimit-Reset", [3], 7])
def test_unknown_header_names_are_refused(spec: Any) -> None:
    with pytest.raises(ConfigurationError, match=repr(spec[0] if isinstance(spec, list) else spec)):
        set_default_headers(spec)
    with pytest.raises(ConfigurationError):
        HTTPThrottle("bad", rate="1/s", headers=spec)


def test_no_retry_after_when_waiting_cannot_help(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    app = FastAPI(lifespan=backend.lifespan)
    throttle = HTTPThrottle("big", rate="5/min")

    @app.post("/bulk")
    async def bulk(request: Request) -> dict[str, bool]:
        await throttle(request, cost=6)
        return {"ok": True}

    refused = client_for(app).post("/bulk")
    assert refused.status_code == 429
    assert "retry-after" not in refused.headers
    assert refused.json()["detail"].endswith("cannot succeed.")


def test_with_depends_alone_a_route_returning_a_response_has_no_headers(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    """FastAPI drops a dependency's headers when the route returns its own Response; the
    middleware exists for this (next tests)."""
    throttle = HTTPThrottle("own-response", rate="5/min")
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/raw", dependencies=[Depends(throttle)])
    async def raw() -> Response:
        return PlainTextResponse("raw")

    assert rate_headers(client_for(app).get("/raw")) == {}


def middleware_app(backend: InMemoryBackend, **kwargs: Any) -> tuple[FastAPI, HTTPThrottle]:
    route = HTTPThrottle("route", rate="5/min")
    prefix = HTTPThrottle("prefix", rate="100/h")
    app = FastAPI(
        lifespan=backend.lifespan,
        middleware=[
            Middleware(
                ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(prefix, "/")], **kwargs
            )
        ],
    )

    async def require_token(request: Request) -> None:
        if request.headers.get("authorization") != "Bearer ok":
            raise HTTPException(401, "Who are you?")

    @app.get("/raw", dependencies=[Depends(route)])
    async def raw() -> Response:
        return PlainTextResponse("raw")

    @app.get("/private", dependencies=[Depends(route), Depends(require_token)])
    async def private() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/boom", dependencies=[Depends(route)])
    async def boom() -> dict[str, bool]:
        raise RuntimeError("boom")

    return app, route


def test_with_the_middleware_every_response_has_the_headers(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    app, _ = middleware_app(backend)
    client = client_for(app, raise_server_exceptions=False)
    raw = client.get("/raw")
    assert raw.text == "raw"
    assert raw.headers["ratelimit-policy"] == '"prefix";q=100;w=3600, "route";q=5;w=60'
    assert raw.headers["ratelimit"] == '"prefix";r=99;t=2600, "route";r=4;t=20'
    assert raw.headers["x-ratelimit-remaining"] == "4"

    unauthorized = client.get("/private")
    assert unauthorized.status_code == 401
    # Another route: another budget of the route throttle; one prefix budget for all.
    assert unauthorized.headers["ratelimit"] == '"prefix";r=98;t=2600, "route";r=4;t=20'

    missing = client.get("/nowhere")
    assert missing.status_code == 404
    # Only the middleware throttle applied; the route throttle never ran.
    assert rate_headers(missing) == {
        "ratelimit-policy": '"prefix";q=100;w=3600',
        "ratelimit": '"prefix";r=97;t=2600',
        "x-ratelimit-limit": "100",
        "x-ratelimit-remaining": "97",
        "x-ratelimit-reset": "2600",
    }

    crashed = client.get("/boom")
    assert crashed.status_code == 500
    assert crashed.text == "Internal Server Error"
    assert crashed.headers["ratelimit"] == '"prefix";r=96;t=2600, "route";r=4;t=20'


def test_the_middleware_alone_adds_route_headers_and_keeps_one_retry_after(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("only-route", rate="1/min")
    app = app_with(backend, throttle, middleware=[Middleware(ThrottleMiddleware)])
    client = client_for(app)
    assert client.get("/items").headers["ratelimit"] == '"only-route";r=0;t=20'
    refused = client.get("/items")
    assert refused.status_code == 429
    assert refused.headers.get_list("retry-after") == ["20"]
    assert refused.headers.get_list("ratelimit") == ['"only-route";r=0;t=20']


def test_the_middleware_uses_the_applications_500_handler(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    app, _ = middleware_app(backend)

    async def oops(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": str(exc)}, status_code=500)

    app.add_exception_handler(500, oops)
    crashed = client_for(app, raise_server_exceptions=False).get("/boom")
    assert crashed.json() == {"error": "boom"}
    assert crashed.headers["ratelimit-policy"] == '"prefix";q=100;w=3600, "route";q=5;w=60'


def test_the_server_error_still_reaches_the_server(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    app, _ = middleware_app(backend)
    with pytest.raises(RuntimeError, match="boom"):
        client_for(app).get("/boom")


def test_problem_details(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    throttle = HTTPThrottle("quota", rate="1/min")
    app = app_with(backend, throttle)
    app.add_exception_handler(ConnectionThrottled, throttled_problem_handler)
    client = client_for(app)
    client.get("/items")
    refused = client.get("/items")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "20"
    assert refused.headers["ratelimit"] == '"quota";r=0;t=20'
    assert refused.json() == {
        "type": "https://iana.org/assignments/http-problem-types#quota-exceeded",
        "title": "Request cannot be satisfied as assigned quota has been exceeded",
        "status": 429,
        "detail": "Too many requests. Retry in 20 seconds.",
        "violated-policies": ["quota"],
    }


def test_problem_details_from_the_middleware(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("mw-quota", rate="1/min")

    async def home(request: Request) -> Response:
        return PlainTextResponse("home")

    app = Starlette(
        routes=[Route("/", home)],
        lifespan=backend.lifespan,
        middleware=[
            Middleware(
                ThrottleMiddleware,
                middleware_throttles=[MiddlewareThrottle(throttle)],
                problem_details=True,
            )
        ],
    )
    client = client_for(app)
    assert client.get("/").headers["ratelimit"] == '"mw-quota";r=0;t=20'
    refused = client.get("/")
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["violated-policies"] == ["mw-quota"]
    assert refused.headers.get_list("retry-after") == ["20"]


def test_is_throttled_get_retry_after_and_get_wait_read_the_request(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    async def let_through(*args: Any) -> None:
        return None

    throttle = HTTPThrottle("soft", rate="1/min", handle_throttled=let_through)
    app = FastAPI(lifespan=backend.lifespan)

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items(request: Request) -> dict[str, Any]:
        return {
            "throttled": is_throttled(request),
            "wait": get_retry_after(request),
            "wait_ms": get_wait(request),  # traffik 1.x's unit
        }

    client = client_for(app)
    assert client.get("/items").json() == {"throttled": False, "wait": 0.0, "wait_ms": 0.0}
    assert client.get("/items").json() == {"throttled": True, "wait": 20.0, "wait_ms": 20000.0}


def test_headers_on_a_starlette_decorated_endpoint(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("deco", rate="2/min")

    @throttled(throttle)
    async def home(request: Request) -> Response:
        return PlainTextResponse("home")

    app = Starlette(routes=[Route("/", home)], lifespan=backend.lifespan)
    assert rate_headers(client_for(app).get("/")) == {
        "ratelimit-policy": '"deco";q=2;w=60',
        "ratelimit": '"deco";r=1;t=20',
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "1",
        "x-ratelimit-reset": "20",
    }


def test_policy_names_are_structured_field_strings() -> None:
    from traffik.fastapi.headers import policy_name

    assert policy_name('a"b\\c') == b'"a\\"b\\\\c"'
    throttle = HTTPThrottle('say "hi"', rate="1/s")
    assert throttle.static_policy == b'"say \\"hi\\"";q=1;w=1'


@pytest.mark.parametrize(
    ("strategy", "params", "quota"),
    [
        (TokenBucket(burst_size=20), None, 20),
        (TieredRate(), {"tier": "premium"}, 50),
    ],
    ids=["burst", "tier"],
)
def test_the_policy_quota_is_the_limit_the_decisions_apply(
    strategy: Any, params: dict[str, str] | None, quota: int
) -> None:
    # A burst or a tier changes the limit a client's decisions count down from; q says
    # the same number, so r never exceeds q.
    backend = InMemoryBackend(clock=ManualClock(1_800_000_010.0))
    throttle = HTTPThrottle("api", rate="10/s", strategy=strategy, params=params, backend=backend)
    app = FastAPI()

    @app.get("/", dependencies=[Depends(throttle)])
    async def index() -> dict[str, str]:
        return {}

    with TestClient(app) as client:
        headers = client.get("/").headers
    assert headers["RateLimit-Policy"] == f'"api";q={quota};w=1'
    assert headers["X-RateLimit-Limit"] == str(quota)
    assert headers["RateLimit"].startswith(f'"api";r={quota - 1};')

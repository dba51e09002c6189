"""traffik 1.x's verbs, written the 1.x way (from the 1.x docs: "Direct usage", "Dependency
injection"): ``await throttle.hit(request)`` checks and applies (429 over the limit),
``request: Request = Depends(throttle)`` is the request, ``await throttle(request)`` is
``hit``, and ``get_wait`` is in milliseconds. Then the 2.x ways to the `Decision`:
``Depends(throttle.decision)``, ``get_decision`` and the ``decide`` primitive.

Only the clock is injected (a manual one, so that a window never ends mid-test).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from traffik import Decision, HTTPThrottle, ManualClock
from traffik.backends.inmemory import InMemoryBackend
from traffik.fastapi import (
    ConcurrencyLimit,
    ConnectionThrottled,
    get_decision,
    get_retry_after,
    get_wait,
    is_throttled,
    throttled_exception_handler,
)

ClientFactory = Callable[..., TestClient]


def memory(clock: ManualClock) -> InMemoryBackend:
    return InMemoryBackend(namespace="inmemory", clock=clock)


def test_hit_in_the_endpoint_answers_429_over_the_limit(
    clock: ManualClock, client_for: ClientFactory
) -> None:
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)

    throttle = HTTPThrottle(uid="api:data", rate="2/min")

    @app.get("/data")
    async def get_data(request: Request) -> dict[str, Any]:
        await throttle.hit(request)
        return {"data": []}

    client = client_for(app)
    responses = [client.get("/data") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 429, 429]
    assert responses[2].json() == {"detail": "Too many requests. Retry in 20 seconds."}
    assert responses[2].headers["Retry-After"] == "20"


def test_hit_with_a_cost_and_a_cost_of_zero(clock: ManualClock, client_for: ClientFactory) -> None:
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)

    # Rate limit: 10 "units" per minute
    upload_throttle = HTTPThrottle(uid="uploads", rate="10/min")

    @app.post("/upload")
    async def upload_file(request: Request) -> dict[str, int]:
        body = await request.body()
        cost = 0 if request.headers.get("X-Internal") == "true" else max(1, len(body))
        await upload_throttle.hit(request, cost=cost)
        return {"bytes_received": len(body)}

    client = client_for(app)
    assert client.post("/upload", content=b"x" * 8).status_code == 200
    assert client.post("/upload", content=b"x" * 3).status_code == 429  # 8 + 3 > 10
    internal = client.post("/upload", content=b"x" * 50, headers={"X-Internal": "true"})
    assert internal.status_code == 200  # a cost of 0 is a no-op
    assert client.post("/upload", content=b"x" * 2).status_code == 200


def test_calling_the_throttle_is_hit(clock: ManualClock, client_for: ClientFactory) -> None:
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)
    throttle = HTTPThrottle(uid="api:scoped", rate="2/min")
    returned: list[bool] = []

    @app.get("/resource")
    async def get_resource(request: Request) -> dict[str, str]:
        returned.append(await throttle(request) is request)
        return {"ok": "yes"}

    client = client_for(app)
    assert [client.get("/resource").status_code for _ in range(3)] == [200, 200, 429]
    assert returned == [True, True]


def test_check_before_hit(clock: ManualClock, client_for: ClientFactory) -> None:
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)

    export_throttle = HTTPThrottle(uid="exports", rate="10/min")

    @app.post("/export")
    async def export_data(request: Request) -> dict[str, int]:
        cost = int(request.headers["x-cost"])
        if not await export_throttle.check(request, cost=cost):
            raise HTTPException(status_code=429, detail=f"This request costs {cost} units.")
        await export_throttle.hit(request, cost=cost)
        return {"cost": cost}

    client = client_for(app)
    assert client.post("/export", headers={"x-cost": "6"}).status_code == 200
    refused = client.post("/export", headers={"x-cost": "6"})
    assert refused.status_code == 429
    assert refused.json() == {"detail": "This request costs 6 units."}
    assert client.post("/export", headers={"x-cost": "4"}).status_code == 200


def test_depends_gives_the_request(clock: ManualClock, client_for: ClientFactory) -> None:
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)

    throttle = HTTPThrottle(uid="api:search", rate="2/min")

    @app.get("/search")
    async def search(q: str, request: Request = Depends(throttle)) -> dict[str, str]:  # noqa: B008
        client_ip = request.client.host if request.client else "?"
        return {"query": q, "from": client_ip}

    client = client_for(app, host="203.0.113.7")
    assert client.get("/search?q=a").json() == {"query": "a", "from": "203.0.113.7"}
    assert client.get("/search?q=b").json() == {"query": "b", "from": "203.0.113.7"}
    assert client.get("/search?q=c").status_code == 429
    # FastAPI publishes only the route's own parameter, not the throttle's.
    schema = client.get("/openapi.json").json()
    parameters = schema["paths"]["/search"]["get"]["parameters"]
    assert [p["name"] for p in parameters] == ["q"]


def test_hit_on_plain_starlette(clock: ManualClock, client_for: ClientFactory) -> None:
    backend = memory(clock)
    throttle = HTTPThrottle(uid="api:items", rate="1/min")

    async def list_items(request: Request) -> JSONResponse:
        await throttle.hit(request)  # raises ConnectionThrottled if over limit
        return JSONResponse({"items": []})

    app = Starlette(
        routes=[Route("/items", list_items)],
        lifespan=backend.lifespan,
        exception_handlers={ConnectionThrottled: throttled_exception_handler},
    )
    client = client_for(app)
    assert [client.get("/items").status_code for _ in range(2)] == [200, 429]


def test_get_wait_is_in_milliseconds(clock: ManualClock, client_for: ClientFactory) -> None:
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)
    calls: list[float] = []

    async def let_through(
        connection: HTTPConnection, wait_ms: float, throttle: Any, context: Any
    ) -> None:
        calls.append(wait_ms)

    throttle = HTTPThrottle(uid="soft", rate="1/min", handle_throttled=let_through)

    @app.get("/items")
    async def items(request: Request) -> dict[str, Any]:
        await throttle.hit(request)
        return {"throttled": is_throttled(request), "wait": get_wait(request)}

    client = client_for(app)
    assert client.get("/items").json() == {"throttled": False, "wait": 0.0}
    assert client.get("/items").json() == {"throttled": True, "wait": 20000.0}
    assert calls == [20000.0]


# -- the Decision, the 2.x way -----------------------------------------------------------


def test_depends_on_the_decision(clock: ManualClock, client_for: ClientFactory) -> None:
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)
    throttle = HTTPThrottle("quota", rate="2/min")

    @app.get("/quota")
    async def quota(decision: Decision = Depends(throttle.decision)) -> dict[str, int]:  # noqa: B008
        return {"remaining": decision.remaining, "limit": decision.limit}

    client = client_for(app)
    first = client.get("/quota")
    assert first.json() == {"remaining": 1, "limit": 2}
    assert first.headers["RateLimit"] == '"quota";r=1;t=20'  # the headers, as with Depends
    assert client.get("/quota").json() == {"remaining": 0, "limit": 2}
    assert client.get("/quota").status_code == 429  # a refusal still answers 429
    schema = client.get("/openapi.json").json()
    assert "parameters" not in schema["paths"]["/quota"]["get"]


def test_the_decision_is_the_throttles_own_beside_others(
    clock: ManualClock, client_for: ClientFactory
) -> None:
    # Decided ahead with the route's other throttle (one all-or-nothing step), or as a
    # shadow that refuses nothing: ``throttle.decision`` gives this throttle's decision.
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)
    minute = HTTPThrottle("minute", rate="2/min")
    hour = HTTPThrottle("hour", rate="10/h")
    trial = HTTPThrottle("trial", rate="1/min", shadow=True)

    # `minute.decision` runs first and decides `hour` (the route's plan) in the same step:
    # the last decision on the request is then hour's, not minute's.
    @app.get("/both")
    async def both(
        decision: Decision = Depends(minute.decision),  # noqa: B008
        request: Request = Depends(hour),  # noqa: B008
    ) -> dict[str, int]:
        by_hour = get_decision(request, hour)
        assert by_hour is not None
        return {"limit": decision.limit, "remaining": decision.remaining, "hour": by_hour.remaining}

    @app.get("/trial")
    async def trial_route(decision: Decision = Depends(trial.decision)) -> dict[str, bool]:  # noqa: B008
        return {"allowed": decision.allowed}

    client = client_for(app)
    assert client.get("/both").json() == {"limit": 2, "remaining": 1, "hour": 9}
    assert client.get("/both").json() == {"limit": 2, "remaining": 0, "hour": 8}
    assert client.get("/both").status_code == 429
    assert client.get("/trial").json() == {"allowed": True}
    over = client.get("/trial")
    assert over.status_code == 200  # a shadow refuses nothing
    assert over.json() == {"allowed": False}  # but its decision says what it would do


def test_get_decision_reads_what_a_throttle_decided(
    clock: ManualClock, client_for: ClientFactory
) -> None:
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)
    minute = HTTPThrottle("minute", rate="3/min")
    hour = HTTPThrottle("hour", rate="10/h")
    seen: list[tuple[int, int, float]] = []

    async def let_through(*args: Any) -> None:
        return None

    soft = HTTPThrottle("soft", rate="1/min", handle_throttled=let_through)

    @app.get("/both", dependencies=[Depends(minute), Depends(hour)])
    async def both(request: Request) -> dict[str, int]:
        by_minute, by_hour = get_decision(request, minute), get_decision(request, hour)
        assert by_minute is not None
        assert by_hour is not None
        return {"minute": by_minute.remaining, "hour": by_hour.remaining}

    @app.get("/soft")
    async def soft_route(request: Request) -> dict[str, bool]:
        assert get_decision(request) is None  # nothing decided yet
        await soft.hit(request)
        decision = get_decision(request)
        assert decision is not None
        seen.append((decision.limit, decision.remaining, get_retry_after(request)))
        return {"allowed": decision.allowed}

    client = client_for(app)
    assert client.get("/both").json() == {"minute": 2, "hour": 9}
    assert client.get("/soft").json() == {"allowed": True}
    assert client.get("/soft").json() == {"allowed": False}
    assert seen == [(1, 0, 0.0), (1, 0, 20.0)]


async def test_decide_only_decides(clock: ManualClock) -> None:
    backend = memory(clock)
    throttle = HTTPThrottle("direct", rate="1/min", backend=backend)
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "client": ("1.2.3.4", 1)}
    request = Request(scope)
    assert (await throttle.decide(request)).allowed
    refused = await throttle.decide(request)  # no handler: nothing raised
    assert (refused.allowed, refused.retry_after) == (False, 20.0)
    assert not is_throttled(request)  # and nothing recorded on the request
    assert get_decision(request, throttle) is None


async def test_concurrency_limit_depends_gives_the_request_too(
    clock: ManualClock, client_for: ClientFactory
) -> None:
    backend = memory(clock)
    app = FastAPI(lifespan=backend.lifespan)
    reports = ConcurrencyLimit("reports", max_in_flight=1)

    @app.get("/reports")
    async def report(request: Request = Depends(reports)) -> dict[str, int]:  # noqa: B008
        decision = get_decision(request, reports)
        assert decision is not None
        return {"in_flight_left": decision.remaining}

    client = client_for(app)
    assert client.get("/reports").json() == {"in_flight_left": 0}
    assert client.get("/reports").json() == {"in_flight_left": 0}  # the slot was given back

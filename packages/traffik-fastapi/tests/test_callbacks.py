"""Callbacks through real requests (FastAPI over httpx's ASGI transport): the traffik 1.x
forms of rate, cost and identifier functions, rule predicates, ``handle_throttled``
(milliseconds) and ``on_error`` (milliseconds) work as the 1.x documentation writes them;
the 2.x forms too; any other signature is refused when the throttle is built."""

from __future__ import annotations

import math
import typing
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from fastapi import Depends, FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from traffik import (
    ConfigurationError,
    Decision,
    HTTPThrottle,
    InMemoryBackend,
    ManualClock,
    Rate,
)
from traffik.fastapi import Bypass, MiddlewareThrottle, Rule, ThrottleMiddleware
from traffik.strategies import Params, Strategy

Route = Callable[..., Any]


@asynccontextmanager
async def client_of(
    *throttles: HTTPThrottle, host: str = "10.0.0.1"
) -> AsyncIterator[httpx2.AsyncClient]:
    """A client of an app whose ``/items`` (GET and POST) depends on ``throttles``."""
    app = FastAPI()

    async def items() -> dict[str, bool]:
        return {"ok": True}

    dependencies = [Depends(throttle) for throttle in throttles]
    app.get("/items", dependencies=dependencies)(items)
    app.post("/items", dependencies=dependencies)(items)
    transport = httpx2.ASGITransport(app=app, client=(host, 50000))
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def statuses(client: httpx2.AsyncClient, method: str, count: int, **kwargs: Any) -> list[int]:
    return [(await client.request(method, "/items", **kwargs)).status_code for _ in range(count)]


# -- rate and cost functions, exactly as the 1.x documentation writes them ------------------


async def test_rate_function_the_1x_way(backend: InMemoryBackend) -> None:
    # From the 1.x docs ("Throttle Rules & Wildcards", the full example).
    async def global_rate(
        connection: Request,
        context: typing.Optional[typing.Dict[str, typing.Any]],  # noqa: UP006, UP045
    ) -> Rate:
        if connection.scope["method"] == "GET":
            return Rate.parse("3/min")
        return Rate.parse("1/min")

    # (`Request` where the throttle is typed for `HTTPConnection`: mypy only objects.)
    global_throttle = HTTPThrottle("cb:1x-rate", rate=global_rate, backend=backend)  # type: ignore[arg-type]
    async with client_of(global_throttle) as client:
        assert await statuses(client, "GET", 4) == [200, 200, 200, 429]
        assert await statuses(client, "POST", 2) == [200, 429]


async def test_cost_function_the_1x_way(backend: InMemoryBackend) -> None:
    # From the 1.x docs ("Request Costs", the upload example).
    async def upload_cost(
        request: Request,
        context: typing.Optional[typing.Dict[str, typing.Any]],  # noqa: UP006, UP045
    ) -> int:
        content_length = int(request.headers.get("content-length", 0))
        size_mb = content_length // (1024 * 1024)
        return max(size_mb, 1)

    upload_throttle = HTTPThrottle("cb:1x-cost", rate="5/hour", cost=upload_cost, backend=backend)  # type: ignore[arg-type]
    three_mb = b"x" * (3 * 1024 * 1024)
    async with client_of(upload_throttle) as client:
        assert await statuses(client, "POST", 2, content=three_mb) == [200, 429]
        assert await statuses(client, "POST", 3) == [200, 200, 429]  # 3 + 1 + 1 = 5


async def test_functions_receive_the_throttle_context(backend: InMemoryBackend) -> None:
    seen: list[Mapping[str, Any] | None] = []

    async def identifier(connection: HTTPConnection, context: Mapping[str, Any] | None) -> str:
        seen.append(context)
        return f"{(context or {}).get('tenant')}:{connection.headers.get('x-user', 'anon')}"

    throttle = HTTPThrottle(
        "cb:identifier", rate="1/min", identifier=identifier, backend=backend,
        context={"tenant": "acme"},
    )  # fmt: skip
    async with client_of(throttle) as client:
        assert await statuses(client, "GET", 2, headers={"x-user": "ada"}) == [200, 429]
        assert await statuses(client, "GET", 1, headers={"x-user": "bob"}) == [200]
    assert seen[0] == {"tenant": "acme"}


async def test_the_2x_forms_still_work(backend: InMemoryBackend) -> None:
    async def rate(connection: HTTPConnection) -> str:
        return "2/min"

    async def cost(connection: HTTPConnection) -> int:
        return 1

    async def identifier(connection: HTTPConnection) -> str:
        return connection.headers.get("x-user", "anon")

    throttle = HTTPThrottle("cb:2x", rate=rate, cost=cost, identifier=identifier, backend=backend)
    async with client_of(throttle) as client:
        assert await statuses(client, "GET", 3, headers={"x-user": "ada"}) == [200, 200, 429]


async def test_a_raising_1x_rate_function_goes_to_on_error(backend: InMemoryBackend) -> None:
    async def rate(connection: Request, context: Any) -> str:
        raise LookupError("plan service down")

    throttle = HTTPThrottle("cb:raising", rate=rate, backend=backend, on_error="throttle")  # type: ignore[arg-type]
    async with client_of(throttle) as client:
        response = await client.get("/items")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"


# -- refused at construction ----------------------------------------------------------------


async def no_arguments() -> str:
    return "x"


async def three(connection: Any, context: Any, extra: Any) -> str:
    return "x"


async def keyword_only(connection: Any, *, tier: str) -> str:
    return "x"


WRONG = [(lambda: "x"), no_arguments, three, keyword_only]


@pytest.mark.parametrize("function", WRONG, ids=["lambda", "none", "three", "kw-only"])
@pytest.mark.parametrize("kind", ["rate", "cost", "params", "identifier"])
def test_wrong_signatures_are_refused(kind: str, function: Callable[..., Any]) -> None:
    settings: dict[str, Any] = {"rate": "1/min", kind: function}
    with pytest.raises(ConfigurationError) as info:
        HTTPThrottle(f"cb:wrong-{kind}", **settings)
    message = str(info.value)
    assert f"async def {kind}(connection)" in message
    assert f"async def {kind}(connection, context)  (traffik 1.x)" in message
    assert getattr(function, "__name__", "") in message


# -- rule predicates ------------------------------------------------------------------------


async def test_predicates_the_1x_way_and_the_2x_way(backend: InMemoryBackend) -> None:
    # From the 1.x docs ("Custom Predicate Rules").
    async def only_premium_with_context(connection: Any, context: Any = None) -> bool:
        tier = (context or {}).get("user_tier")
        return bool(tier == "premium")

    def is_post(connection: HTTPConnection) -> bool:  # 2.x: sync is fine too
        return bool(connection.scope["method"] == "POST")

    premium = HTTPThrottle(
        "cb:premium", rate="1/min", backend=backend, context={"user_tier": "premium"},
        rules=[Rule(predicate=only_premium_with_context)],
    )  # fmt: skip
    free = HTTPThrottle(
        "cb:free", rate="1/min", backend=backend, context={"user_tier": "free"},
        rules=[Rule(predicate=only_premium_with_context)],
    )  # fmt: skip
    posts = HTTPThrottle(
        "cb:posts-bypassed", rate="1/min", backend=backend, rules=[Bypass(predicate=is_post)]
    )
    async with client_of(premium) as client:
        assert await statuses(client, "GET", 2) == [200, 429]
    async with client_of(free) as client:
        assert await statuses(client, "GET", 3) == [200, 200, 200]  # the rule does not apply
    async with client_of(posts) as client:
        assert await statuses(client, "POST", 3) == [200, 200, 200]
        assert await statuses(client, "GET", 2) == [200, 429]


async def test_a_middleware_predicate_gets_the_entry_context(backend: InMemoryBackend) -> None:
    contexts: list[Any] = []

    async def predicate(connection: HTTPConnection, context: Mapping[str, Any]) -> bool:
        contexts.append(context)
        return True

    throttle = HTTPThrottle("cb:middleware", rate="1/min", backend=backend, context={"a": 1})
    app = FastAPI()
    app.get("/items")(lambda: {"ok": True})
    entry = MiddlewareThrottle(throttle, "/items", predicate=predicate, context={"b": 2})
    transport = httpx2.ASGITransport(app=ThrottleMiddleware(app, [entry]), client=("10.0.0.1", 1))
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
        assert await statuses(client, "GET", 2) == [200, 429]
    assert contexts[0] == {"a": 1, "b": 2}


@pytest.mark.parametrize("predicate", WRONG, ids=["lambda", "none", "three", "kw-only"])
def test_a_predicate_of_another_form_is_refused(predicate: Callable[..., Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        Rule(predicate=predicate)
    message = str(info.value)
    assert "async def predicate(connection) -> bool" in message
    assert "async def predicate(connection, context) -> bool  (traffik 1.x)" in message
    with pytest.raises(ConfigurationError, match="predicate"):
        MiddlewareThrottle(HTTPThrottle("cb:mw-wrong", rate="1/min"), predicate=predicate)


# -- handle_throttled: the 1.x meaning (milliseconds); on_throttled: the Decision ----------


async def test_handle_throttled_the_1x_way(backend: InMemoryBackend, clock: ManualClock) -> None:
    waits: list[float] = []

    # From the 1.x docs ("Custom Throttled Handlers").
    async def rate_limit_handler(request, wait_ms, throttle, context):  # type: ignore[no-untyped-def]
        waits.append(wait_ms)
        retry_after = math.ceil(wait_ms / 1000)
        raise StarletteHTTPException(
            status_code=429,
            detail={  # type: ignore[arg-type]  # as the 1.x docs wrote it
                "error": "rate_limit_exceeded",
                "message": f"You've hit the {throttle.uid!r} limit. Slow down!",
                "retry_after_seconds": retry_after,
            },
            headers={"Retry-After": str(retry_after), "X-RateLimit-Reset": str(retry_after)},
        )

    throttle = HTTPThrottle(
        "cb:handler-1x", rate="1/min", backend=backend, handle_throttled=rate_limit_handler
    )
    async with client_of(throttle) as client:
        assert (await client.get("/items")).status_code == 200
        refused = await client.get("/items")
    assert waits == [20_000.0]  # 40 s into the minute: 20 s, in milliseconds
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-reset"] == "20"
    assert refused.json()["detail"]["retry_after_seconds"] == 20


async def test_on_throttled_gets_the_decision(backend: InMemoryBackend) -> None:
    decisions: list[Decision] = []

    async def note(
        connection: HTTPConnection, decision: Decision, throttle: Any, context: Mapping[str, Any]
    ) -> None:
        decisions.append(decision)  # returns: the request goes through

    throttle = HTTPThrottle("cb:on-throttled", rate="1/min", backend=backend, on_throttled=note)
    async with client_of(throttle) as client:
        assert await statuses(client, "GET", 2) == [200, 200]
    [decision] = decisions
    assert (decision.allowed, decision.retry_after) == (False, 20.0)


def test_handle_throttled_written_for_a_decision_is_refused() -> None:
    async def note(
        connection: HTTPConnection, decision: Decision, throttle: Any, context: Any
    ) -> None: ...

    with pytest.raises(ConfigurationError, match=r"takes a Decision: pass it as on_throttled"):
        HTTPThrottle("cb:handler-decision", rate="1/min", handle_throttled=note)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "handler",
    [lambda: None, lambda connection, wait_ms: None, no_arguments, keyword_only],
    ids=["lambda", "two", "none", "kw-only"],
)
def test_handlers_of_another_form_are_refused(handler: Callable[..., Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        HTTPThrottle("cb:handler-wrong", rate="1/min", handle_throttled=handler)
    assert "async def handle_throttled(connection, wait_ms: float, throttle, context)" in str(
        info.value
    )
    with pytest.raises(ConfigurationError) as info:
        HTTPThrottle("cb:on-throttled-wrong", rate="1/min", on_throttled=handler)
    assert "async def on_throttled(connection, decision, throttle, context)" in str(info.value)


def test_both_handlers_are_refused() -> None:
    async def handler(*args: Any) -> None: ...

    with pytest.raises(ConfigurationError, match="not both"):
        HTTPThrottle("cb:both", rate="1/min", handle_throttled=handler, on_throttled=handler)


# -- on_error: the 1.x handler's wait is in milliseconds -----------------------------------


class BrokenBackend(InMemoryBackend):
    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        raise ConnectionError("store unreachable")


async def test_a_1x_on_error_handler_over_http() -> None:
    async def logged_fallback_handler(connection: Any, exc_info: Any) -> float:
        assert exc_info["throttle"].uid == "cb:on-error-1x"
        return 1000  # 1.x: "Fail closed: throttle for 1 second"

    throttle = HTTPThrottle(
        "cb:on-error-1x", rate="100/min", backend=BrokenBackend(),
        on_error=logged_fallback_handler,
    )  # fmt: skip
    async with client_of(throttle) as client:
        response = await client.get("/items")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"

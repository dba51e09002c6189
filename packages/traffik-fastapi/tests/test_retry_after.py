"""``Retry-After`` is a whole number >= 1 on every 429, whatever an ``on_error`` handler
returns: "retry at once" would invite the very retry storm a limit exists to stop."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.testclient import TestClient

from traffik import Decision, ErrorContext, HTTPThrottle, InMemoryBackend
from traffik.fastapi import ConnectionThrottled, MiddlewareThrottle, ThrottleMiddleware
from traffik.fastapi.exceptions import retry_after_header, retry_after_seconds

ClientFactory = Callable[..., TestClient]


async def unidentifiable(request: Any) -> str:
    """An identifier that fails at run time: ``on_error`` decides every request."""
    raise LookupError("no session store")


@pytest.mark.parametrize(
    ("wait", "seconds"),
    [
        (0.0, 1), (-5.0, 1), (math.nan, 1), (-math.inf, 1), (1e-9, 1), (0.999, 1), (1.0, 1),
        (1.0001, 2), (59.5, 60), (1e300, 10**15), (math.inf, None),
    ],
)  # fmt: skip
def test_a_refusal_is_told_at_least_one_whole_second(wait: float, seconds: int | None) -> None:
    assert retry_after_seconds(wait) == seconds
    assert retry_after_header(wait) == (None if seconds is None else str(seconds))
    exc = ConnectionThrottled(wait)
    assert (exc.headers or {}).get("Retry-After") == (None if seconds is None else str(seconds))


def handler_returning(result: float | Decision) -> Callable[[ErrorContext], Any]:
    async def on_error(context: ErrorContext) -> float | Decision:
        return result

    return on_error


REFUSALS = [
    Decision(False, 5, 0, 0.0, 0.0),
    Decision(False, 5, 0, 0.0, -3.0),
    Decision(False, 5, 0, 0.0, math.nan),
    Decision(False, 0, 0, 0.0, 0.0),  # no limit named
    1e-9,
    math.nan,
]


@pytest.mark.parametrize("result", REFUSALS)
@pytest.mark.parametrize("way", ["depends", "middleware"])
def test_every_429_says_to_wait_at_least_a_second(
    way: str, result: float | Decision, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle(
        f"down-{way}",
        rate="5/min",
        backend=InMemoryBackend("down"),
        identifier=unidentifiable,
        on_error=handler_returning(result),
    )
    app = FastAPI()
    if way == "depends":
        app.get("/items", dependencies=[Depends(throttle)])(items)
        served: Any = app
    else:
        app.get("/items")(items)
        served = ThrottleMiddleware(app, [MiddlewareThrottle(throttle, "/items")])
    response = client_for(served).get("/items")
    assert response.status_code == 429
    assert response.headers.get_list("retry-after") == ["1"]
    assert "Retry in 1 second." in response.text


async def items() -> dict[str, bool]:
    return {"ok": True}

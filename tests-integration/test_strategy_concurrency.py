"""5,000 simultaneous requests through `HTTPThrottle` at "100/hour": exactly 100 pass.

The requests are real Starlette requests awaited on the throttle (what the FastAPI
dependency does), all started at once with `asyncio.gather`, on every backend kind.
The clock stands mid-hour, so no window boundary can fall among them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request

from traffik import (
    FixedWindow,
    LeakyBucket,
    ManualClock,
    SlidingWindowCounter,
    SlidingWindowLog,
    Strategy,
    TokenBucket,
)
from traffik.fastapi import ConnectionThrottled, HTTPThrottle

REQUESTS = 5_000
MID_HOUR = 1_800_000_000.0 - 1_800_000_000.0 % 3600 + 1800


def request_from(client: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/items",
        "raw_path": b"/items",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "client": (client, 40000),
        "server": ("testserver", 80),
        "scheme": "http",
        "http_version": "1.1",
    }
    return Request(scope)


@pytest.mark.parametrize(
    "strategy",
    [FixedWindow(), SlidingWindowLog(), SlidingWindowCounter(), TokenBucket(), LeakyBucket()],
    ids=lambda strategy: strategy.name,
)
async def test_five_thousand_simultaneous_requests_admit_exactly_the_limit(
    strategy: Strategy[Any], make_backend: Any
) -> None:
    backend = await make_backend(ManualClock(MID_HOUR))
    throttle = HTTPThrottle(
        f"burst-{strategy.name}", rate="100/hour", strategy=strategy, backend=backend
    )

    async def one() -> bool:
        try:
            await throttle(request_from("203.0.113.9"))
        except ConnectionThrottled:
            return False
        return True

    outcomes = await asyncio.gather(*(one() for _ in range(REQUESTS)))
    assert outcomes.count(True) == 100
    # Another client has a budget of its own.
    assert await one_more(throttle, "203.0.113.10")


async def one_more(throttle: HTTPThrottle, client: str) -> bool:
    decision = await throttle.decide(request_from(client))
    return decision.allowed

"""Refusals answered locally (`traffik.refusals`), on every backend kind.

A key over its limit is refused without a backend call until its retry time, and then
the backend decides again; the same script of hits, waits, refunds and resets gives the
same decisions with the cache and without it; an HTTP client over its limit keeps getting
its 429 (with ``Retry-After`` counting down) without the backend being asked.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from backend_kinds import BackendMaker
from starlette.requests import Request
from starlette.responses import Response

from traffik import (
    ConnectionThrottled,
    Decision,
    HTTPThrottle,
    Limiter,
    ManualClock,
    QuotaWithRollover,
    ThrottleBackend,
)
from traffik.strategies import FixedWindow, Strategy

START = 1_700_000_000.0  # 20 s into a minute


def count_calls(backend: ThrottleBackend) -> list[int]:
    """Count the backend's ``apply`` calls (a wrapper on this instance only)."""
    calls = [0]
    apply = backend.apply

    async def counting(*args: Any) -> Decision:
        calls[0] += 1
        return await apply(*args)

    backend.apply = counting  # type: ignore[method-assign,assignment]
    return calls


async def test_a_key_over_its_limit_is_refused_locally_until_its_retry_time(
    make_backend: BackendMaker,
) -> None:
    clock = ManualClock(START)
    backend = await make_backend(clock)
    backend.cache_refusals = True
    calls = count_calls(backend)
    limiter = Limiter("cached", rate="5/min", backend=backend)

    assert [(await limiter.decide("alice")).allowed for _ in range(5)] == [True] * 5
    refused = await limiter.decide("alice")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(40.0)
    assert calls[0] == 6

    clock.advance(15.0)
    for _ in range(200):
        again = await limiter.decide("alice")
        assert not again.allowed
    assert calls[0] == 6  # not one round trip for those 200
    assert again.retry_after == pytest.approx(25.0)
    assert again.remaining == refused.remaining == 0

    clock.advance(25.0)  # the window has ended: the backend decides again, and admits
    assert (await limiter.decide("alice")).allowed
    assert calls[0] == 7


Script = list[tuple[str, int]]


def script(seed: int) -> Script:
    """Hits of cost 1-3 from two clients, waits, refunds and resets, at random."""
    chooser = random.Random(seed)
    steps: Script = []
    for _ in range(150):
        roll = chooser.random()
        if roll < 0.75:
            steps.append(("hit", chooser.choice((1, 1, 1, 2, 3))))
        elif roll < 0.9:
            steps.append(("wait", chooser.randint(1, 25_000)))
        elif roll < 0.97:
            steps.append(("refund", 1))
        else:
            steps.append(("reset", 0))
    return steps


async def play(
    steps: Script, clock: ManualClock, limiter: Limiter, other: Limiter
) -> tuple[list[tuple[Decision, Decision]], int]:
    """Run ``steps`` on both limiters; their decisions side by side, and the admissions."""
    decisions: list[tuple[Decision, Decision]] = []
    admitted = 0
    for index, (kind, value) in enumerate(steps):
        client = "alice" if index % 3 else "bob"
        if kind == "hit":
            pair = (
                await limiter.decide(client, cost=value),
                await other.decide(client, cost=value),
            )
            decisions.append(pair)
            admitted += pair[0].allowed
        elif kind == "refund":
            await limiter.refund(client, cost=value)
            await other.refund(client, cost=value)
        elif kind == "reset":
            await limiter.reset(client)
            await other.reset(client)
        else:
            clock.advance(value / 1000)
    return decisions, admitted


@pytest.mark.parametrize("strategy", [FixedWindow(), QuotaWithRollover()], ids=repr)
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_counts_are_the_same_with_and_without_the_cache(
    make_backend: BackendMaker, strategy: Strategy[Any], seed: int
) -> None:
    clock = ManualClock(START)
    cached_backend, plain_backend = await make_backend(clock), await make_backend(clock)
    cached_backend.cache_refusals = True
    cached_calls, plain_calls = count_calls(cached_backend), count_calls(plain_backend)
    cached = Limiter("same", rate="6/min", backend=cached_backend, strategy=strategy)
    plain = Limiter("same", rate="6/min", backend=plain_backend, strategy=strategy)

    decisions, admitted = await play(script(seed), clock, cached, plain)

    for with_cache, without in decisions:
        assert with_cache.allowed == without.allowed
        assert with_cache.remaining == without.remaining
        assert with_cache.retry_after == pytest.approx(without.retry_after, abs=1e-9)
    assert admitted == sum(without.allowed for _, without in decisions)
    assert cached_calls[0] < plain_calls[0]  # some refusals were answered locally


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


async def test_an_http_client_over_its_limit_gets_its_429_without_the_backend(
    make_backend: BackendMaker,
) -> None:
    """What ``Depends(throttle)`` does: the request and FastAPI's sub-response."""
    clock = ManualClock(START)
    backend = await make_backend(clock)
    calls = count_calls(backend)
    throttle = HTTPThrottle("http-cached", rate="2/min", backend=backend, cache_refusals=True)

    for _ in range(2):
        request = request_from("10.0.0.1")
        assert await throttle(request, Response()) is request  # admitted
    refusals: list[ConnectionThrottled] = []
    for _ in range(21):
        with pytest.raises(ConnectionThrottled) as refused:
            await throttle(request_from("10.0.0.1"), Response())
        refusals.append(refused.value)
        clock.advance(1.5)
    first, last = (
        {k.lower(): v for k, v in (r.headers or {}).items()} for r in (refusals[0], refusals[-1])
    )
    assert first["retry-after"] == "40"
    assert last["retry-after"] == "10"
    assert last["ratelimit"] == '"http-cached";r=0;t=10'
    assert calls[0] == 3  # the 20 refusals after the first never reached the backend

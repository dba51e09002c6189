"""The reference implementations some rows are read against: each does the least its
row's work takes, in a few lines of straight code, with none of the checks ours makes
(identity rules, key validation, LRU bounds, the request's record). Not products: they
show what any implementation pays on the machine, so a target stricter than a reference
is out of reach there whatever our code does.

* (a) `one_function_check`: a fixed-window check with ``apply``'s arguments and result.
* (b) `hand_written`: a dependency counting in a dict, sending the five headers ours sends.
* (c) `HandWrittenMiddleware`: the same as an ASGI middleware.
* (i) `hand_written_app`: those two under uvicorn, and the dependency's Redis twin.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import Depends, FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from benchmarks.contenders import PLENTY
from traffik.decision import Decision, new_decision
from traffik.rates import Rate
from traffik.strategies import Params

__all__ = [
    "HandWrittenMiddleware",
    "hand_block",
    "hand_written",
    "hand_written_app",
    "one_function_check",
]


_reference_entries: dict[str, tuple[tuple[int, int], int]] = {}


async def one_function_check(
    key: str, strategy: Any, rate: Rate, cost: int, params: Params
) -> Decision:
    """(a): reads the clock (truncated: cheaper than rounding), reads the key's window and
    count, decides, stores them with an expiry and returns a `Decision`. No strategy
    call, no LRU order, no eviction, no shared expiries, no validation."""
    now = math.floor(time.time() * 1000)
    period = rate.period_ms
    window = now // period
    entry = _reference_entries.get(key)
    if entry is not None and entry[1] > now and entry[0][0] == window:
        used = entry[0][1] + cost
    else:
        used = cost
    reset_ms = (window + 1) * period - now
    limit = rate.limit
    if used > limit:
        left = max(limit - used + cost, 0)
        return new_decision(Decision, (False, limit, left, reset_ms / 1000, reset_ms / 1000, 0.0))
    _reference_entries[key] = ((window, used), now + reset_ms)
    return new_decision(Decision, (True, limit, limit - used, reset_ms / 1000, 0.0, 0.0))


_hand_counts: dict[str, tuple[int, int]] = {}
_HAND_POLICY: Final = (b"ratelimit-policy", b'"hand";q=1000000000;w=3600')
_HAND_LIMIT: Final = (b"x-ratelimit-limit", b"1000000000")


async def hand_written(request: Request, response: Response) -> None:
    """(b): counts a client's requests in a fixed window and sends the five headers ours
    sends. No identity rules, no validation, no refusal, nothing recorded on the request."""
    scope = request.scope
    key = f"hand:{{{scope['client'][0]}}}:{scope['method']}:/items:fixed_window"
    response.raw_headers.extend(hand_block(*_hand_count(key)))


def _hand_count(key: str) -> tuple[int, int]:
    """Count one request on ``key`` in its hourly window: the units used in it, and the
    milliseconds left in it."""
    now = round(time.time() * 1000)
    window = now // 3_600_000
    state = _hand_counts.get(key)
    used = state[1] + 1 if state is not None and state[0] == window else 1
    _hand_counts[key] = (window, used)
    return used, (window + 1) * 3_600_000 - now


def hand_block(used: int, reset_ms: int) -> list[tuple[bytes, bytes]]:
    """The five headers of the hand-written references, for ``used`` units of `PLENTY`
    with ``reset_ms`` left in the window."""
    remaining = b"%d" % (PLENTY.limit - used)
    reset = b"%d" % math.ceil(reset_ms / 1000)
    return [
        _HAND_POLICY,
        (b"ratelimit", b'"hand";r=' + remaining + b";t=" + reset),
        _HAND_LIMIT,
        (b"x-ratelimit-remaining", remaining),
        (b"x-ratelimit-reset", reset),
    ]


class HandWrittenMiddleware:
    """(c): counts a client's requests to ``/items`` in a fixed window and adds the five
    headers ours sends to the response. No rules, no validation, no refusal, nothing
    recorded on the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/items"):
            await self.app(scope, receive, send)
            return
        key = f"hand-mw:{{{scope['client'][0]}}}:{scope['method']}:/items:fixed_window"
        block = hand_block(*_hand_count(key))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *block]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def hand_written_app(name: str, redis_url: str | None) -> FastAPI:
    """(i)'s reference app ``name``: (b)'s dependency ("hand-memory"), (c)'s middleware
    ("hand-middleware-memory"), or the dependency's Redis twin ("hand-redis"), which
    counts with one ``INCR`` per request (and a ``PEXPIRE`` when a window's key is new)
    on a shared redis.asyncio client: the least a dependency does to count in Redis."""
    if name == "hand-memory":
        app, dependency = FastAPI(), hand_written
    elif name == "hand-middleware-memory":
        app = FastAPI()
        app.add_middleware(HandWrittenMiddleware)

        @app.get("/items")
        async def bare_items() -> dict[str, bool]:
            return {"ok": True}

        return app
    elif name == "hand-redis":
        import redis.asyncio

        assert redis_url, "the Redis apps need a URL"
        client = redis.asyncio.Redis.from_url(redis_url)
        prefix = f"bench-hand-{uuid.uuid4().hex[:8]}"

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            yield
            await client.aclose()

        async def hand_written_redis(request: Request, response: Response) -> None:
            now = round(time.time() * 1000)
            window = now // 3_600_000
            scope = request.scope
            key = f"{prefix}:{{{scope['client'][0]}}}:{scope['method']}:/items:{window}"
            used = await client.incr(key)
            if used == 1:
                await client.pexpire(key, 3_600_000)
            response.raw_headers.extend(hand_block(used, (window + 1) * 3_600_000 - now))

        app, dependency = FastAPI(lifespan=lifespan), hand_written_redis
    else:
        raise ValueError(f"no app named {name!r}")

    @app.get("/items", dependencies=[Depends(dependency)])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    return app

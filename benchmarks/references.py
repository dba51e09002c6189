"""The reference implementations some rows are read against: each does the least its
row's work takes, in a few lines of straight code, with none of the checks ours makes
(identity rules, key validation, LRU bounds, the request's record). Not products: they
show what any implementation pays on the machine, so a target stricter than a reference
is out of reach there whatever our code does.

* (a) `one_function_check`: a fixed-window check with ``apply``'s arguments and result.
* (b) `hand_written`: a dependency counting in a dict, sending the five headers ours sends.
* (c) `HandWrittenMiddleware`: the same as an ASGI middleware.
* (b), (c) `hand_written_on_ours`, ``HandWrittenMiddleware(app, store)``: the same two on the
  parts no throttle of ours can do without: the request's record (`RequestLedger`, which
  all-or-nothing across a route's throttles, the middleware's headers and `is_throttled`
  read) and the in-memory store (`InMemoryBackend.apply` with `FixedWindow`: bounded, LRU,
  the strategy a pure decision). A target below one of these is out of reach of any
  throttle built on them.
* (i) `hand_written_app`: those two under uvicorn, and the dependency's Redis twin.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import Depends, FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from benchmarks.contenders import PLENTY
from traffik.backends.inmemory import InMemoryBackend
from traffik.decision import Decision, new_decision
from traffik.fastapi.ledger import LEDGER_KEY, RequestLedger
from traffik.rates import Rate
from traffik.strategies import NO_PARAMS, FixedWindow, Params

__all__ = [
    "HandWrittenMiddleware",
    "hand_block",
    "hand_written",
    "hand_written_app",
    "hand_written_on_ours",
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
    response.raw_headers.extend(hand_block(*_hand_count(_hand_key("hand", request.scope))))


def _hand_key(prefix: str, scope: Scope) -> str:
    """The key the hand-written references count a request to ``/items`` on."""
    return f"{prefix}:{{{scope['client'][0]}}}:{scope['method']}:/items:fixed_window"


def _hand_count(key: str) -> tuple[int, int]:
    """Count one request on ``key`` in its hourly window: the units used in it, and the
    milliseconds left in it."""
    now = round(time.time() * 1000)
    window = now // 3_600_000
    state = _hand_counts.get(key)
    used = state[1] + 1 if state is not None and state[0] == window else 1
    _hand_counts[key] = (window, used)
    return used, (window + 1) * 3_600_000 - now


_FIXED_WINDOW: Final = FixedWindow()


async def _count_on(store: InMemoryBackend, key: str) -> tuple[int, float]:
    """`_hand_count` through our in-memory store: ``apply`` with `FixedWindow`."""
    decision = await store.apply(key, _FIXED_WINDOW, PLENTY, 1, NO_PARAMS)
    return PLENTY.limit - decision.remaining, decision.reset_after * 1000


def hand_written_on_ours(store: InMemoryBackend) -> Callable[[Request, Response], Awaitable[None]]:
    """(b): `hand_written`, recording the request in our `RequestLedger` and counting in
    ``store``. Still no identity rules, no key checks, no refusal path, no header renderer."""

    async def dependency(request: Request, response: Response) -> None:
        scope = request.scope
        scope[LEDGER_KEY] = RequestLedger(planned_decided=True)
        response.raw_headers.extend(hand_block(*await _count_on(store, _hand_key("hand", scope))))

    return dependency


def hand_block(used: int, reset_ms: float) -> list[tuple[bytes, bytes]]:
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
    recorded on the request.

    With a ``store``: records the request in our `RequestLedger` (released at the end, as
    ours does) and counts in ``store`` (see the module docstring)."""

    def __init__(self, app: ASGIApp, store: InMemoryBackend | None = None) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/items"):
            await self.app(scope, receive, send)
            return
        key = _hand_key("hand-mw", scope)
        store = self.store
        if store is None:
            ledger = None
            block = hand_block(*_hand_count(key))
        else:
            ledger = scope[LEDGER_KEY] = RequestLedger(managed=True)
            block = hand_block(*await _count_on(store, key))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *block]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if ledger is not None and ledger.holding():
                await ledger.release()


def hand_written_app(name: str, redis_url: str | None) -> FastAPI:
    """(i)'s reference app ``name``: (b)'s dependency ("hand-memory"), (c)'s middleware
    ("hand-middleware-memory"; on our store and record: "hand-middleware-on-ours-memory"),
    or the dependency's Redis twin ("hand-redis"), which
    counts with one ``INCR`` per request (and a ``PEXPIRE`` when a window's key is new)
    on a shared redis.asyncio client: the least a dependency does to count in Redis."""
    if name == "hand-memory":
        app, dependency = FastAPI(), hand_written
    elif name in ("hand-middleware-memory", "hand-middleware-on-ours-memory"):
        store = None
        if name == "hand-middleware-on-ours-memory":
            store = InMemoryBackend("bench-hand", on_error="raise")
        app = FastAPI() if store is None else FastAPI(lifespan=store.lifespan)
        app.add_middleware(HandWrittenMiddleware, store=store)

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

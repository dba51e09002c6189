"""Every cache a request can grow has a bound, and a flood of client-chosen data stays
within it (with the shipped settings).

The caches, and where each is flooded:

* keys kept by the in-memory backend (``max_keys``), the refusal cache (per backend);
* the route cache of `traffik.fastapi.routes`;
* the middleware's key suffixes per method (`test_methods` floods them with invented
  methods: at most one suffix per registered method, and one for all others);
* a WebSocket connection's identities and message ledger, over many messages;
* parsed rates (a rate function may return client-chosen text), the Redis backend's
  script arguments per rate and its per-key locks;
* memcached's escaped keys and its per-key lanes.

Identifiers (addresses, API keys, users) keep nothing between requests.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, WebSocket
from starlette.testclient import TestClient

from traffik import FixedWindow, InMemoryBackend, Limiter, ManualClock, WebSocketThrottle
from traffik.backends.memcached import MemcachedBackend
from traffik.backends.memcached import keys as memcached_keys
from traffik.backends.redis import RedisBackend
from traffik.backends.redis.native import SpecCache, native_form
from traffik.fastapi import routes
from traffik.fastapi.ledger import LEDGER_KEY
from traffik.rates import Rate, parse_rate
from traffik.refusals import DEFAULT_MAX_KEYS
from traffik.websocket.identity import IDENTITIES_KEY

NOW = 1_700_000_010.0


@dataclass(frozen=True)
class OwnWindow(FixedWindow):
    """A strategy without a native script: decided on Redis's generic (locking) path."""

    name = "own_window"


async def test_the_in_memory_backend_keeps_at_most_max_keys() -> None:
    backend = InMemoryBackend(clock=ManualClock(NOW))
    limiter = Limiter("flood", rate="1/h", backend=backend)
    for client in range(backend.max_keys + 20_000):
        await limiter.decide(f"client-{client}")
    assert len(backend) == backend.max_keys


async def test_the_refusal_cache_keeps_at_most_its_bound() -> None:
    backend = InMemoryBackend(clock=ManualClock(NOW), cache_refusals=True)
    limiter = Limiter("refused", rate="1/h", backend=backend)
    for client in range(DEFAULT_MAX_KEYS * 2):
        await limiter.decide(f"client-{client}")
        assert not (await limiter.decide(f"client-{client}")).allowed
    cache = backend.refusals()
    assert len(cache) == DEFAULT_MAX_KEYS == cache.max_keys


def test_the_route_cache_keeps_at_most_its_bound() -> None:
    @dataclass
    class Route:
        path: str

    kept = [Route(f"/r/{index}") for index in range(routes._MAX_CACHED_ROUTES * 2 + 1)]
    for route in kept:
        assert routes.route_template({"route": route}) == route.path
    assert 0 < len(routes._route_cache) <= routes._MAX_CACHED_ROUTES


def test_a_websocket_connection_keeps_one_identity_and_one_message_ledger() -> None:
    backend = InMemoryBackend(clock=ManualClock(NOW))
    throttle = WebSocketThrottle("ws-flood", rate="100000/min", backend=backend)
    sizes: list[tuple[int, int]] = []
    app = FastAPI(lifespan=backend.lifespan)

    @app.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        for _ in range(500):
            await throttle(websocket, await websocket.receive_text())
            ledger = websocket.scope[LEDGER_KEY]
            sizes.append((len(websocket.scope[IDENTITIES_KEY]), len(ledger.outcomes)))
        await websocket.send_text("done")

    with TestClient(app) as client, client.websocket_connect("/ws") as websocket:
        for index in range(500):
            websocket.send_text(f"message {index}")
        assert websocket.receive_text() == "done"
    assert set(sizes) == {(1, 1)}


async def test_rates_chosen_per_request_are_parsed_into_a_bounded_cache() -> None:
    async def rate_from_the_client(key: str) -> str:
        return f"{len(key)}/min"  # a rate function reading client data

    limiter = Limiter("rates", rate=rate_from_the_client, backend=InMemoryBackend())
    for length in range(1, 3_000):
        await limiter.decide("k" * length)
    info = parse_rate.cache_info()
    assert info.maxsize is not None
    assert info.currsize <= info.maxsize


def test_redis_script_arguments_per_rate_are_bounded() -> None:
    specs = SpecCache()
    strategy = FixedWindow()
    native = native_form(strategy)
    assert native is not None
    for limit in range(1, specs.size * 3):
        specs.spec(native, strategy, Rate(limit=limit, minutes=1), {})
    assert 0 < len(specs._entries) <= specs.size


async def test_redis_per_key_locks_are_dropped_when_free(redis_url: str, namespace: str) -> None:
    backend = RedisBackend(redis_url, namespace=namespace, clock=ManualClock(NOW))
    async with backend:
        limiter = Limiter("locks", rate="1/min", backend=backend, strategy=OwnWindow())
        decisions = await asyncio.gather(*(limiter.decide(f"client-{n}") for n in range(300)))
        assert all(decision.allowed for decision in decisions)
        assert backend._optimistic is not None
        assert backend._optimistic._locks._locks == {}


async def test_memcached_key_caches_and_lanes_are_bounded(
    memcached_url: str, namespace: str
) -> None:
    backend = MemcachedBackend(memcached_url, namespace=namespace, clock=ManualClock(NOW))
    async with backend:
        limiter = Limiter("lanes", rate="1/min", backend=backend)
        for batch in range(4):
            clients = range(batch * 500, (batch + 1) * 500)
            await asyncio.gather(*(limiter.decide(f"client-{n}") for n in clients))
        assert all(server.updater._lanes == {} for server in backend._servers)
    for key in range(40_000):
        memcached_keys.storage_key(namespace, "0a1b2c", f"flood:{{{key}}}:fixed_window")
    info: Any = memcached_keys.storage_key.cache_info()
    assert info.currsize <= info.maxsize

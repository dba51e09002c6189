"""Construction, lifecycle, and the single-key operations of the memcached backend."""

from __future__ import annotations

import logging
import socket
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aiomcache
import pytest

from traffik import ConfigurationError, Limiter, ManualClock, Rate
from traffik.backends.base import APP_STATE_ATTRIBUTE, get_default_backend
from traffik.backends.memcached import MemcachedBackend
from traffik.backends.memcached.envelope import pack
from traffik.backends.memcached.keys import generation_key
from traffik.strategies import FixedWindow, QuotaWithRollover, TokenBucket

if TYPE_CHECKING:
    from conftest import BackendFactory, RawMemcached

RATE = Rate.parse("3/min")
WINDOW = FixedWindow()  # decided by a counter per window (counters.py)
SWAPPED_WINDOW = QuotaWithRollover(max_rollover=0)  # a window decided by compare-and-swap


# -- construction --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "address"),
    [
        ({"url": "memcached://cache.internal"}, ("cache.internal", 11211)),
        ({"url": "memcached://127.0.0.1:22122"}, ("127.0.0.1", 22122)),
        ({"url": "memcached://127.0.0.1:22122/"}, ("127.0.0.1", 22122)),
        ({"url": "memcached://[::1]:11211"}, ("::1", 11211)),
        ({"host": "10.1.2.3", "port": 11212}, ("10.1.2.3", 11212)),
        ({"host": "10.1.2.3"}, ("10.1.2.3", 11211)),
        ({}, ("127.0.0.1", 11211)),
    ],
)
def test_addresses(arguments: dict[str, Any], address: tuple[str, int]) -> None:
    backend = MemcachedBackend(**arguments, namespace="myapp")
    assert (backend.host, backend.port) == address
    assert backend.namespace == "myapp"
    assert backend.distributed


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"url": "redis://127.0.0.1:6379"}, "redis://127.0.0.1:6379"),
        ({"url": "memcached://"}, "memcached://"),
        ({"url": "memcached://host:99999"}, "memcached://host:99999"),
        ({"url": "memcached://host:port"}, "memcached://host:port"),
        ({"url": "memcached://user:secret@host"}, "memcached://user:***@host"),
        ({"url": "memcached://host/0"}, "memcached://host/0"),
        ({"url": "memcached://host?pool=3"}, "memcached://host?***"),
        ({"url": "127.0.0.1:11211"}, "127.0.0.1:11211"),
        ({"url": 11211}, "11211"),
        ({"url": "memcached://h", "host": "h"}, "memcached://h"),
        ({"host": "bad host"}, "bad host"),
        ({"host": "h", "port": 0}, "0"),
        ({"host": "h", "port": "11211"}, "'11211'"),
        ({"pool_size": 0}, "pool_size"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": "1s"}, "'1s'"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"generation_refresh": -1}, "generation_refresh"),
        ({"clock": 1.0}, "clock"),
        ({"namespace": "{app}"}, "{app}"),
        ({"namespace": ""}, "namespace"),
        ({"client": object()}, "client"),
        ({"on_error": "ignore"}, "ignore"),
    ],
)
def test_bad_arguments_fail_at_construction_naming_the_value(
    arguments: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        MemcachedBackend(**arguments)
    assert named in str(info.value)


def test_a_given_client_excludes_an_address() -> None:
    client = aiomcache.Client("127.0.0.1", 11211)
    with pytest.raises(ConfigurationError, match="not both"):
        MemcachedBackend("memcached://127.0.0.1", client=client)


# -- lifecycle -----------------------------------------------------------------------


async def test_lifespan_records_itself_and_closes_its_client(
    memcached_url: str, namespace: str
) -> None:
    backend = MemcachedBackend(memcached_url, namespace=namespace)
    app = SimpleNamespace(state=SimpleNamespace())
    before = get_default_backend()
    async with backend.lifespan(app):
        assert getattr(app.state, APP_STATE_ATTRIBUTE) is backend
        assert get_default_backend() is backend
        assert await backend.ready()
        client = backend._servers[0].client
        assert client is not None
    assert not hasattr(app.state, APP_STATE_ATTRIBUTE)
    assert get_default_backend() is before
    assert backend._servers[0].client is None  # it created the client, so it closed it


async def test_it_closes_only_what_it_created(memcached_url: str, namespace: str) -> None:
    host, port = memcached_url.removeprefix("memcached://").split(":")
    client = aiomcache.Client(host, int(port))
    try:
        async with MemcachedBackend(client=client, namespace=namespace) as backend:
            assert (await backend.apply("k", WINDOW, RATE, 1, {})).allowed
        assert await client.version()  # still open and usable
        async with backend:  # and the backend can be entered again on it
            assert (await backend.apply("k", WINDOW, RATE, 1, {})).remaining == 1
    finally:
        await client.close()


async def test_shutting_down_keeps_the_counters(backends: BackendFactory) -> None:
    first = await backends()
    assert (await first.apply("kept", WINDOW, RATE, 1, {})).remaining == 2
    await first.close()
    second = await backends()
    assert (await second.apply("kept", WINDOW, RATE, 1, {})).remaining == 1


async def test_a_server_that_is_down_does_not_stop_initialisation(namespace: str) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = MemcachedBackend(host="127.0.0.1", port=port, namespace=namespace)
    async with backend:  # starts: connections open on first use
        assert not await backend.ready()


# -- single-key operations -----------------------------------------------------------


async def test_apply_peek_refund_delete(backends: BackendFactory) -> None:
    backend = await backends()
    assert [(await backend.apply("k", WINDOW, RATE, 1, {})).remaining for _ in range(3)] == [
        2,
        1,
        0,
    ]
    refused = await backend.apply("k", WINDOW, RATE, 1, {})
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(50.0)
    assert not (await backend.peek("k", WINDOW, RATE, 1, {})).allowed
    await backend.refund("k", WINDOW, RATE, 2, {})
    assert (await backend.peek("k", WINDOW, RATE, 1, {})).remaining == 1  # 2 left, 1 after
    await backend.delete("k")
    assert (await backend.peek("k", WINDOW, RATE, 1, {})).remaining == 2


async def test_a_throttle_on_memcached(backends: BackendFactory) -> None:
    backend = await backends()
    limiter = Limiter("emails", rate="2/min", backend=backend, strategy=TokenBucket())
    assert [(await limiter.decide("user:1")).allowed for _ in range(3)] == [True, True, False]
    assert (await limiter.decide("user:2")).allowed
    stat = await limiter.stat("user:1")
    assert stat is not None
    assert stat.remaining == 0


async def test_clear_starts_the_namespace_afresh_for_every_process(
    backends: BackendFactory, memcached_url: str, namespace: str
) -> None:
    backend = await backends()
    other_process = await backends(generation_refresh=0)
    other_namespace = await backends(namespace=namespace + "-other")
    for each in (backend, other_namespace):
        for _ in range(3):
            await each.apply("k", WINDOW, RATE, 1, {})
    assert not (await other_process.peek("k", WINDOW, RATE, 1, {})).allowed
    old_key = await backend.storage_key("k")

    await backend.clear()

    assert await backend.storage_key("k") != old_key
    assert (await backend.peek("k", WINDOW, RATE, 1, {})).allowed
    assert (await other_process.peek("k", WINDOW, RATE, 1, {})).allowed
    assert not (await other_namespace.peek("k", WINDOW, RATE, 1, {})).allowed


async def test_a_lost_generation_is_recreated(
    backends: BackendFactory, raw: RawMemcached, namespace: str
) -> None:
    backend = await backends(generation_refresh=0)
    await backend.apply("k", WINDOW, RATE, 1, {})
    raw.delete(generation_key(namespace))  # evicted, or the server restarted
    assert (await backend.apply("k", WINDOW, RATE, 1, {})).remaining == 2  # a new generation
    raw.set(generation_key(namespace), b"not a generation!", 0)
    assert (await backend.apply("k", WINDOW, RATE, 1, {})).remaining == 2
    assert raw.ttl(generation_key(namespace)) == -1  # the one key that never expires


async def test_undecodable_state_is_absent_and_logged_once(
    backends: BackendFactory,
    raw: RawMemcached,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = await backends()
    now_ms = int(clock() * 1000)
    garbage = {
        "not-an-envelope": b"\x00\xff garbage",
        "bad-payload": pack(now_ms, now_ms + 60_000, b"seven,eleven"),
        "bad-deadline": b"%d:soon:" % now_ms + SWAPPED_WINDOW.encode((0, 1, 0)),
    }
    for name, value in garbage.items():
        raw.set(await backend.storage_key(name), value)
    with caplog.at_level(logging.WARNING, logger="traffik"):
        for name in garbage:
            decision = await backend.apply(name, SWAPPED_WINDOW, RATE, 1, {})
            assert decision.allowed
            assert decision.remaining == 2
    warnings = [r for r in caplog.records if "cannot read" in r.getMessage()]
    assert len(warnings) == 1
    assert backend.undecodable_values == len(garbage)
    # The garbage was replaced by real state.
    assert (await backend.apply("bad-payload", SWAPPED_WINDOW, RATE, 1, {})).remaining == 1


# -- clocks --------------------------------------------------------------------------


async def test_a_key_never_goes_back_in_time_whatever_the_skew(
    backends: BackendFactory, clock: ManualClock
) -> None:
    # Two hosts 3 s apart straddle a window boundary. Without a shared timeline the slow
    # one would read the fast one's next-window count as "another window", reset it, and
    # the two would keep resetting each other: every hit admitted. On the key's timeline
    # (the latest writer's time, never earlier) the new window admits its 5, once.
    rate = Rate.parse("5/10s")
    boundary = clock() - clock() % 10 + 10
    slow_clock, fast_clock = ManualClock(boundary - 5), ManualClock(boundary - 2)
    slow = await backends(clock=slow_clock)
    fast = await backends(clock=fast_clock)
    for _ in range(5):
        assert (await slow.apply("skewed", SWAPPED_WINDOW, rate, 1, {})).allowed
    slow_clock.advance(3.0)  # slow: 2 s before the boundary; fast: 1 s after it
    fast_clock.advance(3.0)
    admitted = [
        (await host.apply("skewed", SWAPPED_WINDOW, rate, 1, {})).allowed
        for _ in range(10)
        for host in (fast, slow)
    ]
    assert sum(admitted) == 5
    # The slow host reports on the key's timeline too: the new window's reset time.
    decision = await slow.peek("skewed", SWAPPED_WINDOW, rate, 1, {})
    assert decision.reset_after == pytest.approx(9.0)

"""A server that freezes, dies or comes back: errors within a bounded time, then recovery.

Each test bounds every call with an outer ``asyncio.wait_for`` far above the backend's own
timeout: that asserts "no hang", not a speed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

from traffik import (
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    Limiter,
    ManualClock,
    Rate,
)
from traffik.backends.memcached import MemcachedBackend
from traffik.strategies import FixedWindow

if TYPE_CHECKING:
    from conftest import Server

RATE = Rate.parse("5/min")
WINDOW = FixedWindow()
BOUND = 10.0  # seconds: far above any timeout used here; reaching it means a hang


@pytest.fixture
async def server_and_backend(
    server_factory: Callable[..., Server], namespace: str, clock: ManualClock
) -> AsyncIterator[tuple[Server, MemcachedBackend]]:
    server = server_factory("memcached")
    backend = MemcachedBackend(server.url, namespace=namespace, clock=clock, timeout=0.3)
    async with backend:
        assert (await backend.apply("warm", WINDOW, RATE, 1, {})).allowed
        yield server, backend
        server.resume()  # a paused server would keep close() waiting on nothing


async def bounded(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, BOUND)


async def exact_after_recovery(backend: MemcachedBackend, key: str) -> None:
    """Twelve simultaneous hits at 5/min admit exactly 5: no stale reply, no lost write."""
    decisions = await bounded(
        asyncio.gather(*(backend.apply(key, WINDOW, RATE, 1, {}) for _ in range(12)))
    )
    assert sum(d.allowed for d in decisions) == 5


async def test_a_paused_server_times_out_every_call_then_recovers(
    server_and_backend: tuple[Server, MemcachedBackend],
) -> None:
    server, backend = server_and_backend
    server.pause()
    calls = {
        "apply": lambda: backend.apply("k", WINDOW, RATE, 1, {}),
        "apply_many": lambda: backend.apply_many([("k", WINDOW, RATE, 1, {})]),  # type: ignore[list-item]
        "peek": lambda: backend.peek("k", WINDOW, RATE, 1, {}),
        "refund": lambda: backend.refund("k", WINDOW, RATE, 1, {}),
        "delete": lambda: backend.delete("k"),
        "clear": backend.clear,
    }
    for call in calls.values():
        with pytest.raises(BackendTimeoutError, match=r"gave no answer for 300 ms"):
            await bounded(call())
    many = await bounded(
        asyncio.gather(
            *(backend.apply(f"k{i}", WINDOW, RATE, 1, {}) for i in range(50)),
            return_exceptions=True,
        )
    )
    assert all(isinstance(result, BackendTimeoutError) for result in many)
    assert not await bounded(backend.ready())

    server.resume()
    assert await bounded(backend.ready())
    await exact_after_recovery(backend, "after-pause")


@pytest.mark.parametrize(
    ("policy", "allowed"), [("allow", True), ("throttle", False), ("raise", None)]
)
async def test_a_throttle_applies_on_error_to_a_frozen_server(
    server_and_backend: tuple[Server, MemcachedBackend], policy: str, allowed: bool | None
) -> None:
    server, backend = server_and_backend
    limiter = Limiter("frozen", rate=RATE, backend=backend, on_error=policy)  # type: ignore[arg-type]
    server.pause()
    if allowed is None:
        with pytest.raises(BackendTimeoutError):
            await bounded(limiter.decide("alice"))
    else:
        assert (await bounded(limiter.decide("alice"))).allowed is allowed


async def test_a_killed_server_fails_fast_and_a_restarted_one_is_used_again(
    server_and_backend: tuple[Server, MemcachedBackend],
) -> None:
    server, backend = server_and_backend
    server.pause()
    # Commands in flight when the server dies: their callers time out, their replies never come.
    in_flight = asyncio.gather(
        *(backend.apply(f"in-flight-{i}", WINDOW, RATE, 1, {}) for i in range(20)),
        return_exceptions=True,
    )
    for _ in range(10):  # a few loop iterations: the commands reach the socket
        await asyncio.sleep(0)
    server.stop()
    results = await bounded(in_flight)
    assert all(isinstance(result, BackendError) for result in results)

    with pytest.raises(BackendConnectionError, match="unreachable"):
        await bounded(backend.apply("k", WINDOW, RATE, 1, {}))
    assert not await bounded(backend.ready())

    server.start()  # same port, empty
    assert await bounded(backend.ready())
    await exact_after_recovery(backend, "after-restart")


async def test_a_connection_closed_mid_reply_is_an_error_not_a_frozen_event_loop(
    namespace: str,
) -> None:
    # A server that reads a storage command and dies before replying. Stock aiomcache
    # 0.8 spins forever on the closed connection without yielding (aio-libs/aiomcache#502),
    # so not even a timeout could fire; the backend's client raises instead.
    connections: list[asyncio.StreamWriter] = []

    async def answer_reads_then_vanish(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        connections.append(writer)
        while line := await reader.readline():
            if line.startswith((b"get ", b"gets ")):
                writer.write(b"END\r\n")
                await writer.drain()
                continue
            await reader.readline()  # the data block of add / cas / set
            break
        writer.close()

    server = await asyncio.start_server(answer_reads_then_vanish, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = MemcachedBackend(host="127.0.0.1", port=port, namespace=namespace, timeout=5)
    try:
        with pytest.raises(BackendConnectionError, match="closed the connection"):
            await bounded(backend.apply("k", WINDOW, RATE, 1, {}))
    finally:
        await backend.close()
        server.close()
        for writer in connections:  # the pool's other, idle connections
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await server.wait_closed()


async def test_checks_abandoned_during_a_freeze_send_nothing_when_it_ends(
    server_factory: Callable[..., Server], namespace: str, clock: ManualClock
) -> None:
    # 40 keys checked while the server is frozen: all time out. When it thaws, only the
    # rounds already on the wire (one per connection) complete; the other 36 lanes leave
    # without a command, instead of flooding the recovering server with stale reads.
    server = server_factory("memcached")
    backend = MemcachedBackend(
        server.url, namespace=namespace, clock=clock, timeout=0.2, pool_size=4
    )
    async with backend:
        await backend.apply("warm", WINDOW, RATE, 1, {})
        server.pause()
        results = await bounded(
            asyncio.gather(
                *(backend.apply(f"frozen-{i}", WINDOW, RATE, 1, {}) for i in range(40)),
                return_exceptions=True,
            )
        )
        assert all(isinstance(result, BackendTimeoutError) for result in results)
        server.resume()
        assert (await bounded(backend.apply("thawed", WINDOW, RATE, 1, {}))).allowed
        assert backend.cas_stats.rounds <= 1 + 4 + 1  # warm, those on the wire, thawed


async def test_errors_that_are_not_memcacheds_propagate_unchanged(
    server_and_backend: tuple[Server, MemcachedBackend],
) -> None:
    _, backend = server_and_backend

    class Unreadable(FixedWindow):  # decides, then cannot encode its state: a bug
        def encode(self, state: Any) -> bytes:
            raise ZeroDivisionError("a strategy's bug")

    class Deciding(FixedWindow):
        def decide(self, *args: Any) -> Any:
            raise ZeroDivisionError("a strategy's own error")

    for strategy in (Unreadable(), Deciding()):
        with pytest.raises(ZeroDivisionError):
            await bounded(backend.apply(f"k-{strategy.name}", strategy, RATE, 1, {}))
    assert (await bounded(backend.apply("fine", WINDOW, RATE, 1, {}))).allowed

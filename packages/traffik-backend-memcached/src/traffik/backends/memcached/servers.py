"""One memcached server as the backend sees it: its client, time budget, generation, rounds.

Everything that belongs to one server lives here, so that several servers stay apart: each
has its own connections and time budget (a silent server fails only the calls waiting on
it), its own copy of the namespace's generation (kept on that server, so losing one server
never starts the others' keys afresh), its own compare-and-swap rounds and window counters,
and its own breaker (`ServerBreaker`), which takes it out of the placement while it fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import aiomcache

from traffik.backends.memcached import envelope
from traffik.backends.memcached.connection import MemcachedClient, WatchedClient
from traffik.backends.memcached.counters import WindowCounters
from traffik.backends.memcached.exceptions import ContentionError
from traffik.backends.memcached.expiry import Horizon, ServerClock, exptime
from traffik.backends.memcached.generation import Generation
from traffik.backends.memcached.keys import placement_key, storage_key
from traffik.backends.memcached.ring import Ring
from traffik.backends.memcached.updates import Updater
from traffik.exceptions import BackendConnectionError, BackendError
from traffik.strategies.base import Strategy
from traffik.timeouts import SilenceWatchdog

__all__ = ["Placement", "Server", "ServerBreaker"]

logger = logging.getLogger("traffik.backends.memcached")

T = TypeVar("T")


class ServerBreaker:
    """Takes a server out after ``failures`` failed calls in a row, for ``retry_after``
    seconds; then one call probes it: success puts it back, failure out again."""

    def __init__(
        self,
        failures: int = 3,
        retry_after: float = 10.0,
        *,
        name: str = "memcached",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.retry_after = retry_after
        self.name = name
        self._clock = clock
        self._failed = 0
        self._out_since: float | None = None
        self._probing = False

    @property
    def is_out(self) -> bool:
        return self._out_since is not None

    def allow_execution(self) -> bool:
        if self._out_since is None:
            return True
        if self._probing or self._clock() - self._out_since < self.retry_after:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        if self._out_since is not None:
            if not self._probing:  # a call let through before it went out: not a probe
                return
            logger.warning("memcached at %s answers again: its keys come back to it", self.name)
        self._failed, self._out_since, self._probing = 0, None, False

    def record_failure(self) -> None:
        self._failed += 1
        if self._probing or (self._out_since is None and self._failed >= self.failures):
            if self._out_since is None:
                logger.warning(
                    "memcached at %s failed %d calls in a row: its keys go to the next "
                    "server for %.3g s",
                    self.name,
                    self._failed,
                    self.retry_after,
                )
            self._out_since, self._probing = self._clock(), False

    def record_abandoned(self) -> None:
        if self._probing:
            self.record_failure()


class Server:
    """One memcached server's share of a backend (the updater's `Store` for its keys)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        namespace: str,
        client: aiomcache.Client | None,
        pool_size: int,
        timeout: float,
        max_retries: int,
        generation_refresh: float,
        now_ms: Callable[[], int],
        spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
        breaker: ServerBreaker | None,
    ) -> None:
        self.host, self.port = host, port
        self.namespace = namespace
        self.address = f"{host}:{port}" if client is None else "the given client"
        self.pool_size = pool_size
        self.breaker = breaker
        self.now_ms = now_ms
        self.spawn = spawn
        self.watchdog = SilenceWatchdog(timeout, what=f"memcached at {self.address}")
        self.owns_client = client is None
        self.client: WatchedClient | None = None if client is None else self._watch(client)
        self.updater = Updater(self, max_retries=max_retries, concurrency=pool_size)
        self.generation = Generation(namespace, refresh=generation_refresh, spawn=spawn)
        self.server_clock = ServerClock()
        self.horizon = Horizon(self.server_clock)
        self.counters = WindowCounters(namespace, self.server_clock, spawn)
        self.undecodable_values = 0

    def connected(self) -> WatchedClient:
        if self.client is None:
            # aiomcache's pool never grows past its minimum size: keep them equal.
            client = MemcachedClient(
                self.host, self.port, pool_size=self.pool_size, pool_minsize=self.pool_size
            )
            self.client = self._watch(client)
        return self.client

    async def within(self, awaitable: Awaitable[T]) -> T:
        """Wait for ``awaitable`` under this server's time budget (its silence on the wire)."""
        return await self.watchdog.wait(awaitable)

    async def in_own_task(self, coroutine: Awaitable[T]) -> T:
        """Run commands in a task a caller's cancellation never interrupts (connection.py)."""

        async def run() -> T:
            return await coroutine

        task: asyncio.Task[T] = self.spawn(run())
        return await asyncio.shield(task)

    async def current_generation(self) -> str:
        return await self.generation.current(self.connected())

    async def storage_key(self, key: str) -> bytes:
        return storage_key(self.namespace, await self.current_generation(), key)

    async def close(self, error: BackendConnectionError) -> None:
        self.updater.abort(error)
        self.generation.forget()
        self.counters.forget()
        client, self.client = self.client, None
        if client is not None and self.owns_client:
            await client.client.close()
        elif not self.owns_client:
            self.client = client  # not ours: keep using it if we are entered again

    # -- what the updater needs (`traffik.backends.memcached.updates.Store`) ----------

    async def read(
        self, key: bytes, strategy: Strategy[Any], now: int
    ) -> tuple[Any, int | None, int]:
        value, token = await self.connected().gets(key)
        if value is None:
            return None, None, now
        try:
            stored = envelope.unpack(value)
        except ValueError as exc:
            self._report_undecodable(key, strategy, exc)
            return None, token, now
        now = max(now, stored.written_at)  # time never runs backwards for a key
        if not stored.payload or stored.expires_at <= now:
            return None, token, now
        try:
            return strategy.decode(stored.payload), token, now
        except Exception as exc:  # whatever a strategy's decode raises: never a crash
            self._report_undecodable(key, strategy, exc)
            return None, token, now

    async def write(
        self,
        key: bytes,
        strategy: Strategy[Any],
        state: Any,
        ttl_ms: int,
        token: int | None,
        now: int,
    ) -> bool:
        if state is None:
            value, ttl_ms = envelope.tombstone(now), 1
        else:
            value = envelope.pack(now, now + ttl_ms, strategy.encode(state))
        client = self.connected()
        expires = exptime(ttl_ms, await self.server_clock.now_for(ttl_ms, client))
        if token is None:
            return bool(await client.add(key, value, expires))
        return bool(await client.cas(key, value, token, expires))

    # -- internals -------------------------------------------------------------------

    def _watch(self, client: aiomcache.Client) -> WatchedClient:
        return WatchedClient(
            client, self.watchdog, connections=self.pool_size, address=self.address
        )

    def _report_undecodable(self, key: bytes, strategy: Strategy[Any], exc: Exception) -> None:
        self.undecodable_values += 1
        if self.undecodable_values == 1:
            logger.warning(
                "memcached key %r holds a value strategy %r cannot read (%s: %s); treating it "
                "as absent. Later ones are counted in backend.undecodable_values, not logged.",
                key,
                getattr(strategy, "name", strategy),
                type(exc).__name__,
                exc,
            )


class Placement:
    """Which server each key goes to, and what its breaker hears of each call."""

    def __init__(self, servers: list[Server], ring: Ring | None) -> None:
        self._servers = servers
        self._ring = ring

    def place(self, namespace: str, key: str, *, probe: bool = True) -> Server:
        """The server for ``key``: the one ketama names, or the next one in while it is out.

        With ``probe``, a server due for its probe may be granted this call (whose outcome
        `run` then records); without, servers out stay out (for diagnostics).
        """
        if self._ring is None:
            return self._servers[0]
        servers = self._servers

        def available(index: int) -> bool:
            breaker = servers[index].breaker
            assert breaker is not None
            return breaker.allow_execution() if probe else not breaker.is_out

        index = self._ring.place(placement_key(namespace, key), available)
        if index is None:
            raise BackendConnectionError(
                f"every memcached server ({', '.join(s.address for s in servers)}) is out "
                "after failing; each is probed again within server_retry seconds"
            )
        return servers[index]

    async def run(self, namespace: str, key: str, operation: Callable[[Server], Awaitable[T]]) -> T:
        """Run ``operation`` on ``key``'s server, under its time budget, telling its breaker
        whether the server answered (a `ContentionError` is an answer)."""
        server = self.place(namespace, key)
        breaker = server.breaker
        if breaker is None:
            return await server.within(operation(server))
        try:
            result = await server.within(operation(server))
        except ContentionError:
            breaker.record_success()
            raise
        except BackendError:
            breaker.record_failure()
            raise
        except BaseException:
            breaker.record_abandoned()
            raise
        breaker.record_success()
        return result

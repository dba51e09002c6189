"""The memcached backend: every strategy through one compare-and-swap update.

See the package README for what is exact, what depends on client clocks, and the cost
per hit. In short: decisions on one key are atomic (optimistic compare-and-swap, see
`traffik.backends.memcached.updates`); ``now`` comes from this process's clock, since
memcached has none to offer inside an update; several limits are consumed in order and
refunded when a later one refuses; ``clear()`` moves the namespace to a new generation.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any, TypeVar

import aiomcache

from traffik.backends.base import Hit, ThrottleBackend
from traffik.backends.memcached import envelope
from traffik.backends.memcached.connection import (
    MemcachedClient,
    WatchedClient,
    parse_address,
)
from traffik.backends.memcached.counters import WindowCounters, counted_per_window
from traffik.backends.memcached.expiry import Horizon, ServerClock, exptime
from traffik.backends.memcached.generation import Generation
from traffik.backends.memcached.keys import storage_key, window_key
from traffik.backends.memcached.updates import CasStatistics, Updater
from traffik.clock import Clock, milliseconds, system_clock
from traffik.decision import NOT_LIMITED, Decision
from traffik.error_policy import OnError
from traffik.exceptions import (
    BackendConnectionError,
    BackendError,
    ConfigurationError,
)
from traffik.rates import Rate
from traffik.redaction import safe_repr
from traffik.strategies.base import Params, Strategy
from traffik.timeouts import SilenceWatchdog

__all__ = ["MemcachedBackend"]

logger = logging.getLogger("traffik.backends.memcached")

T = TypeVar("T")


class MemcachedBackend(ThrottleBackend):
    """Shares rate-limit state between processes through memcached.

    ``MemcachedBackend("memcached://127.0.0.1:11211", namespace="myapp")`` or
    ``MemcachedBackend(host="127.0.0.1", port=11211, namespace="myapp")``.

    :param url: ``memcached://host[:port]`` (port 11211 by default).
    :param host: instead of ``url``; ``127.0.0.1`` when neither is given.
    :param port: with ``host``; 11211 by default.
    :param namespace: prefixes every key, so several applications can share a server.
    :param pool_size: the most connections to memcached this backend opens (with
        ``client``: the most commands it sends at once, at most that client's pool size).
    :param client: an ``aiomcache.Client`` to use instead of creating one; it is never
        closed by the backend. A client the backend creates also survives a server that
        dies mid-reply (aio-libs/aiomcache#502), which a plain aiomcache client does not.
    :param clock: where ``now`` comes from (seconds since the epoch). Memcached has no
        clock to offer inside an update, so every process must agree on this one: see the
        README for what skew between hosts does.
    :param timeout: the time budget: seconds a connection to memcached may go without a
        reply to a command written on it (50 ms by default); beyond it the calls waiting
        on memcached fail with `traffik.exceptions.BackendTimeoutError`. Waiting for a
        connection, for a hot key's round or for a busy event loop does not count against
        it; only a server that stops answering.
    :param max_retries: refused compare-and-swap writes one operation may go through
        before it fails with `ContentionError`.
    :param generation_refresh: seconds this process trusts its copy of the namespace's
        generation; another process's ``clear()`` reaches it within that time.
    :param on_error: the default ``on_error`` for throttles using this backend.
    """

    distributed = True

    #: The time budget: seconds of silence from memcached before waiting calls fail.
    DEFAULT_TIMEOUT = 0.4

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        namespace: str = "traffik",
        pool_size: int = 10,
        client: aiomcache.Client | None = None,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 50,
        generation_refresh: float = 1.0,
        on_error: OnError = "allow",
    ) -> None:
        if client is not None:
            if not isinstance(client, aiomcache.Client):
                raise ConfigurationError(
                    f"client must be an aiomcache.Client, got {safe_repr(client)}"
                )
            if url is not None or host is not None or port is not None:
                raise ConfigurationError("Give memcached either client= or url=/host=, not both")
            self.host, self.port = "<client>", 0
        else:
            self.host, self.port = parse_address(url, host, port)
        _check_number("pool_size", pool_size, minimum=1, whole=True)
        _check_number("timeout", timeout, minimum=0, whole=False, inclusive=False)
        _check_number("max_retries", max_retries, minimum=0, whole=True)
        _check_number("generation_refresh", generation_refresh, minimum=0, whole=False)
        if not callable(clock):
            raise ConfigurationError(f"clock must be callable, got {clock!r}")
        super().__init__(namespace, on_error=on_error)
        self.pool_size = pool_size
        self.clock = clock
        self.timeout = float(timeout)
        self._owns_client = client is None
        self._watchdog = SilenceWatchdog(self.timeout, what=f"memcached at {self.address}")
        self._client: WatchedClient | None = None if client is None else self._watch(client)
        self._updater = Updater(self, max_retries=max_retries, concurrency=pool_size)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._generation = Generation(namespace, refresh=generation_refresh, spawn=self.spawn)
        self._server_clock = ServerClock()
        self._horizon = Horizon(self._server_clock)
        self._counters = WindowCounters(namespace, self._server_clock, self.spawn)
        self.undecodable_values = 0
        """How many stored values could not be decoded (treated as absent)."""

    # -- settings and diagnostics ----------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}" if self._owns_client else "the given client"

    @property
    def generation_refresh(self) -> float:
        return self._generation.refresh

    @property
    def max_retries(self) -> int:
        return self._updater.max_retries

    @property
    def cas_stats(self) -> CasStatistics:
        """Counters of compare-and-swap rounds, writes, conflicts and retries."""
        return self._updater.stats

    async def storage_key(
        self, key: str, strategy: Strategy[Any] | None = None, rate: Rate | None = None
    ) -> bytes:
        """The memcached key that holds ``key``'s state right now (for inspection): with a
        strategy counted per window and its rate, the current window's counter."""
        if strategy is None or rate is None or not counted_per_window(strategy, rate):
            return await self._within(self._storage_key(key))
        generation = await self._within(self._generation.current(self._connected()))
        window = self.now_ms() // rate.period_ms
        return window_key(self.namespace, generation, key, rate.period_ms, window)

    # -- decisions -------------------------------------------------------------------

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        return await self._within(self._decide(key, strategy, rate, cost, params))

    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        """Consume the limits in order; when one refuses, refund those already consumed.

        Until the refund lands, another request may see those limits consumed (and be
        refused by them); no request is ever admitted by units that were not there.
        The limits after the refusing one are only peeked, never consumed.
        """
        decisions: list[Decision] = []
        consumed: list[Hit] = []

        async def consume() -> None:
            for hit in hits:
                decision = await self._decide(*hit)
                decisions.append(decision)
                if not decision.allowed:
                    return
                consumed.append(hit)

        try:
            await self._within(consume())
        except BaseException:
            if consumed:  # the request fails; give back what it took, without waiting
                self.spawn(self._refund_all(consumed))
            raise
        if len(consumed) == len(hits):
            return decisions
        await self._refund_all(consumed)
        rest = hits[len(decisions) :]
        peeked = await asyncio.gather(*(self.peek(*hit) for hit in rest), return_exceptions=True)
        # The request is refused already; a limit that could not be peeked changes nothing.
        decisions.extend(d if isinstance(d, Decision) else NOT_LIMITED for d in peeked)
        return decisions

    async def peek(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        async def peek() -> Decision:
            if counted_per_window(strategy, rate):
                generation = await self._generation.current(self._connected())
                counted = self._counters.peek(
                    self._connected(), generation, key, strategy, rate, cost, params, self.now_ms()
                )
                return await self._in_own_task(counted)
            memcached_key = await self._storage_key(key)
            read = self.read(memcached_key, strategy, self.now_ms())
            state, _, now = await self._in_own_task(read)
            return strategy.decide(state, now, rate, cost, params)[1]

        return await self._within(peek())

    async def refund(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> None:
        async def refund() -> None:
            if counted_per_window(strategy, rate):
                generation = await self._generation.current(self._connected())
                counted = self._counters.refund(
                    self._connected(), generation, key, rate, cost, self.now_ms()
                )
                await self._in_own_task(counted)
                return
            memcached_key = await self._storage_key(key)

            def give_back(state: Any, now: int) -> tuple[Any, object, int]:
                new_state, ttl = strategy.refund(state, now, rate, cost, params)
                return new_state, None, ttl

            await self._updater.update(memcached_key, strategy, give_back)

        await self._within(refund())

    async def delete(self, key: str) -> None:
        async def delete() -> None:
            memcached_key = await self._storage_key(key)
            client = self._connected()
            await self._in_own_task(client.delete(memcached_key))
            generation = await self._generation.current(client)
            counters = self._counters.delete(client, generation, key, self.now_ms())
            await self._in_own_task(counters)

        await self._within(delete())

    async def clear(self) -> None:
        """Start the namespace afresh by moving it to a new generation.

        Memcached cannot list keys, so nothing is deleted: every key carries the
        namespace's generation, and the old generation's keys expire on their own. This
        process sees the new generation at once; other processes within
        ``generation_refresh`` seconds.
        """

        async def clear() -> None:
            await self._in_own_task(self._generation.start_afresh(self._connected()))

        await self._within(clear())

    async def _decide(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        await self._horizon.check(strategy, rate, self._connected())
        if counted_per_window(strategy, rate):
            generation = await self._generation.current(self._connected())
            # In the caller's task: the counters' commands are safe to cancel (counters.py).
            return await self._counters.apply(
                self._connected(), generation, key, strategy, rate, cost, params, self.now_ms()
            )
        memcached_key = await self._storage_key(key)

        def decide(state: Any, now: int) -> tuple[Any, object, int]:
            return strategy.decide(state, now, rate, cost, params)

        decision = await self._updater.update(memcached_key, strategy, decide)
        assert isinstance(decision, Decision)
        return decision

    async def _refund_all(self, hits: Sequence[Hit]) -> None:
        for hit in reversed(hits):
            try:
                await self.refund(*hit)
            except BackendError as exc:  # the units stay consumed: under-admission, never over
                logger.warning("Could not refund %r after a refusal: %s", hit.key, exc)

    # -- what the updater needs (`traffik.backends.memcached.updates.Store`) ----------

    def now_ms(self) -> int:
        return milliseconds(self.clock)

    async def read(
        self, key: bytes, strategy: Strategy[Any], now: int
    ) -> tuple[Any, int | None, int]:
        value, token = await self._connected().gets(key)
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
        expires = exptime(ttl_ms, await self._server_clock.now_for(ttl_ms, self._connected()))
        client = self._connected()
        if token is None:
            return bool(await client.add(key, value, expires))
        return bool(await client.cas(key, value, token, expires))

    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coroutine`` in a task of the backend's own (cancelled only by `close`)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._forget_task)
        return task

    # -- lifecycle -------------------------------------------------------------------

    async def initialize(self) -> None:
        """Create the client. Connections open on first use, so a server that is down
        now does not stop an application from starting (calls fail per ``on_error``)."""
        self._connected()

    async def ready(self) -> bool:
        try:
            await self._within(self._in_own_task(self._connected().version()))
        except BackendError:
            return False
        return True

    async def close(self) -> None:
        """Stop pending work and close the client if this backend created it.

        Stored state is left as it is.
        """
        self._updater.abort(BackendConnectionError(f"{self!r} was closed"))
        tasks = list(self._tasks)
        if tasks and not self._owns_client:
            # A command cancelled in flight would leave its reply on a connection of the
            # given client's pool (see connection.py): let them finish, within the timeout.
            await asyncio.wait(tasks, timeout=self.timeout)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._generation.forget()
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.client.close()
        elif not self._owns_client:
            self._client = client  # not ours: keep using it if we are entered again

    # -- internals -------------------------------------------------------------------

    def _connected(self) -> WatchedClient:
        if self._client is None:
            # aiomcache's pool never grows past its minimum size: keep them equal.
            client = MemcachedClient(
                self.host, self.port, pool_size=self.pool_size, pool_minsize=self.pool_size
            )
            self._client = self._watch(client)
        return self._client

    def _watch(self, client: aiomcache.Client) -> WatchedClient:
        return WatchedClient(
            client, self._watchdog, connections=self.pool_size, address=self.address
        )

    async def _within(self, awaitable: Awaitable[T]) -> T:
        """Wait for ``awaitable`` under the time budget: memcached's silence on the wire
        (`traffik.timeouts.SilenceWatchdog`; each command is timed by `WatchedClient`)."""
        return await self._watchdog.wait(awaitable)

    async def _in_own_task(self, coroutine: Awaitable[T]) -> T:
        """Run commands in a task a caller's cancellation never interrupts (see connection.py)."""

        async def run() -> T:
            return await coroutine

        return await asyncio.shield(self.spawn(run()))

    async def _storage_key(self, key: str) -> bytes:
        generation = await self._generation.current(self._connected())
        return storage_key(self.namespace, generation, key)

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

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a caller that gave up leaves no "never retrieved"

    def __repr__(self) -> str:
        return f"MemcachedBackend({self.address!r}, namespace={self.namespace!r})"


def _check_number(
    name: str, value: object, *, minimum: float, whole: bool, inclusive: bool = True
) -> None:
    kinds = (int,) if whole else (int, float)
    ok = (
        not isinstance(value, bool)
        and isinstance(value, kinds)
        and math.isfinite(value)
        and (value >= minimum if inclusive else value > minimum)
    )
    if not ok:
        bound = f">= {minimum}" if inclusive else f"> {minimum}"
        kind = "a whole number" if whole else "a number"
        raise ConfigurationError(f"{name} must be {kind} {bound}, got {value!r}")

"""The memcached backend: window counters by ``incr``, every other strategy by compare-and-swap.

See the package README for what is exact, what depends on client clocks, and the cost
per hit. In short: decisions on one key are atomic — a count per aligned window moved by
``incr`` for the fixed windows (`traffik.backends.memcached.counters`), optimistic
compare-and-swap for the rest (`traffik.backends.memcached.updates`); ``now`` comes from
this process's clock, since memcached has none to offer inside an update; several limits
are consumed in order and refunded when a later one refuses; ``clear()`` moves the
namespace to a new generation. With several servers, each key lives on one of them, placed
by ketama consistent hashing (`traffik.backends.memcached.ring`), and each server has its
own connections, time budget, generation and breaker (`traffik.backends.memcached.servers`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import aiomcache

from traffik.backends.base import Hit, ThrottleBackend
from traffik.backends.memcached.counters import counted_per_window
from traffik.backends.memcached.keys import window_key
from traffik.backends.memcached.ring import Ring
from traffik.backends.memcached.servers import Placement, Server, ServerBreaker
from traffik.backends.memcached.settings import addresses, check_number
from traffik.backends.memcached.updates import CasStatistics
from traffik.clock import Clock, milliseconds, system_clock
from traffik.decision import NOT_LIMITED, Decision
from traffik.error_policy import OnError
from traffik.exceptions import BackendConnectionError, BackendError, ConfigurationError
from traffik.rates import Rate
from traffik.strategies.base import Params, Strategy

__all__ = ["MemcachedBackend"]

logger = logging.getLogger("traffik.backends.memcached")

T = TypeVar("T")


class MemcachedBackend(ThrottleBackend):
    """Shares rate-limit state between processes through one or several memcached servers.

    ``MemcachedBackend("memcached://127.0.0.1:11211", namespace="myapp")``,
    ``MemcachedBackend(host="127.0.0.1", port=11211, namespace="myapp")`` or
    ``MemcachedBackend(servers=["10.0.0.1:11211", "10.0.0.2:11211"], namespace="myapp")``.

    :param url: ``memcached://host[:port]`` (port 11211 by default).
    :param servers: instead of ``url``: several servers (``"host[:port]"`` or URLs); each
        key lives on one, placed by ketama consistent hashing (see the README).
    :param host: instead of ``url``; ``127.0.0.1`` when neither is given.
    :param port: with ``host``; 11211 by default.
    :param namespace: prefixes every key, so several applications can share a server.
    :param pool_size: the most connections to each memcached server this backend opens
        (with ``client``: the most commands it sends at once, at most that client's pool size).
    :param client: an ``aiomcache.Client`` to use instead of creating one; it is never
        closed by the backend. A client the backend creates also survives a server that
        dies mid-reply (aio-libs/aiomcache#502), which a plain aiomcache client does not.
    :param clock: where ``now`` comes from (seconds since the epoch). Memcached has no
        clock to offer inside an update, so every process must agree on this one: see the
        README for what skew between hosts does.
    :param timeout: the time budget: seconds a connection to memcached may go without a
        reply to a command written on it (0.4 s by default); beyond it the calls waiting
        on that server fail with `traffik.exceptions.BackendTimeoutError`. Waiting for a
        connection, for a hot key's round or for a busy event loop does not count against
        it; only a server that stops answering.
    :param max_retries: refused compare-and-swap writes one operation may go through
        before it fails with `ContentionError`.
    :param generation_refresh: seconds this process trusts its copy of the namespace's
        generation; another process's ``clear()`` reaches it within that time.
    :param server_failures: with several servers, the failed calls in a row that take a
        server out: its keys go to the next server on the ring until it is back.
    :param server_retry: seconds a server (of several) stays out before one call probes it.
    :param on_error, persistent: as for every backend (`ThrottleBackend`).
    """

    distributed = True

    #: The time budget: seconds of silence from memcached before waiting calls fail.
    DEFAULT_TIMEOUT = 0.4

    def __init__(
        self,
        url: str | None = None,
        *,
        servers: Sequence[str] | None = None,
        host: str | None = None,
        port: int | None = None,
        namespace: str = "traffik",
        pool_size: int = 10,
        client: aiomcache.Client | None = None,
        clock: Clock = system_clock,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 50,
        generation_refresh: float = 1.0,
        server_failures: int = 3,
        server_retry: float = 10.0,
        on_error: OnError = "allow",
        persistent: bool | None = None,
    ) -> None:
        places = addresses(url, servers, host, port, client)
        check_number("pool_size", pool_size, minimum=1, whole=True)
        check_number("timeout", timeout, minimum=0, whole=False, inclusive=False)
        check_number("max_retries", max_retries, minimum=0, whole=True)
        check_number("generation_refresh", generation_refresh, minimum=0, whole=False)
        check_number("server_failures", server_failures, minimum=1, whole=True)
        check_number("server_retry", server_retry, minimum=0, whole=False, inclusive=False)
        if not callable(clock):
            raise ConfigurationError(f"clock must be callable, got {clock!r}")
        super().__init__(namespace, on_error=on_error, persistent=persistent)
        self.pool_size = pool_size
        self.clock = clock
        self.timeout = float(timeout)
        self._tasks: set[asyncio.Task[Any]] = set()
        several = len(places) > 1
        self._servers = [
            Server(
                server_host,
                server_port,
                namespace=namespace,
                client=client,
                pool_size=pool_size,
                timeout=self.timeout,
                max_retries=max_retries,
                generation_refresh=generation_refresh,
                now_ms=self.now_ms,
                spawn=self.spawn,
                breaker=ServerBreaker(
                    server_failures, server_retry, name=f"{server_host}:{server_port}"
                )
                if several
                else None,
            )
            for server_host, server_port in places
        ]
        self._placement = Placement(self._servers, Ring(places) if several else None)
        self.host, self.port = places[0] if client is None else ("<client>", 0)

    # -- settings and diagnostics ----------------------------------------------------

    @property
    def address(self) -> str:
        return ",".join(server.address for server in self._servers)

    @property
    def servers(self) -> list[str]:
        """Every server's ``host:port``, in the order given."""
        return [server.address for server in self._servers]

    @property
    def generation_refresh(self) -> float:
        return self._servers[0].generation.refresh

    @property
    def max_retries(self) -> int:
        return self._servers[0].updater.max_retries

    @property
    def cas_stats(self) -> CasStatistics:
        """Counters of compare-and-swap rounds, writes, conflicts and retries."""
        if len(self._servers) == 1:
            return self._servers[0].updater.stats
        total = CasStatistics()
        for server in self._servers:
            stats = server.updater.stats
            for field in dataclasses.fields(CasStatistics):
                mine, theirs = getattr(total, field.name), getattr(stats, field.name)
                combined = max if field.name == "max_retries" else int.__add__
                setattr(total, field.name, combined(mine, theirs))
        return total

    @property
    def undecodable_values(self) -> int:
        """How many stored values could not be decoded (treated as absent)."""
        return sum(server.undecodable_values for server in self._servers)

    def server_for(self, key: str) -> str:
        """The ``host:port`` holding ``key`` now (a server taken out moves its keys)."""
        return self._placement.place(self.namespace, key, probe=False).address

    async def storage_key(
        self, key: str, strategy: Strategy[Any] | None = None, rate: Rate | None = None
    ) -> bytes:
        """The memcached key that holds ``key``'s state right now (for inspection): with a
        strategy counted per window and its rate, the current window's counter."""

        async def find(server: Server) -> bytes:
            if strategy is None or rate is None or not counted_per_window(strategy, rate):
                return await server.storage_key(key)
            generation = await server.current_generation()
            window = self.now_ms() // rate.period_ms
            return window_key(self.namespace, generation, key, rate.period_ms, window)

        return await self._placement.run(self.namespace, key, find)

    # -- decisions -------------------------------------------------------------------

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        return await self._apply(Hit(key, strategy, rate, cost, params), None)

    async def _apply(self, hit: Hit, at: int | None) -> Decision:
        """Decide ``hit`` on its server; a window counter counts it in the window ``at``
        (now when None) is in."""
        return await self._placement.run(
            self.namespace, hit.key, lambda s: self._decide(s, hit, at)
        )

    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        """Consume the limits in order; when one refuses, refund those already consumed.

        Until the refund lands, another request may see those limits consumed (and be
        refused by them); no request is ever admitted by units that were not there.
        The limits after the refusing one are only peeked, never consumed.
        """
        decisions: list[Decision] = []
        consumed: list[tuple[Hit, int]] = []  # and when: a window's units go back to it
        try:
            for hit in map(Hit._make, hits):  # (a plain tuple is accepted too)
                at = self.now_ms()
                decision = await self._apply(hit, at)
                decisions.append(decision)
                if not decision.allowed:
                    break
                consumed.append((hit, at))
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
        async def peek(server: Server) -> Decision:
            now = self.now_ms()
            if counted_per_window(strategy, rate):
                generation = await server.current_generation()
                counted = server.counters.peek(
                    server.connected(), generation, key, strategy, rate, cost, params, now
                )
                return await server.in_own_task(counted)
            memcached_key = await server.storage_key(key)
            state, _, now = await server.in_own_task(server.read(memcached_key, strategy, now))
            return strategy.decide(state, now, rate, cost, params)[1]

        return await self._placement.run(self.namespace, key, peek)

    async def refund(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> None:
        await self._refund(Hit(key, strategy, rate, cost, params), self.now_ms())

    async def _refund(self, hit: Hit, at: int) -> None:
        """Give ``hit`` back; a window counter gives it back to the window ``at`` is in."""
        key, strategy, rate, cost, params = hit

        async def refund(server: Server) -> None:
            if counted_per_window(strategy, rate):
                generation = await server.current_generation()
                counted = server.counters.refund(
                    server.connected(), generation, key, rate, cost, at
                )
                await server.in_own_task(counted)
                return
            memcached_key = await server.storage_key(key)

            def give_back(state: Any, now: int) -> tuple[Any, object, int]:
                new_state, ttl = strategy.refund(state, now, rate, cost, params)
                return new_state, None, ttl

            await server.updater.update(memcached_key, strategy, give_back)

        await self._placement.run(self.namespace, key, refund)

    async def delete(self, key: str) -> None:
        async def delete(server: Server) -> None:
            client = server.connected()
            await server.in_own_task(client.delete(await server.storage_key(key)))
            generation = await server.current_generation()
            counters = server.counters.delete(client, generation, key, self.now_ms())
            await server.in_own_task(counters)

        await self._placement.run(self.namespace, key, delete)

    async def clear(self) -> None:
        """Start the namespace afresh by moving it to a new generation, on every server.

        Memcached cannot list keys, so nothing is deleted: every key carries the
        namespace's generation, and the old generation's keys expire on their own. This
        process sees the new generation at once; other processes within
        ``generation_refresh`` seconds. A server that cannot be reached fails the call
        (the others have moved on).
        """

        async def clear(server: Server) -> None:
            start = server.generation.start_afresh(server.connected())
            await server.within(server.in_own_task(start))

        await asyncio.gather(*(clear(server) for server in self._servers))

    async def _decide(self, server: Server, hit: Hit, at: int | None) -> Decision:
        key, strategy, rate, cost, params = hit
        client = server.connected()
        await server.horizon.check(strategy, rate, client)
        if counted_per_window(strategy, rate):
            generation = await server.current_generation()
            # In the caller's task: the counters' commands are safe to cancel (counters.py).
            return await server.counters.apply(
                client, generation, key, strategy, rate, cost, params,
                self.now_ms() if at is None else at,
            )  # fmt: skip
        memcached_key = await server.storage_key(key)

        def decide(state: Any, now: int) -> tuple[Any, object, int]:
            return strategy.decide(state, now, rate, cost, params)

        decision = await server.updater.update(memcached_key, strategy, decide)
        assert isinstance(decision, Decision)
        return decision

    async def _refund_all(self, hits: Sequence[tuple[Hit, int]]) -> None:
        for hit, at in reversed(hits):
            try:
                await self._refund(hit, at)
            except BackendError as exc:  # the units stay consumed: under-admission, never over
                logger.warning("Could not refund %r after a refusal: %s", hit.key, exc)

    def now_ms(self) -> int:
        return milliseconds(self.clock)

    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coroutine`` in a task of the backend's own (cancelled only by `close`)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._forget_task)
        return task

    # -- lifecycle -------------------------------------------------------------------

    async def initialize(self) -> None:
        """Create the clients. Connections open on first use, so a server that is down
        now does not stop an application from starting (calls fail per ``on_error``)."""
        for server in self._servers:
            server.connected()

    async def ready(self) -> bool:
        """Whether memcached answers: with several servers, at least one of them."""

        async def answers(server: Server) -> bool:
            try:
                await server.within(server.in_own_task(server.connected().version()))
            except BackendError:
                return False
            return True

        return any(await asyncio.gather(*(answers(server) for server in self._servers)))

    async def close(self) -> None:
        """Stop pending work and close the clients this backend created.

        Stored state is left as it is.
        """
        error = BackendConnectionError(f"{self!r} was closed")
        for server in self._servers:
            server.updater.abort(error)
        tasks = list(self._tasks)
        if tasks and not self._servers[0].owns_client:
            # A command cancelled in flight would leave its reply on a connection of the
            # given client's pool (see connection.py): let them finish, within the timeout.
            await asyncio.wait(tasks, timeout=self.timeout)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            await server.close(error)

    # -- internals -------------------------------------------------------------------

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a caller that gave up leaves no "never retrieved"

    def __repr__(self) -> str:
        shown = self._servers[0].address if len(self._servers) == 1 else self.servers
        return f"MemcachedBackend({shown!r}, namespace={self.namespace!r})"

"""The one place the backend's commands go out.

Every call — scripts and plain commands alike — gets the same treatment here:

* a **bound on calls in flight** (``max_in_flight``): beyond it, calls wait their turn
  instead of failing, whatever the client's own pool would do;
* a **silence budget** (`traffik.timeouts.SilenceWatchdog`): calls fail with
  `BackendTimeoutError` once a connection has had commands written and unanswered, and
  nothing back, for ``timeout`` seconds. The clock starts at the write: waiting for a
  turn, a connection, a shared round trip or a busy event loop is never Redis's time, so
  a burst of thousands of checks against a healthy server queues and stays exact instead
  of failing open. When Redis goes silent every call waiting at that moment fails at
  once rather than try the same hung server in turn. So a hung Redis holds no request
  much longer than ``timeout`` (about twice it, for a request queued just behind the
  calls that were already on the wire);
* **errors translated** into `BackendTimeoutError`, `BackendConnectionError` or
  `BackendError`, each with ``.cause``, so ``on_error`` can act on them: Redis
  unreachable, silent, or answering with an error. Anything else (invalid input, a bug)
  propagates unchanged;
* **scripts by SHA**: ``EVALSHA``, and ``EVAL`` when the server answers ``NOSCRIPT``
  (after a restart, a failover or ``SCRIPT FLUSH``), which also caches the script again;
* **coalescing** (`coalescing.Coalescer`, on by default): concurrent scripts and commands
  share pipelined round trips on at most two connections, each caller still getting its
  own reply or its own error. The bound above then applies to the calls that do not
  coalesce (``call``), and the liveness budget to each round trip. On a Cluster, scripts
  are coalesced per primary and follow redirects (`cluster_routing.ClusterRouter`);
  plain commands go through the Cluster client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import RedisCluster
from redis.asyncio.connection import ConnectionPool
from redis.crc import key_slot
from redis.exceptions import DataError, NoScriptError, RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from traffik.backends.redis.cluster_routing import ClusterRouter
from traffik.backends.redis.coalescing import PIPELINES, Coalescer
from traffik.backends.redis.connection import RedisClient
from traffik.backends.redis.errors import TRANSLATED, timed_out, translate
from traffik.backends.redis.scripts import Script
from traffik.exceptions import BackendError, BackendTimeoutError
from traffik.timeouts import SilenceWatchdog

__all__ = ["CommandRunner"]

ScriptArgument = str | int | bytes


class CommandRunner:
    """Sends one backend's commands: deadline, bound, translated errors, scripts by SHA.

    ``coalesce`` sends scripts and plain commands through a `Coalescer` (on a Cluster,
    scripts through a `ClusterRouter`: a coalescer per primary).
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        timeout: float,
        max_in_flight: int,
        target: str,
        coalesce: bool = True,
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.target = target
        self._gate = asyncio.Semaphore(max_in_flight)
        self._watchdog = SilenceWatchdog(timeout, what=f"Redis at {target}")
        self._timeouts = 0  # calls that timed out so far: waiters compare before and after
        self._last_timeout: BaseException | None = None
        pool = getattr(client, "connection_pool", None)
        self.coalescer: Coalescer | None = None
        self.router: ClusterRouter | None = None
        if coalesce and isinstance(client, RedisCluster):
            self.router = ClusterRouter(client, target=target, timeout=timeout)
        elif coalesce and isinstance(pool, ConnectionPool):
            self.coalescer = Coalescer(
                pool,
                self._watchdog,
                target=target,
                timeout=timeout,
                pipelines=min(PIPELINES, max_in_flight),
            )

    async def run_script(
        self, script: Script, keys: Sequence[str], args: Sequence[ScriptArgument]
    ) -> Any:
        """Run ``script`` over ``keys`` (all in one Cluster slot) by its SHA."""
        coalescer = self.coalescer
        if coalescer is not None:
            command = ("EVALSHA", script.sha_bytes, len(keys), *keys, *args)
            return await coalescer.run(command, script)
        router = self.router
        if router is not None:
            if not router.started:
                await self.call(router.start)
            command = ("EVALSHA", script.sha_bytes, len(keys), *keys, *args)
            try:
                return await router.run(command, script, key_slot(keys[0].encode()))
            except BackendError:
                raise
            except (RedisError, RedisClusterException) as exc:  # no node for the slot
                raise translate(exc, self.target, self.timeout) from exc
        return await self.call(self._evalsha, script, keys, args)

    async def command(self, *args: Any, **options: Any) -> Any:
        """Run one plain command (``PING``, ``SCAN``, ``UNLINK``, ...).

        A coalesced command's reply is Redis's own (``PING`` answers ``b"PONG"``); the
        client's parsing of it applies only without coalescing, or with ``options``.
        """
        coalescer = self.coalescer
        if coalescer is not None and not options:
            return await coalescer.run(args)
        return await self.call(self.client.execute_command, *args, **options)

    async def close(self) -> None:
        """Stop coalescing: queued calls fail, its connections go back to the pool."""
        if self.coalescer is not None:
            await self.coalescer.close()
        if self.router is not None:
            await self.router.close()

    async def call(
        self, operation: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> Any:
        """Run ``operation`` in turn and within the deadline, translating its errors."""
        timeouts_before = self._timeouts
        async with self._gate:
            if self._timeouts != timeouts_before:
                raise timed_out(self.target, self.timeout, self._last_timeout, waiting=True)
            try:
                return await self._watchdog.call(operation, *args, **kwargs)
            except DataError:  # input redis-py cannot encode: a bug, not Redis's failure
                raise
            except BackendTimeoutError as exc:
                self._timeouts += 1
                self._last_timeout = exc
                raise
            except TRANSLATED as exc:
                if isinstance(exc, (RedisTimeoutError, TimeoutError, asyncio.TimeoutError)):
                    self._timeouts += 1
                    self._last_timeout = exc
                raise translate(exc, self.target, self.timeout) from exc

    async def _evalsha(
        self, script: Script, keys: Sequence[str], args: Sequence[ScriptArgument]
    ) -> Any:
        execute = self.client.execute_command
        try:
            return await execute("EVALSHA", script.sha_bytes, len(keys), *keys, *args)
        except NoScriptError:
            # The server lost its script cache: EVAL runs the script and caches it again.
            return await execute("EVAL", script.source, len(keys), *keys, *args)

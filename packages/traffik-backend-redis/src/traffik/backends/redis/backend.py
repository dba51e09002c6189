"""The Redis backend: every decision in one atomic server-side step, on the server's clock.

Built-in strategies run as Lua scripts called by SHA (`native_path`): one round trip per
check, no locks; concurrent checks share pipelined round trips (`coalescing`). The limits
of one request are decided by one script call, all-or-nothing.
Any other strategy goes through the generic optimistic path (`optimistic`). Time comes
from Redis ``TIME`` unless a ``clock`` is given (tests), so app instances with skewed
clocks agree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.crc import key_slot
from redis.exceptions import RedisError
from traffik.backends.base import Hit, ThrottleBackend
from traffik.backends.redis.connection import ClientSource, validate_number
from traffik.backends.redis.native import NATIVE_STRATEGIES, NativeStrategy, native_form
from traffik.backends.redis.native_path import NativePath
from traffik.backends.redis.optimistic import OptimisticPath
from traffik.backends.redis.runner import CommandRunner
from traffik.backends.redis.scripts import COMPARE_AND_SET, READ_STATES
from traffik.clock import Clock
from traffik.decision import NOT_LIMITED, Decision
from traffik.error_policy import OnError
from traffik.exceptions import BackendError, ConfigurationError
from traffik.keys import storage_prefix
from traffik.rates import Rate
from traffik.strategies.base import Params, Strategy

__all__ = ["RedisBackend"]

_SCAN_BATCH = 500  # keys per SCAN step of clear(): short commands, Redis never blocked long

INJECTED_CLOCK_TTL_PADDING_MS = 600_000
"""Added to every TTL when a clock is injected.

Redis expires keys on its own clock, which an injected clock (a test's ManualClock) does
not move. The padding keeps a state at least as long as the injected clock says it
matters, however slowly that clock advances against real time; a state kept past its
TTL decides exactly as no state (the strategy contract), so keeping it longer is safe.
"""


class RedisBackend(ThrottleBackend):
    """Keeps throttle state in Redis, shared by every process that uses the same namespace.

    :param connection: a URL (``"redis://localhost:6379/0"``, ``rediss://``, ``unix://``;
        with ``cluster=True``, the URL of any Cluster node), a ``redis.asyncio.Redis``, a
        ``redis.asyncio.RedisCluster``, or a ``redis.asyncio.sentinel.Sentinel`` together
        with ``sentinel_service_name``. Clients you pass are used as they are and never
        closed by the backend; clients it creates, it closes.
    :param namespace: prefixes every key (``"<namespace>:<key>"``, with ``:`` and ``%``
        in the namespace escaped), so several applications can share one Redis: no key
        of one namespace is ever a key of another, and `clear` deletes only its own.
    :param cluster: the URL names a Redis Cluster node.
    :param sentinel_service_name: the primary's name, with a Sentinel.
    :param timeout: the time budget: seconds Redis may stay silent while calls wait on it
        (50 ms by default). Beyond it those calls fail with `BackendTimeoutError` and
        ``on_error`` decides what follows. A busy event loop does not count against it.
    :param max_connections: the most connections in use at once; calls beyond them wait
        for their turn.
    :param coalesce: send concurrent calls together, in pipelined round trips on at most
        two connections (True by default; on a Cluster, one per primary, following
        redirects per call). Each call keeps its own reply, error and atomicity; see
        `traffik.backends.redis.coalescing` and `traffik.backends.redis.cluster_routing`.
    :param clock: where ``now`` comes from; None (the default) means the Redis server's
        ``TIME``. Tests inject a `traffik.clock.ManualClock` (keys then live
        `INJECTED_CLOCK_TTL_PADDING_MS` longer, since Redis expires them on its own clock).
    :param on_error: the default ``on_error`` for throttles using this backend.
    :param persistent: traffik 1.x's keyword, as for every backend (`ThrottleBackend`).
    :param max_conflict_retries: how often the generic path decides again when another
        process changed a key in between.
    :param client_kwargs: extra options for a client the backend creates (``password``,
        ``ssl_ca_certs``, ``health_check_interval``, ...).
    """

    distributed = True

    #: The time budget: seconds of silence from Redis before waiting calls fail.
    DEFAULT_TIMEOUT = 0.4

    def __init__(
        self,
        connection: str | Redis | RedisCluster | Sentinel,
        *,
        namespace: str = "traffik",
        cluster: bool = False,
        sentinel_service_name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = 50,
        clock: Clock | None = None,
        on_error: OnError = "allow",
        max_conflict_retries: int = 50,
        client_kwargs: Mapping[str, Any] | None = None,
        coalesce: bool = True,
        persistent: bool | None = None,
    ) -> None:
        self._source = ClientSource.check(
            connection,
            cluster=cluster,
            sentinel_service_name=sentinel_service_name,
            client_kwargs=client_kwargs,
        )
        validate_number(timeout, "timeout", minimum=0, integer=False)
        validate_number(max_connections, "max_connections", minimum=1, integer=True)
        validate_number(max_conflict_retries, "max_conflict_retries", minimum=1, integer=True)
        if clock is not None and not callable(clock):
            raise ConfigurationError(f"RedisBackend clock must be callable or None, got {clock!r}")
        if not isinstance(coalesce, bool):
            raise ConfigurationError(
                f"RedisBackend coalesce must be True or False, got {coalesce!r}"
            )
        super().__init__(namespace, on_error=on_error, persistent=persistent)
        self.timeout = float(timeout)
        self.max_connections = max_connections
        self.max_conflict_retries = max_conflict_retries
        self.clock = clock
        self.coalesce = coalesce
        self._prefix = storage_prefix(namespace)
        self._ttl_padding = 0 if clock is None else INJECTED_CLOCK_TTL_PADDING_MS
        self._runner: CommandRunner | None = None
        self._optimistic: OptimisticPath | None = None
        self._native: NativePath | None = None
        self._started = False

    # -- connections -----------------------------------------------------------------

    @property
    def is_cluster(self) -> bool:
        return self._source.cluster

    def _connect(self) -> CommandRunner:
        """The runner, with its client created on first use (no I/O happens here)."""
        runner = self._runner
        if runner is None:
            client = self._source.open(timeout=self.timeout, max_connections=self.max_connections)
            in_flight = self.max_connections
            pool_size = getattr(getattr(client, "connection_pool", None), "max_connections", None)
            if isinstance(pool_size, int) and pool_size > 0:
                in_flight = min(in_flight, pool_size)  # never more than a given pool holds
            runner = CommandRunner(
                client,
                timeout=self.timeout,
                max_in_flight=in_flight,
                target=self._source.describe,
                coalesce=self.coalesce,
            )
            self._optimistic = OptimisticPath(
                runner, self.clock, self.max_conflict_retries, self._ttl_padding
            )
            self._native = NativePath(runner, self.clock, self._ttl_padding)
            self._runner = runner
        return runner

    async def initialize(self) -> None:
        """Connect, check the server answers and load the scripts. Safe to call twice.

        Raises `BackendConnectionError` (or `BackendTimeoutError`) naming the server when
        it cannot be reached; nothing is left half-open.
        """
        if self._started:
            return
        runner = self._connect()
        try:
            client = runner.client
            if isinstance(client, RedisCluster):
                await runner.call(client.initialize)
            await runner.command("PING")
            singles = {native.script for native in NATIVE_STRATEGIES.values()}
            for script in (*singles, READ_STATES, COMPARE_AND_SET):
                await runner.command("SCRIPT LOAD", script.source)
        except BackendError as exc:
            await self._release()
            raise type(exc)(f"RedisBackend could not start: {exc}", cause=exc.cause) from exc
        self._started = True

    async def close(self) -> None:
        """Close the connections the backend opened. Stored state is never touched."""
        await self._release()

    async def _release(self) -> None:
        runner = self._runner
        self._runner = self._optimistic = self._native = None
        self._started = False
        if runner is None:
            return
        # Closing connections that already broke may complain; shutdown must not.
        with contextlib.suppress(RedisError, OSError):
            await runner.close()
            if self._source.owned:
                await runner.client.aclose()  # type: ignore[attr-defined]

    async def ready(self) -> bool:
        try:
            await self._connect().command("PING")
        except BackendError:
            return False
        return True

    # -- decisions -------------------------------------------------------------------

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        native = native_form(strategy)
        if native is not None and rate.limit > 0:  # the hot path: one key, one script
            return await self._decide_native(native, key, strategy, rate, cost, params, "apply")
        return (await self._run([Hit(key, strategy, rate, cost, params)], "apply"))[0]

    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        """Decide several limits for one request, all-or-nothing, in one script.

        On a Cluster, limits whose keys fall in different hash slots (different client
        identities) cannot share a script: each slot's limits are decided atomically in
        turn, and when one slot refuses, what the slots before it consumed is refunded
        and the rest are only peeked. The outcome is all-or-nothing; a concurrent request
        may briefly see the consumption that is then given back. A sliding log together
        with strategies that have no script is decided the same way (see `_by_path`).
        """
        return await self._run(hits, "apply")

    async def peek(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        native = native_form(strategy)
        if native is not None and rate.limit > 0:
            return await self._decide_native(native, key, strategy, rate, cost, params, "peek")
        return (await self._run([Hit(key, strategy, rate, cost, params)], "peek"))[0]

    async def refund(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> None:
        native = native_form(strategy)
        if native is not None and rate.limit > 0:
            await self._decide_native(native, key, strategy, rate, cost, params, "refund")
            return
        await self._run([Hit(key, strategy, rate, cost, params)], "refund")

    async def delete(self, key: str) -> None:
        await self._connect().command("DEL", self._prefix + key)

    async def clear(self) -> None:
        """Delete every key of this namespace, on every primary of a Cluster.

        Only keys starting with ``<namespace>:`` are touched, never another namespace's
        (``"app:x"``, ``"appx"`` beside ``"app"``): a ``:`` in a namespace is escaped.

        SCAN in batches and UNLINK what each batch finds: many short commands, never one
        long script, so Redis keeps serving other clients meanwhile.
        """
        runner = self._connect()
        client = runner.client
        pattern = _glob_escape(self._prefix) + "*"
        if isinstance(client, RedisCluster):
            await runner.call(client.initialize)
            for node in client.get_primaries():
                await self._clear_node(runner, pattern, node)
        else:
            await self._clear_node(runner, pattern, None)

    async def _clear_node(self, runner: CommandRunner, pattern: str, node: object) -> None:
        target = {} if node is None else {"target_nodes": node}
        cursor: Any = 0
        while True:
            cursor, keys = await runner.command(
                "SCAN", cursor, "MATCH", pattern, "COUNT", _SCAN_BATCH, **target
            )
            if isinstance(cursor, dict):  # a Cluster client answers per node
                cursor = next(iter(cursor.values()))
            if keys:
                slots: dict[int, list[Any]] = {}
                for key in keys:  # UNLINK of several keys must stay within one slot
                    slot = key_slot(key if isinstance(key, bytes) else str(key).encode())
                    slots.setdefault(slot if node is not None else 0, []).append(key)
                for same_slot in slots.values():
                    await runner.command("UNLINK", *same_slot)
            if int(cursor) == 0:
                return

    # -- the decision path -----------------------------------------------------------

    async def _decide_native(
        self,
        native: NativeStrategy,
        key: str,
        strategy: Strategy[Any],
        rate: Rate,
        cost: int,
        params: Params,
        mode: str,
    ) -> Decision:
        """One key in one call of its strategy's script (NOT_LIMITED for a refund)."""
        if self._native is None:
            self._connect()
        assert self._native is not None
        decision = await self._native.decide_one(
            native, self._prefix + key, strategy, rate, cost, params, mode
        )
        return NOT_LIMITED if decision is None else decision

    async def _run(self, hits: Sequence[Hit], mode: str) -> list[Decision]:
        decisions: list[Decision] = [NOT_LIMITED] * len(hits)
        # An unlimited rate has nothing to decide or store.
        live = [index for index, hit in enumerate(hits) if hit[2].limit > 0]
        if not live:
            return decisions
        keys = [self._prefix + hit[0] for hit in hits]
        groups = [part for group in self._slot_groups(live, keys) for part in _by_path(group, hits)]
        if mode == "apply" and len(groups) > 1:
            await self._apply_across_slots(groups, hits, keys, decisions)
            return decisions
        for group in groups:
            await self._decide_group(group, hits, keys, mode, decisions)
        return decisions

    def _slot_groups(self, indices: list[int], keys: list[str]) -> list[list[int]]:
        """The hits by Cluster hash slot (one group when not on a Cluster)."""
        if not self._source.cluster:
            return [indices]
        groups: dict[int, list[int]] = {}
        for index in indices:
            groups.setdefault(key_slot(keys[index].encode()), []).append(index)
        return list(groups.values())

    async def _apply_across_slots(
        self,
        groups: list[list[int]],
        hits: Sequence[Hit],
        keys: list[str],
        decisions: list[Decision],
    ) -> None:
        consumed: list[list[int]] = []
        for position, group in enumerate(groups):
            await self._decide_group(group, hits, keys, "apply", decisions)
            if all(decisions[index].allowed for index in group):
                consumed.append(group)
                continue
            for done in consumed:
                await self._decide_group(done, hits, keys, "refund", decisions)
            for rest in groups[position + 1 :]:
                await self._decide_group(rest, hits, keys, "peek", decisions)
            return

    async def _decide_group(
        self,
        group: list[int],
        hits: Sequence[Hit],
        keys: list[str],
        mode: str,
        decisions: list[Decision],
    ) -> None:
        """Decide the hits of one slot in one atomic step, filling ``decisions`` in place."""
        self._connect()
        group_hits = [hits[index] for index in group]
        group_keys = [keys[index] for index in group]
        natives = [native for hit in group_hits if (native := native_form(hit[1])) is not None]
        if len(natives) == len(group_hits):  # every strategy has a script: one call
            assert self._native is not None
            results = await self._native.decide(group_keys, group_hits, natives, mode)
        else:
            assert self._optimistic is not None
            results = await self._optimistic.decide(group_keys, group_hits, mode)
        for index, decision in zip(group, results, strict=False):
            decisions[index] = decision

    def __repr__(self) -> str:
        return f"RedisBackend({self._source.describe!r}, namespace={self.namespace!r})"


def _by_path(group: list[int], hits: Sequence[Hit]) -> list[list[int]]:
    """The hits of one slot, split when they cannot all take one path.

    A slot's hits are decided in one step: by one script when every strategy has one,
    else by the generic path. A strategy whose state is a Redis structure of its own (the
    sliding log) can only be decided by its script, so a slot mixing it with strategies
    that have none is split in two: the native hits and the others, decided in turn
    (all-or-nothing by refunding, as for limits in different slots).
    """
    natives = [native_form(hits[index][1]) for index in group]
    if None not in natives or not any(native and native.structured for native in natives):
        return [group]
    native = [index for index, form in zip(group, natives, strict=True) if form is not None]
    generic = [index for index, form in zip(group, natives, strict=True) if form is None]
    return [native, generic]


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a SCAN MATCH pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)

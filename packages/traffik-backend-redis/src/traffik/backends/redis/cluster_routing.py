"""Coalescing on a Redis Cluster: one `Coalescer` per primary, each call sent where its slot is.

A Cluster client sends every command as a round trip of its own. Here, the scripts of
concurrent checks are pipelined per primary instead, as on a single server: each node
(``host:port``) has a coalescer of its own, with its own connection (`NODE_PIPELINES`)
and its own silence budget, so a silent node fails only the calls waiting on it. A call
is one script over the keys of one slot (a client's limits share one), so what a check
decides and its all-or-nothing stay as they are. Plain commands (``PING``, ``SCAN``,
``DEL``) go through the Cluster client.

Which node serves a slot comes from the client's slot map (``nodes_manager``), refreshed
when the topology changes. The replies that say it changed are handled per call:

* ``MOVED <slot> <node>``: the slot now lives on that node. The call is sent there, and
  the slot is routed there from now on (until the next refresh of the slot map, which
  this asks for in the background).
* ``ASK <slot> <node>``: the slot is migrating and the key is already (or will be) on
  that node: the call alone is sent there, behind ``ASKING``, on the same connection in
  the same write. The slot map is not changed.
* ``TRYAGAIN`` (keys of a migrating slot split between two nodes) and ``CLUSTERDOWN`` (a
  slot without a primary, during a failover; the slot map is refreshed): the call is sent
  again after a short pause, to the slot's primary as the map then says, for at most the
  time budget (``timeout``) from the first such reply; then it fails with `BackendError`,
  and ``on_error`` decides.

A node answers ``MOVED``, ``ASK`` and ``TRYAGAIN`` before running anything: a script that
got one did not run, so sending it again never counts a request twice. A call is sent
once per redirect, and at most `MAX_REDIRECTS` times in all.

A connection that fails (a primary killed) fails the calls that were on it with
`BackendConnectionError`, as on a single server; the slot map is refreshed then (at
most every `REFRESH_PAUSE` seconds), so that once a replica has been promoted, calls go
to it without anything being restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any, Final

from redis.asyncio import ConnectionPool, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from traffik.backends.redis.coalescing import Call, Coalescer
from traffik.backends.redis.errors import translate
from traffik.backends.redis.scripts import Script
from traffik.exceptions import BackendConnectionError, BackendError
from traffik.timeouts import SilenceWatchdog

__all__ = ["MAX_REDIRECTS", "NODE_PIPELINES", "REFRESH_PAUSE", "ClusterRouter"]

NODE_PIPELINES: Final = 1
"""Round trips in flight at once per node: one.

The round trips of the other nodes already overlap this process's work with the
servers'; a second per node halves every batch. Measured with ``hatch run bench``
(section h, 3 primaries, 50 callers): one per node 2.0x a bare ``INCR``, two 1.1-1.7x,
three 1.5-1.9x.
"""

MAX_REDIRECTS: Final = 16
"""Redirects (``MOVED``, ``ASK``) one call follows before it fails (redis-py's own bound)."""

REFRESH_PAUSE: Final = 0.1
"""Seconds between two refreshes of the slot map that failed connections ask for."""

RETRY_PAUSE: Final = 0.025
"""Seconds before a call answered ``TRYAGAIN`` or ``CLUSTERDOWN`` is sent again."""

_RETRIED: Final = frozenset({"TRYAGAIN", "CLUSTERDOWN"})


def _classify(error: ResponseError) -> tuple[str, str]:
    """``(kind, node)``: ``("MOVED" | "ASK", "host:port")``, ``("TRYAGAIN" | "CLUSTERDOWN",
    "")``, or ``("", "")`` for any other error.

    redis-py's parsers give some of these their own classes, with the first word taken
    off the message (which ones differs between versions); the others keep it.
    """
    words = str(error).split()
    if isinstance(error, (MovedError, AskError)):
        kind = "MOVED" if isinstance(error, MovedError) else "ASK"
        return kind, words[-1] if words else ""
    if isinstance(error, TryAgainError):
        return "TRYAGAIN", ""
    if isinstance(error, ClusterDownError):
        return "CLUSTERDOWN", ""
    if len(words) == 3 and words[0] in ("MOVED", "ASK"):
        return words[0], words[2]
    if words and words[0] in _RETRIED:
        return words[0], ""
    return "", ""


class _Route:
    """Where one call stands: its slot, the redirects it followed, its retry deadline."""

    __slots__ = ("deadline", "redirects", "slot")

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.redirects = 0
        self.deadline = math.inf  # set by the first TRYAGAIN or CLUSTERDOWN


class ClusterRouter:
    """Sends scripts to the primary of their slot, coalesced per primary."""

    def __init__(
        self,
        client: RedisCluster,
        *,
        target: str,
        timeout: float,
        pipelines: int = NODE_PIPELINES,
    ) -> None:
        self.client = client
        self.target = target
        self.timeout = timeout
        self.pipelines = pipelines
        self._nodes: dict[str, Coalescer] = {}  # by "host:port"
        self._by_slot: dict[int, Coalescer] = {}  # the slot map as read so far
        self._moved: dict[int, tuple[str, int]] = {}  # slot -> (node, MOVED number)
        self._moves = 0  # MOVED replies so far
        self._refresh: asyncio.Task[None] | None = None
        self._refreshed_at = -math.inf
        self._started = False  # the client has read the slot map
        self._closed = False
        self._retrying: dict[Call, asyncio.TimerHandle] = {}  # calls waiting to go again

    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> None:
        """Read the slot map, if the client has not yet (before the first call)."""
        await self.client.initialize()
        self._started = True

    async def run(self, command: tuple[Any, ...], script: Script | None, slot: int) -> Any:
        """Send ``command`` (all of whose keys are in ``slot``) to that slot's primary.

        Call `start` first. Raises `BackendError` (or a subclass) for the call's failure
        at Redis, and ``RedisError`` when the slot map has no node for ``slot``.
        """
        node = self._by_slot.get(slot)
        if node is None:
            node = self._by_slot[slot] = self._node(self._address(slot))
        call = node.call(command, script)
        call.route = slot  # a `_Route` once the call meets a redirect
        return await node.send(call)

    def _address(self, slot: int) -> str:
        moved = self._moved.get(slot)
        if moved is not None:
            return moved[0]
        return str(self.client.nodes_manager.get_node_from_slot(slot).name)

    def _route(self, call: Call) -> _Route:
        route = call.route
        if not isinstance(route, _Route):
            route = call.route = _Route(route)
        return route

    def _node(self, address: str) -> Coalescer:
        node = self._nodes.get(address)
        if node is None:
            node = Coalescer(
                self._pool(address),
                SilenceWatchdog(self.timeout, what=f"Redis Cluster node {address}"),
                target=f"{address} (a node of the Cluster at {self.target})",
                timeout=self.timeout,
                pipelines=self.pipelines,
                redirect=self._redirect,
                unreachable=self._unreachable,
                immediate=False,
            )
            self._nodes[address] = node
        return node

    def _pool(self, address: str) -> ConnectionPool:
        """A pool of this router's own for one node, made as the client makes connections.

        Not the client's: a refresh of its slot map may close the connections of the
        nodes it replaces, under the round trips in flight.
        """
        host, _, port = address.rpartition(":")
        template = self.client.get_nodes()[0]
        options = dict(template.connection_kwargs)
        options.update(
            host=host,
            port=int(port),
            # As for the clients the backend creates (connection.ClientSource.open): the
            # silence budget bounds every round trip, and a connection that died idle is
            # replaced once, re-sending only what got no reply.
            socket_timeout=None,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        return ConnectionPool(
            connection_class=template.connection_class,
            max_connections=self.pipelines,
            **options,
        )

    # -- replies that say the topology changed ----------------------------------------

    def _redirect(self, call: Call, error: ResponseError, node: Coalescer) -> bool:
        """Take over ``call`` when ``error`` is a redirect or a retry (True), else False."""
        if not isinstance(call.route, (int, _Route)) or self._closed:
            return False
        kind, address = _classify(error)
        if not kind:
            return False
        route = self._route(call)
        if kind in ("MOVED", "ASK"):
            route.redirects += 1
            if route.redirects > MAX_REDIRECTS:
                return False
            if address.startswith(":"):  # a node that does not know its own address
                address = node.pool.connection_kwargs["host"] + address
            node = self._node(address)
            if kind == "MOVED":
                self._moves += 1
                self._moved[route.slot] = (address, self._moves)
                self._by_slot[route.slot] = node
                self._request_refresh(paced=False)
            call.asking = kind == "ASK"
            node.submit(call)
            return True
        if kind in _RETRIED:
            loop = asyncio.get_running_loop()
            now = loop.time()
            if route.deadline == math.inf:
                route.deadline = now + self.timeout
            if now >= route.deadline:
                message = (
                    f"Redis at {node.target} still answered {kind} after {self.timeout:g}s "
                    f"of retries: {error}"
                )
                failure = BackendError(message, cause=error)
                failure.__cause__ = error
                call.fail(failure)
                return True
            if kind == "CLUSTERDOWN":
                self._request_refresh(paced=True)
            pause = min(RETRY_PAUSE, route.deadline - now)
            self._retrying[call] = loop.call_later(pause, self._retry, call)
            return True
        return False

    def _retry(self, call: Call) -> None:
        del self._retrying[call]
        if call.future.done():  # its caller gave up meanwhile
            return
        route = call.route
        assert isinstance(route, _Route)
        call.asking = False
        node = self._by_slot.get(route.slot)
        if node is None:
            try:
                node = self._by_slot[route.slot] = self._node(self._address(route.slot))
            except (RedisError, RedisClusterException) as exc:  # no primary in the slot map
                call.fail(translate(exc, self.target, self.timeout))
                return
        node.submit(call)

    def _unreachable(self, node: Coalescer) -> None:
        self._request_refresh(paced=True)

    def _request_refresh(self, *, paced: bool) -> None:
        """Refresh the slot map in the background (one refresh at a time)."""
        if self._refresh is not None or self._closed:
            return
        loop = asyncio.get_running_loop()
        if paced and loop.time() - self._refreshed_at < REFRESH_PAUSE:
            return
        self._refresh = loop.create_task(self._refresh_slots())

    async def _refresh_slots(self) -> None:
        moves = self._moves
        try:
            await self.client.nodes_manager.initialize()
        except (RedisError, RedisClusterException, OSError):
            pass  # the cluster is unreachable: calls fail on their own; a later one asks again
        else:
            # What MOVED said before this refresh began, the refreshed map knows.
            self._moved = {slot: moved for slot, moved in self._moved.items() if moved[1] > moves}
            self._by_slot = {}  # read again from the refreshed map, slot by slot
        finally:
            self._refreshed_at = asyncio.get_running_loop().time()
            self._refresh = None

    async def close(self) -> None:
        """Fail what is queued or waiting to be retried; give every connection back."""
        self._closed = True
        retrying, self._retrying = self._retrying, {}
        for call, handle in retrying.items():
            handle.cancel()
            call.fail(BackendConnectionError(f"The backend for Redis at {self.target} was closed"))
        refresh = self._refresh
        if refresh is not None:
            refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await refresh
        nodes, self._nodes = self._nodes, {}
        for node in nodes.values():
            await node.close()
            await node.pool.disconnect()

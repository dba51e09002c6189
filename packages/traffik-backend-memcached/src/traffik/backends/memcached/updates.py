"""Atomic updates of one key by optimistic compare-and-swap, coalesced per key.

One *round* on a key: ``gets`` the stored value and its CAS token, run the pending
operations one after another on the state (each sees the state the previous one left),
then write the result once — ``add`` when nothing was stored, ``cas`` with the token
otherwise. When the write is refused, someone else changed the key in between: nothing was
stored, and the round runs again on the fresh value, after a short random pause (bounded
exponential backoff with full jitter). An operation that has been through ``max_retries``
refused writes fails with `ContentionError`.

Operations on one key from one process form a *lane*: while a round is in flight, new
operations wait for the next round and join it. So concurrent requests in one process
never race each other for a key (they share a round), and compare-and-swap conflicts come
only from other processes. A hot key costs one round per batch, not one per request.

Every memcached command runs in the lane's own task, which callers never cancel: a caller
whose deadline passes stops waiting, and its operation, if not yet run, is dropped from
the lane. An operation whose round had already run when its caller gave up may still
have been applied (as with any store that times out after the request was sent). At most
``concurrency`` rounds run at once; a lane waits for a slot before sending anything, so a
lane whose callers all gave up while the server was frozen leaves without a command.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from traffik.backends.memcached.exceptions import ContentionError
from traffik.exceptions import BackendError
from traffik.strategies.base import Strategy

__all__ = ["CasStatistics", "Store", "Transform", "Updater"]

Transform = Callable[[Any, int], tuple[Any, object, int]]
"""``(state, now_ms) -> (new_state, result, ttl_ms)``; the same state object = unchanged."""

BACKOFF_FIRST: Final = 0.001
"""Seconds: the longest pause after a first conflict (it doubles per conflict in a row)."""

BACKOFF_CAP: Final = 0.05
"""Seconds: the longest pause after any conflict."""


class Store(Protocol):
    """What the updater needs from the backend."""

    def now_ms(self) -> int: ...

    async def read(
        self, key: bytes, strategy: Strategy[Any], now: int
    ) -> tuple[Any, int | None, int]:
        """``(state or None, CAS token or None when nothing is stored, now on the key's
        timeline)``: the time to decide at, never earlier than the stored state's."""
        ...

    async def write(
        self,
        key: bytes,
        strategy: Strategy[Any],
        state: Any,
        ttl_ms: int,
        token: int | None,
        now: int,
    ) -> bool:
        """Store ``state`` (None: a tombstone); False when the key changed since ``read``."""
        ...

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]: ...


@dataclass
class CasStatistics:
    """Counters of this backend's compare-and-swap work, since it was created."""

    rounds: int = 0
    """Rounds run: each one ``gets`` and at most one write."""
    writes: int = 0
    """Writes that were stored."""
    conflicts: int = 0
    """Writes refused because the key had changed since it was read."""
    operations: int = 0
    """Operations (checks, refunds) completed by a round."""
    retries: int = 0
    """Summed over completed operations: the refused writes each went through."""
    max_retries: int = 0
    """The most refused writes one completed operation went through."""
    exhausted: int = 0
    """Operations that failed with `ContentionError`."""

    @property
    def mean_retries(self) -> float:
        return self.retries / self.operations if self.operations else 0.0


@dataclass(eq=False)
class _Operation:
    transform: Transform
    future: asyncio.Future[object]
    conflicts: int = 0


@dataclass(eq=False)
class _Lane:
    key: bytes
    strategy: Strategy[Any]
    # Insertion-ordered set: the order operations arrived in, and O(1) removal.
    operations: dict[_Operation, None] = field(default_factory=dict)


def _identity(strategy: Strategy[Any]) -> object:
    """Equal strategies share a lane (``FixedWindow() == FixedWindow()``); an unhashable
    one is told apart by identity (its lane holds it, so the id stays unique)."""
    try:
        hash(strategy)
    except TypeError:
        return id(strategy)
    return strategy


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Updater:
    """Runs the rounds of every key's lane for one backend."""

    def __init__(self, store: Store, *, max_retries: int, concurrency: int) -> None:
        self.store = store
        self.max_retries = max_retries
        self.stats = CasStatistics()
        self._lanes: dict[tuple[bytes, object], _Lane] = {}
        # At most `concurrency` rounds at once (the connection pool's size). Waiting for a
        # slot, unlike waiting for a reply, is safe to abandon: a lane whose callers all
        # gave up meanwhile (a frozen server) leaves without sending anything.
        self._slots = asyncio.Semaphore(concurrency)

    async def update(self, key: bytes, strategy: Strategy[Any], transform: Transform) -> object:
        """Apply ``transform`` to the state at ``key`` atomically; return its result."""
        lane_id = (key, _identity(strategy))
        lane = self._lanes.get(lane_id)
        operation = _Operation(transform, asyncio.get_running_loop().create_future())
        if lane is None:
            lane = self._lanes[lane_id] = _Lane(key, strategy)
            lane.operations[operation] = None
            self.store.spawn(self._drain(lane_id, lane))
        else:
            lane.operations[operation] = None
        try:
            return await operation.future
        finally:
            lane.operations.pop(operation, None)

    def abort(self, error: BackendError) -> None:
        """Fail every waiting operation (the backend is closing)."""
        for lane in self._lanes.values():
            for operation in lane.operations:
                if not operation.future.done():
                    operation.future.set_exception(error)
            lane.operations.clear()
        self._lanes.clear()

    async def _drain(self, lane_id: tuple[bytes, object], lane: _Lane) -> None:
        conflicts_in_a_row = 0
        try:
            while lane.operations:
                batch: list[_Operation] = []
                try:
                    async with self._slots:
                        batch = list(lane.operations)
                        if not batch:
                            break
                        stored = await self._round(lane, batch)
                except Exception as exc:  # memcached's failure (a BackendError), or a bug
                    for operation in batch:
                        self._settle(lane, operation, _Failed(exc))
                    conflicts_in_a_row = 0
                    continue
                if stored:
                    conflicts_in_a_row = 0
                    continue
                self.stats.conflicts += 1
                conflicts_in_a_row += 1
                for operation in batch:
                    operation.conflicts += 1
                    if operation.conflicts > self.max_retries:
                        self.stats.exhausted += 1
                        self._settle(lane, operation, _Failed(
                            ContentionError(lane.key, operation.conflicts)
                        ))  # fmt: skip
                if lane.operations:
                    ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** (conflicts_in_a_row - 1))
                    await asyncio.sleep(random.uniform(0, ceiling))
        finally:
            if self._lanes.get(lane_id) is lane:
                del self._lanes[lane_id]

    async def _round(self, lane: _Lane, batch: list[_Operation]) -> bool:
        """One gets / decide / write round; False when the write was refused."""
        store = self.store
        state, token, now = await store.read(lane.key, lane.strategy, store.now_ms())
        self.stats.rounds += 1
        current, ttl, changed = state, 1, False
        outcomes: list[object] = []
        for operation in batch:
            if operation.future.done():  # its caller gave up before this round
                outcomes.append(None)
                continue
            try:
                new_state, result, new_ttl = operation.transform(current, now)
            except Exception as exc:  # a faulty strategy fails its own request only
                outcomes.append(_Failed(exc))
                continue
            if new_state is not current:
                current, ttl, changed = new_state, new_ttl, True
            outcomes.append(result)
        if changed and (current is not None or token is not None):
            if not await store.write(lane.key, lane.strategy, current, ttl, token, now):
                return False
            self.stats.writes += 1
        for operation, outcome in zip(batch, outcomes, strict=True):
            self._settle(lane, operation, outcome)
        return True

    def _settle(self, lane: _Lane, operation: _Operation, outcome: object) -> None:
        lane.operations.pop(operation, None)
        future = operation.future
        if future.done():
            return
        if isinstance(outcome, _Failed):
            future.set_exception(outcome.error)
            return
        future.set_result(outcome)
        stats = self.stats
        stats.operations += 1
        stats.retries += operation.conflicts
        if operation.conflicts > stats.max_retries:
            stats.max_retries = operation.conflicts

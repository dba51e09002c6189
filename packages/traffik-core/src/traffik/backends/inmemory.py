"""The in-memory backend: one process, no network, bounded memory.

Atomicity comes from asyncio itself: a decision reads, decides and writes without an
``await`` in between, so no other task on the event loop can interleave. Use one backend
per event loop; with several worker processes each keeps its own counters (the limit is
then per process — use Redis or memcached to share it).

Memory stays flat whatever the number of clients: every entry expires when its strategy
says its state no longer matters, and at most ``max_keys`` entries are kept; beyond that
the least recently used is evicted (that client starts afresh, so a too-small
``max_keys`` over-admits rather than under-admits).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from traffik.backends.base import Hit, ThrottleBackend
from traffik.clock import Clock, milliseconds, system_clock
from traffik.decision import Decision
from traffik.error_policy import OnError
from traffik.exceptions import ConfigurationError
from traffik.rates import Rate
from traffik.strategies.base import Params, Strategy

__all__ = ["InMemoryBackend"]

# How many expired entries at the least-recently-used end one insertion sweeps away.
# A small constant keeps each insertion O(1) while expired entries drain steadily.
_SWEEP_PER_INSERT = 2


class InMemoryBackend(ThrottleBackend):
    """Keeps state in a dict in this process.

    :param namespace: a label for this backend (keys are not shared between instances).
    :param max_keys: the most keys kept; the least recently used is evicted beyond it.
    :param clock: where ``now`` comes from (seconds since the epoch); inject a
        `traffik.clock.ManualClock` in tests.
    :param on_error: the default ``on_error`` for throttles using this backend.
    :param cache_refusals: answer lasting refusals without deciding again until their
        retry time (see `traffik.refusals`; exact here, where no other process shares the
        state, but it saves little in memory: it is off by default).
    :param persistent: traffik 1.x's keyword: ``False`` clears this backend's keys when its
        lifespan ends; by default (None) they are kept.
    """

    def __init__(
        self,
        namespace: str = "inmemory",
        *,
        max_keys: int = 100_000,
        clock: Clock = system_clock,
        on_error: OnError = "allow",
        cache_refusals: bool = False,
        persistent: bool | None = None,
    ) -> None:
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ConfigurationError(f"max_keys must be a whole number >= 1, got {max_keys!r}")
        if not callable(clock):
            raise ConfigurationError(f"clock must be callable, got {clock!r}")
        super().__init__(namespace, on_error=on_error, persistent=persistent)
        self.cache_refusals = cache_refusals
        self.max_keys = max_keys
        self.clock = clock
        # key -> (state, expires_at_ms). A plain dict keeps insertion order, so moving a
        # key to the end on each use makes its first key the least recently used one.
        self._entries: dict[str, tuple[Any, int]] = {}
        self.evictions = 0
        # The expiry last stored. Keys whose windows end together (every fixed window of a
        # rate does) share one int object rather than 32 bytes each.
        self._last_expiry = 0

    @property
    def clock(self) -> Clock:
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._clock = clock
        self._system_clock = clock is system_clock

    def _now(self) -> int:
        # `milliseconds(self.clock)`, without two calls on the system clock's hot path.
        if self._system_clock:
            return round(time.time() * 1000)
        return milliseconds(self._clock)

    def __len__(self) -> int:
        return len(self._entries)

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        # The hot path: one clock read, one pop and at most one store.
        now = round(time.time() * 1000) if self._system_clock else milliseconds(self._clock)
        entries = self._entries
        entry = entries.pop(key, None)
        if entry is None:
            state = None
        elif entry[1] <= now:
            state = entry = None  # expired: as if never stored
        else:
            state = entry[0]
        new_state, decision, ttl = strategy.decide(state, now, rate, cost, params)
        if new_state is state:
            if entry is not None:
                entries[key] = entry  # back at the most recently used end
            return decision
        if new_state is None:
            return decision
        expiry = now + ttl
        if expiry == self._last_expiry:
            expiry = self._last_expiry
        else:
            self._last_expiry = expiry
        if entry is None:
            self._insert(key, (new_state, expiry), now)
        else:
            entries[key] = (new_state, expiry)
        return decision

    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        now = self._now()
        # Decide every limit against the state as it would be after the hits before it
        # (the same key may appear twice), writing nothing until all have allowed.
        pending: dict[str, tuple[Any, int]] = {}
        decisions: list[Decision] = []
        refusals: list[tuple[str, Any, int]] = []
        for key, strategy, rate, cost, params in hits:
            state = pending[key][0] if key in pending else self._live_state(key, now)
            new_state, decision, ttl = strategy.decide(state, now, rate, cost, params)
            decisions.append(decision)
            if decision.allowed:
                pending[key] = (new_state, ttl)
            elif new_state is not state and key not in pending:
                # A strategy that records refusals (documented where one does) keeps them.
                refusals.append((key, new_state, ttl))
        if all(decision.allowed for decision in decisions):
            to_write = [(key, state, ttl) for key, (state, ttl) in pending.items()]
        else:
            to_write = refusals
        for key, new_state, ttl in to_write:
            self._entries.pop(key, None)
            if new_state is not None:
                self._insert(key, (new_state, now + ttl), now)
        return decisions

    async def peek(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        now = self._now()
        return strategy.decide(self._live_state(key, now), now, rate, cost, params)[1]

    async def refund(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> None:
        now = self._now()
        state = self._live_state(key, now)
        new_state, ttl = strategy.refund(state, now, rate, cost, params)
        if new_state is state:
            return
        self._entries.pop(key, None)
        if new_state is not None:
            self._insert(key, (new_state, now + ttl), now)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def clear(self) -> None:
        self._entries.clear()

    def _live_state(self, key: str, now: int) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def _insert(self, key: str, entry: tuple[Any, int], now: int) -> None:
        entries = self._entries
        entries[key] = entry
        # Drop expired entries from the least recently used end, then evict while over.
        for _ in range(_SWEEP_PER_INSERT):
            oldest = next(iter(entries))
            if entries[oldest][1] > now or oldest == key:
                break
            del entries[oldest]
        while len(entries) > self.max_keys:
            del entries[next(iter(entries))]
            self.evictions += 1

    def __repr__(self) -> str:
        return f"InMemoryBackend(namespace={self.namespace!r}, max_keys={self.max_keys})"

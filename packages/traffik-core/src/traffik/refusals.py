"""Refusals served locally: a key over its limit is refused in this process, without asking
the backend, until its retry time.

A fixed window refuses a client until the window ends, whatever that client does: a
refusal stores nothing, and nothing but a refund brings units back before then. Asking
the store again before then (a round trip to Redis or memcached) can only get the same
answer. A `RefusalCache` remembers such refusals, per key, and answers them itself.

It is exact where a refusal is guaranteed to last:

* only for strategies that say so (``steady_refusals = True``: `FixedWindow`,
  `QuotaWithRollover`), whose refusals store nothing and keep every field but the times
  (which count down) until ``retry_after``; never for a refusal that waiting cannot end
  (``retry_after`` infinite);
* only for the cost that was refused: a smaller request might fit, and goes to the
  backend;
* only for ``apply``: peeks (stats, headers) and several limits decided together
  (``apply_many``) always ask the backend, and whatever they decide replaces what was
  remembered of their keys; any decision taken through the cache for a key does too;
* a refund, a ``delete`` or a ``clear`` through the backend forgets the keys it touches,
  at once (the backend's own methods do it: every backend class gets it from
  `ThrottleBackend`);
* time is the backend's: a backend with a ``clock`` attribute (in-memory, memcached, or
  Redis with an injected clock) is asked for ``now``, so a refusal ends exactly when the
  backend would admit again. For a backend deciding on a clock of its own (Redis and its
  server's ``TIME``), a monotonic clock read *before* the call is sent starts the wait,
  so a remembered refusal ends no later than the store's.

What it cannot see: units given back in another process (a refund on a shared store)
end the refusal there but not here, so with a distributed backend a client may be refused
here up to ``retry_after`` longer than the store would; and a refused request's
``remaining`` is what it was at the refusal (other processes may have used more since).
That is why the cache is off by default; switch it on per backend
(``backend.cache_refusals = True``, or ``InMemoryBackend(cache_refusals=True)``) or per
throttle (``Throttle(..., cache_refusals=True)``, which overrides the backend's setting
either way).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from traffik.clock import milliseconds
from traffik.decision import Decision, new_decision
from traffik.exceptions import ConfigurationError

if TYPE_CHECKING:
    from traffik.backends.base import Hit, ThrottleBackend

__all__ = [
    "DEFAULT_MAX_KEYS",
    "RefusalCache",
    "apply_hit",
    "cached_refusal",
    "steady_refusals",
]

DEFAULT_MAX_KEYS: Final = 10_000
"""Refusals remembered at most, per backend; the oldest is forgotten beyond it."""

# How many expired refusals at the oldest end one new refusal sweeps away.
_SWEEP_PER_INSERT = 2


def steady_refusals(strategy: object) -> bool:
    """Whether ``strategy``'s refusals last until their retry time (see the module)."""
    return getattr(strategy, "steady_refusals", False) is True


class RefusalCache:
    """The refusals still in force for one backend's keys, in this process.

    :param backend: the backend whose decisions are remembered (its ``clock``, when it
        has one, tells the time).
    :param max_keys: the most refusals kept.

    :ivar served: refusals answered from the cache so far (for tests and metrics).
    """

    __slots__ = ("_backend", "_entries", "epoch", "max_keys", "served")

    def __init__(self, backend: ThrottleBackend, *, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ConfigurationError(
                f"the refusal cache's max_keys must be a whole number >= 1, got {max_keys!r}"
            )
        self._backend = backend
        self.max_keys = max_keys
        # key -> (until_ms, cost, decision, decided_ms, reset_ms)
        self._entries: dict[str, tuple[int, int, Decision, int, int]] = {}
        #: Bumped by every refund, delete and clear: a decision taken before one of them
        #: is not remembered after it.
        self.epoch = 0
        self.served = 0

    def __len__(self) -> int:
        return len(self._entries)

    def now(self) -> int:
        """Milliseconds on the backend's clock, or on a monotonic one (see the module)."""
        clock = getattr(self._backend, "clock", None)
        if clock is None:
            return time.monotonic_ns() // 1_000_000
        return milliseconds(clock)

    def lookup(self, key: str, cost: int) -> Decision | None:
        """The refusal in force for ``cost`` units on ``key``, its times counted down to
        now; None when the backend must decide."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        until, refused_cost, decision, decided, reset_ms = entry
        if refused_cost != cost:
            return None
        now = self.now()
        if now >= until:
            del self._entries[key]
            return None
        self.served += 1
        reset_ms -= now - decided
        return new_decision(
            Decision,
            (
                False,
                decision.limit,
                decision.remaining,
                (reset_ms if reset_ms > 0 else 0) / 1000,
                (until - now) / 1000,
                decision.delay,
            ),
        )

    def record(self, key: str, cost: int, decision: Decision, started: int, epoch: int) -> None:
        """Remember ``decision`` for ``key`` when it is a lasting refusal, else forget the
        key. ``started`` is `now` and ``epoch`` the `epoch` read before the backend was
        asked (a refund since then makes the decision too old to keep)."""
        entries = self._entries
        if decision.allowed or decision.limit <= 0 or epoch != self.epoch:
            entries.pop(key, None)
            return
        retry_after = decision.retry_after
        if not 0 < retry_after < math.inf:
            entries.pop(key, None)
            return
        entries.pop(key, None)  # re-inserted at the newest end
        entries[key] = (
            started + round(retry_after * 1000),
            cost,
            decision,
            started,
            round(decision.reset_after * 1000),
        )
        for _ in range(_SWEEP_PER_INSERT):
            oldest = next(iter(entries))
            if oldest == key or entries[oldest][0] > started:
                break
            del entries[oldest]
        while len(entries) > self.max_keys:
            del entries[next(iter(entries))]

    def forget(self, key: str) -> None:
        """Forget ``key`` (units were given back, or its state deleted)."""
        self.epoch += 1
        self._entries.pop(key, None)

    def forget_keys(self, keys: Sequence[str]) -> None:
        """Forget each of ``keys``."""
        self.epoch += 1
        for key in keys:
            self._entries.pop(key, None)

    def forget_all(self) -> None:
        """Forget every key."""
        self.epoch += 1
        self._entries.clear()

    def __repr__(self) -> str:
        return f"RefusalCache({len(self._entries)} refusals, max_keys={self.max_keys})"


def cached_refusal(cache: RefusalCache, hit: Hit) -> Decision | None:
    """The refusal ``cache`` answers for ``hit`` without the backend, if any."""
    if not steady_refusals(hit.strategy):
        return None
    return cache.lookup(hit.key, hit.cost)


async def apply_hit(cache: RefusalCache, backend: ThrottleBackend, hit: Hit) -> Decision:
    """``backend.apply(*hit)``, answered by ``cache`` while a lasting refusal is in force,
    and remembered by it when it is one."""
    key, strategy, rate, cost, params = hit
    if not steady_refusals(strategy):
        return await backend.apply(key, strategy, rate, cost, params)
    refusal = cache.lookup(key, cost)
    if refusal is not None:
        return refusal
    epoch, started = cache.epoch, cache.now()
    decision = await backend.apply(key, strategy, rate, cost, params)
    cache.record(key, cost, decision, started, epoch)
    return decision

"""Fixed windows in one round trip: a memcached counter per aligned window, moved by ``incr``.

A strategy whose whole state is a count of units in the current clock-aligned window
needs no compare-and-swap: the count can live in memcached as a number. These are
`FixedWindow`, `TieredRate` and `TimeOfDay`, by exact type (a subclass may decide
otherwise, and keeps compare-and-swap like every other strategy). Each window has a key of
its own, ``<storage key>%w<period_ms>.<window>`` (`traffik.backends.memcached.keys`), kept
until the window ends plus memcached's slack (`traffik.backends.memcached.expiry`). A check::

    window = now // P
    n = incr(key, cost)                        # one round trip once the window exists
    not stored: add(key, cost)  -> n = cost    # the window's first check: two
                add refused     -> n = incr(key, cost)   (another process added first)
    decision = strategy.decide((window, n - cost), now, rate, cost, params)
    refused: decr(key, cost)                   # a refusal consumes nothing

``incr`` is atomic on the server, so every caller gets its own ``n``: exactly ``n - cost``
units were counted before its own, and the strategy's decision on them is the decision the
compare-and-swap path reaches on the same clock, field for field. Checks on one counter that
arrive while its ``incr`` is in flight wait, and go together in the next one: one ``incr`` of
their summed costs, then each decided in turn on the count the previous ones left (a refused
one adds nothing for the next), the refused units given back in one ``decr`` — what one
limiter deciding them one by one would do. A burst on a hot key costs a few round trips.

A cost of 0 and `peek` read the count (``get``); `refund` is ``decr`` in the window ``now``
falls in (memcached never goes below 0), as `FixedWindow.refund` gives back within the
current window only.

Between a refusal's ``incr`` and its ``decr``, the count is ``cost`` too high: a check
racing with it may be refused although those units come back a moment later (a transient
under-admission, never an over-admission). With unit costs a check is refused only when
the window is full already, so no check racing with it could have been admitted anyway.

``delete`` must find the counters of a key without knowing its rate: the periods in use
are listed at ``<namespace>:periods`` (appended to the first time a process uses one, and
checked again every `RECHECK_SECONDS`), and ``delete`` removes the current window's
counter of each. Like the generation key, the list never expires: a few bytes per namespace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

from traffik.backends.memcached.connection import WatchedClient
from traffik.backends.memcached.expiry import ServerClock, exptime
from traffik.backends.memcached.keys import periods_key, window_key
from traffik.decision import Decision
from traffik.exceptions import BackendError
from traffik.rates import Rate
from traffik.strategies import FixedWindow, TieredRate, TimeOfDay
from traffik.strategies.base import Params, Strategy

__all__ = ["COUNTED_PER_WINDOW", "RECHECK_SECONDS", "WindowCounters", "counted_per_window"]

logger = logging.getLogger("traffik.backends.memcached")

COUNTED_PER_WINDOW: Final[frozenset[type]] = frozenset({FixedWindow, TieredRate, TimeOfDay})
"""Strategies whose state is ``(window, used)`` and whose every decision admits when
``used + cost`` fits the limit at ``now``, storing ``(window, used + cost)``."""

RECHECK_SECONDS: Final = 60.0
"""How often a process makes sure the periods it uses are still listed (an evicted list
would leave ``delete`` blind to them)."""


def counted_per_window(strategy: Strategy[Any], rate: Rate) -> bool:
    """Whether a check of ``strategy`` at ``rate`` goes through a window counter."""
    return type(strategy) in COUNTED_PER_WINDOW and rate.limit > 0


class WindowCounters:
    """The window counters of one namespace on one server."""

    def __init__(
        self,
        namespace: str,
        server_clock: ServerClock,
        spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
    ) -> None:
        self.namespace = namespace
        self._server_clock = server_clock
        self._spawn = spawn
        self._periods_key = periods_key(namespace)
        self._listed: dict[int, float] = {}  # period -> when this process last made sure
        # Counter -> the checks waiting for the round in flight on it (see `apply`).
        self._queued: dict[bytes, list[_Check]] = {}

    async def apply(
        self,
        client: WatchedClient,
        generation: str,
        key: str,
        strategy: Strategy[Any],
        rate: Rate,
        cost: int,
        params: Params,
        now: int,
    ) -> Decision:
        period = rate.period_ms
        window = now // period
        if cost <= 0:  # nothing to count: what is there decides
            used = await self._count(client, generation, key, period, window)
            return self._decide(strategy, window, used, now, rate, cost, params)
        self._list(client, period)
        counter = window_key(self.namespace, generation, key, period, window)
        check = _Check(strategy, rate, cost, params, now, window)
        queued = self._queued.get(counter)
        if queued is not None:  # a round is in flight on this counter: join the next one
            check.future = asyncio.get_running_loop().create_future()
            queued.append(check)
            return await check.future
        self._queued[counter] = []
        try:  # the first check runs its round itself: one round trip, no task
            (outcome,) = await self._round(client, counter, [check])
        finally:
            waiting = self._queued.pop(counter)
            if waiting:  # arrived meanwhile: one round for them all, in a task of its own
                self._queued[counter] = []
                self._spawn(self._drain(client, counter, waiting))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _drain(self, client: WatchedClient, counter: bytes, batch: list[_Check]) -> None:
        """Run rounds for the checks queued on ``counter`` until none are left."""
        try:
            while batch:
                batch = [check for check in batch if not check.given_up]
                try:
                    outcomes = await self._round(client, counter, batch) if batch else []
                except Exception as exc:  # memcached's failure (a BackendError), or a bug
                    outcomes = [exc] * len(batch)
                for check, outcome in zip(batch, outcomes, strict=True):
                    check.settle(outcome)
                batch = self._queued[counter]
                self._queued[counter] = []
        finally:
            for check in self._queued.pop(counter, ()):
                check.settle(BackendError("memcached counter round stopped"))

    async def _round(
        self, client: WatchedClient, counter: bytes, batch: list[_Check]
    ) -> list[Decision | Exception]:
        """One ``incr`` for the whole batch, then each check decided in turn on the count
        the previous ones left, as one limiter deciding them one by one would; the units of
        the refused ones go back in one ``decr``."""
        total = sum(check.cost for check in batch)
        count = await client.incr(counter, total)  # safe to cancel (see connection.py)
        if count is None:  # the window's first check (or its counter was evicted)
            first = batch[0]
            reset_ms = (first.window + 1) * first.rate.period_ms - first.now
            adding = self._first_in_window(client, counter, total, reset_ms)
            added: int = await asyncio.shield(self._spawn(adding))  # `add`: not safe to cancel
            count = added
        used, refused = count - total, 0
        outcomes: list[Decision | Exception] = []
        for check in batch:
            try:
                decision = self._decide(
                    check.strategy, check.window, used, check.now, check.rate, check.cost,
                    check.params,
                )  # fmt: skip
            except Exception as exc:  # a faulty strategy fails its own check only
                outcomes.append(exc)
                refused += check.cost
                continue
            if decision.allowed:
                used += check.cost
            else:
                refused += check.cost
            outcomes.append(decision)
        if refused:  # in a task of its own: a caller giving up cannot stop it
            await asyncio.shield(self._spawn(self._give_back(client, counter, refused)))
        return outcomes

    async def peek(
        self,
        client: WatchedClient,
        generation: str,
        key: str,
        strategy: Strategy[Any],
        rate: Rate,
        cost: int,
        params: Params,
        now: int,
    ) -> Decision:
        window = now // rate.period_ms
        used = await self._count(client, generation, key, rate.period_ms, window)
        return self._decide(strategy, window, used, now, rate, cost, params)

    async def refund(
        self, client: WatchedClient, generation: str, key: str, rate: Rate, cost: int, now: int
    ) -> None:
        if cost > 0:
            period = rate.period_ms
            await client.decr(
                window_key(self.namespace, generation, key, period, now // period), cost
            )

    async def delete(self, client: WatchedClient, generation: str, key: str, now: int) -> None:
        """Forget ``key``'s current window at every period the namespace counts in."""
        listed = await client.get(self._periods_key)
        periods = set(self._listed) | _parse_periods(listed)
        for period in sorted(periods):
            await client.delete(window_key(self.namespace, generation, key, period, now // period))

    def forget(self) -> None:
        """Make sure again, on next use, that the periods this process uses are listed."""
        self._listed.clear()

    # -- internals -------------------------------------------------------------------

    @staticmethod
    def _decide(
        strategy: Strategy[Any],
        window: int,
        used: int | None,
        now: int,
        rate: Rate,
        cost: int,
        params: Params,
    ) -> Decision:
        state = None if used is None else (window, used)
        return strategy.decide(state, now, rate, cost, params)[1]

    async def _first_in_window(
        self, client: WatchedClient, counter: bytes, cost: int, reset_ms: int
    ) -> int:
        expires = exptime(reset_ms, await self._server_clock.now_for(reset_ms, client))
        if await client.add(counter, b"%d" % cost, expires):
            return cost
        count = await client.incr(counter, cost)  # another process added it first
        if count is None:
            raise BackendError(f"memcached key {counter!r} vanished between add and incr")
        return count

    async def _count(
        self, client: WatchedClient, generation: str, key: str, period: int, window: int
    ) -> int | None:
        value = await client.get(window_key(self.namespace, generation, key, period, window))
        if value is None:
            return None
        try:
            return int(value)  # memcached pads a decremented count with spaces
        except ValueError:
            return None

    async def _give_back(self, client: WatchedClient, counter: bytes, cost: int) -> None:
        try:
            await client.decr(counter, cost)
        except BackendError as exc:  # the units stay counted: under-admission, never over
            logger.warning("Could not give back a refusal's %d units on %r: %s", cost, counter, exc)

    def _list(self, client: WatchedClient, period: int) -> None:
        """Make sure ``period`` is listed, in the background (``delete`` reads the list)."""
        listed_at = self._listed.get(period)
        if listed_at is not None and time.monotonic() - listed_at < RECHECK_SECONDS:
            return
        self._listed[period] = time.monotonic()
        self._spawn(self._ensure_listed(client, period))

    async def _ensure_listed(self, client: WatchedClient, period: int) -> None:
        try:
            for _ in range(3):
                if period in _parse_periods(await client.get(self._periods_key)):
                    return
                if await client.append(self._periods_key, b" %d" % period):
                    return
                if await client.add(self._periods_key, b"%d" % period, 0):  # never expires
                    return
        except BackendError as exc:
            self._listed.pop(period, None)  # try again with the next check
            logger.debug("Could not list period %d ms: %s", period, exc)


class _Check:
    """One check on a window counter, waiting for its round or running it."""

    __slots__ = ("cost", "future", "now", "params", "rate", "strategy", "window")

    def __init__(
        self,
        strategy: Strategy[Any],
        rate: Rate,
        cost: int,
        params: Params,
        now: int,
        window: int,
    ) -> None:
        self.strategy, self.rate, self.cost, self.params = strategy, rate, cost, params
        self.now, self.window = now, window
        self.future: asyncio.Future[Decision] | None = None

    @property
    def given_up(self) -> bool:
        """Its caller stopped waiting before its round: it is left out, never counted."""
        return self.future is not None and self.future.done()

    def settle(self, outcome: Decision | Exception) -> None:
        future = self.future
        if future is None or future.done():
            return
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _parse_periods(value: bytes | None) -> set[int]:
    if not value:
        return set()
    return {int(part) for part in value.split() if part.isdigit()}

"""Quota contexts (traffik 1.x's ``traffik.quotas.QuotaContext``): queue what a block of
work costs, and consume it when the block succeeds.

::

    async with throttle.quota(request) as quota:   # bound to `throttle`
        await quota(cost=10)                       # queued, not consumed
        report = await build_report()              # raises: nothing is consumed
    # the block succeeded: 10 units consumed now

    async with QuotaContext(request) as quota:     # unbound: name each throttle
        await quota(burst, cost=5)
        await quota(daily, cost=5)

Consecutive entries with the same throttle and settings add up into one. ``apply()`` (on
a successful exit by default) decides every entry through `traffik.pipeline.decide`,
all-or-nothing (1.x applied them one by one, keeping what the first consumed when a
later one was refused): one atomic step per backend, given back across backends. On a
refusal the refusing throttles' handlers run (HTTP: 429), or `RateLimitExceeded` is
raised for a throttle without one.

1.x held a backend lock around the block (``lock=``, ``lock_config=``); traffik 2 takes
none and refuses both: the atomic apply keeps a quota from being over-consumed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar

from traffik.decision import Decision
from traffik.exceptions import (
    ConfigurationError,
    QuotaAppliedError,
    QuotaCancelledError,
    QuotaError,
)
from traffik.pipeline import stat
from traffik.quota_entries import (
    ApplyOnError,
    Backoff,
    Entry,
    RetryOn,
    check_context,
    check_entry,
    decide_entries,
    default_backoff,
    refuse,
    would_allow,
)
from traffik.resolution import checked_cost
from traffik.stats import ThrottleStat
from traffik.throttle import Throttle

__all__ = ["ApplyOnError", "Backoff", "QuotaContext", "RetryOn"]

C = TypeVar("C")


class QuotaContext(Generic[C]):
    """Queue throttle hits for ``connection`` and consume them together, later.

    :param connection: the connection (request, WebSocket, key) the hits are for.
    :param context: default context of every entry: merged under each entry's own, and
        given to the refusal handler (``handle_throttled``) on a refusal.
    :param owner: the throttle used when an entry names none (``throttle.quota(...)``).
    :param apply_on_error: when the block raises, apply anyway: False (default), True,
        or an exception type or tuple of types to apply on.
    :param apply_on_exit: apply on a successful exit (default); False: only ``apply()``.
    :param lock: (and ``lock_config``) traffik 1.x's lock around the block: None and
        False (no lock) are accepted, anything else refused: traffik 2 takes no locks.
    :param parent: the context this one merges into (see `nested`).
    """

    def __init__(
        self,
        connection: C,
        context: Mapping[str, Any] | None = None,
        *,
        owner: Throttle[Any] | None = None,
        apply_on_error: ApplyOnError = False,
        apply_on_exit: bool = True,
        lock: bool | str | None = None,
        lock_config: Mapping[str, Any] | None = None,
        parent: QuotaContext[C] | None = None,
    ) -> None:
        check_context(lock, lock_config, context, apply_on_error, apply_on_exit)
        if owner is not None and not isinstance(owner, Throttle):
            raise ConfigurationError(f"owner must be a throttle, got {owner!r}")
        if parent is not None and not isinstance(parent, QuotaContext):
            raise ConfigurationError(f"parent must be a QuotaContext, got {parent!r}")
        self.connection = connection
        self.default_context: Mapping[str, Any] = dict(context) if context else {}
        self.owner = owner
        self.apply_on_error = apply_on_error
        self.apply_on_exit = apply_on_exit
        self.parent = parent
        self._queue: list[Entry] = []
        self._children: list[QuotaContext[C]] = []
        self._consumed = False
        self._cancelled = False
        self._entered = False
        self._applied_cost = 0
        self._decisions: list[Decision] = []
        if parent is not None:
            parent._children.append(self)

    @property
    def consumed(self) -> bool:
        """Whether this context was applied (or, nested, merged into its parent)."""
        return self._consumed

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def active(self) -> bool:
        """Neither consumed nor cancelled: entries may still be queued."""
        return not (self._consumed or self._cancelled)

    @property
    def is_bound(self) -> bool:
        """Whether entries may omit the throttle (the context has an owner)."""
        return self.owner is not None

    @property
    def is_nested(self) -> bool:
        return self.parent is not None

    @property
    def depth(self) -> int:
        """0 for a top-level context, 1 for its child, and so on."""
        depth, parent = 0, self.parent
        while parent is not None:
            depth, parent = depth + 1, parent.parent
        return depth

    @property
    def queued_cost(self) -> int:
        """What is queued here and in the children not yet merged: an estimate, where an
        entry's cost comes from a cost function at apply (counted as 1)."""
        own = sum(entry.estimated_cost for entry in self._queue)
        return own + sum(child.queued_cost for child in self._children)

    @property
    def applied_cost(self) -> int:
        """What ``apply()`` consumed: 0 when a limit refused (nothing is consumed then)."""
        return self._applied_cost

    @property
    def decisions(self) -> list[Decision]:
        """The decisions of the last ``apply()``, one per queued entry (empty before)."""
        return list(self._decisions)

    # -- queueing ------------------------------------------------------------------

    async def consume(
        self,
        throttle: Throttle[Any] | None = None,
        cost: int | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        skip_handler: bool = False,
        retry: int = 0,
        retry_on: RetryOn | None = None,
        backoff: Backoff | None = None,
        base_delay: float = 1.0,
    ) -> QuotaContext[C]:
        """Queue ``cost`` units of ``throttle`` (the owner by default; its own cost when
        None). Nothing is consumed until `apply`.

        :param context: this entry's context, merged over the context's default.
        :param skip_handler: on a refusal, do not call this throttle's refusal handler
            (nothing is consumed either way; `decisions` says what was decided).
        :param retry: how many times to retry ``apply()`` when deciding raises (a store
            failure with ``on_error="raise"``); every entry is decided again, together.
        :param retry_on: which failures to retry (default: any ``Exception``).
        :param backoff: ``(attempt, base_delay) -> seconds``; `default_backoff` if None.
        :param base_delay: seconds, the backoff's base.
        """
        if self._cancelled:
            raise QuotaCancelledError("Cannot queue quota entries on a cancelled quota context")
        if self._consumed:
            raise QuotaAppliedError("Cannot queue quota entries on a consumed quota context")
        chosen = self._chosen(throttle)
        if chosen is None:
            raise QuotaError(
                "No throttle given: pass one (quota(throttle, cost=...)), or bind the context "
                "to one with throttle.quota(connection) or QuotaContext(connection, owner=...)"
            )
        if cost is not None:
            cost = checked_cost(cost, chosen.uid)
            if cost == 0:
                return self
        elif chosen._cost_function is None:
            cost = chosen.cost
        check_entry(context, retry, retry_on, backoff, base_delay)
        merged = {**self.default_context, **context} if context else self.default_context
        entry = Entry(
            chosen,
            cost,
            merged or None,
            bool(skip_handler),
            retry,
            retry_on,
            backoff if backoff is not None else default_backoff,
            float(base_delay),
        )
        if self._queue and self._queue[-1].takes(entry):
            last = self._queue[-1]
            assert last.cost is not None
            assert entry.cost is not None
            last.cost += entry.cost
        else:
            self._queue.append(entry)
        return self

    __call__ = consume

    def _chosen(self, throttle: object) -> Throttle[Any] | None:
        """``throttle``, or the owner when None; anything else is refused."""
        if throttle is None or isinstance(throttle, Throttle):
            return throttle if throttle is not None else self.owner
        raise ConfigurationError(
            f"A quota entry's first argument is its throttle, got {throttle!r}; "
            "for a cost, write quota(cost=...)"
        )

    async def check(
        self,
        throttle: Throttle[Any] | None = None,
        cost: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> bool:
        """Best effort: whether ``cost`` (default 1) of ``throttle`` (the owner by
        default) would be allowed now; unbound and without a throttle, whether each
        queued entry would be. Consumes nothing; another request may consume meanwhile."""
        chosen = self._chosen(throttle)
        if chosen is not None:
            return await would_allow(chosen, self.connection, 1 if cost is None else cost)
        for entry in self._queue:
            if not await would_allow(entry.throttle, self.connection, entry.cost):
                return False
        return True

    async def stat(
        self, throttle: Throttle[Any] | None = None, context: Mapping[str, Any] | None = None
    ) -> ThrottleStat | None:
        """The connection's standing under ``throttle`` (the owner by default)."""
        chosen = self._chosen(throttle)
        if chosen is None:
            raise QuotaError("No throttle given, and the context is bound to none")
        return await stat(chosen, self.connection)

    # -- applying ------------------------------------------------------------------

    async def apply(self) -> None:
        """Consume every queued entry (with the children not merged yet), all-or-nothing.

        Idempotent once it succeeded. On a refusal nothing is consumed and the refusing
        throttles' handlers run, the longest wait first (the default one raises).
        """
        if self._cancelled:
            raise QuotaCancelledError("Cannot consume a cancelled quota context")
        if self._consumed:
            return
        for child in list(self._children):
            if child.active:
                child._merge()
        queue = self._queue
        outcomes = await decide_entries(self.connection, queue) if queue else []
        self._decisions = [outcome.decision for outcome in outcomes]
        self._applied_cost = sum(
            outcome.hit.cost for outcome in outcomes if outcome.consumed and outcome.hit
        )
        refused = [(o, e) for o, e in zip(outcomes, queue, strict=True) if o.refused]
        if refused:
            await refuse(self.connection, refused)
        else:  # a queueing strategy admitted with a delay: wait for the slot, as hit does
            delay = max((outcome.decision.delay for outcome in outcomes), default=0.0)
            if delay > 0:
                await asyncio.sleep(delay)
        self._consumed = True

    async def cancel(self) -> None:
        """Drop every queued entry (and the children's); the context cannot be used again.
        Idempotent; a consumed context cannot be cancelled (`QuotaAppliedError`)."""
        if self._consumed:
            raise QuotaAppliedError("Cannot cancel a consumed quota context")
        if self._cancelled:
            return
        for child in list(self._children):
            if child.active:
                await child.cancel()
        self._queue.clear()
        self._detach()
        self._cancelled = True

    discard = cancel

    def merge(self) -> None:
        """Move this nested context's entries into its parent now (what a successful
        exit does); the parent consumes them when it applies."""
        if self.parent is None:
            raise QuotaError("Only a nested context merges into a parent")
        if self._cancelled:
            raise QuotaCancelledError("Cannot merge a cancelled quota context")
        if self._consumed:
            raise QuotaAppliedError("Cannot merge a consumed quota context")
        self._merge()

    def _merge(self) -> None:
        parent = self.parent
        assert parent is not None
        for child in list(self._children):
            if child.active:
                child._merge()
        parent._queue.extend(self._queue)  # entries keep their order, never re-aggregated
        self._queue = []
        self._detach()
        self._consumed = True

    def _detach(self) -> None:
        parent = self.parent
        if parent is not None and self in parent._children:
            parent._children.remove(self)

    # -- nesting and the block -----------------------------------------------------

    def nested(
        self,
        context: Mapping[str, Any] | None = None,
        *,
        apply_on_error: ApplyOnError | None = None,
        apply_on_exit: bool = True,
        lock: bool | str | None = None,
        lock_config: Mapping[str, Any] | None = None,
        reentrant_lock: bool = True,
    ) -> QuotaContext[C]:
        """A child context with the same owner, merging into this one when its block
        succeeds. ``apply_on_error`` None inherits this context's; ``reentrant_lock``
        (1.x, about locks) has no effect."""
        if not self.active:  # its entries would have nowhere to go
            raise (QuotaCancelledError if self._cancelled else QuotaAppliedError)(
                "Cannot open a nested context in a consumed or cancelled quota context"
            )
        merged = {**self.default_context, **context} if context else self.default_context
        return type(self)(
            self.connection,
            merged,
            owner=self.owner,
            apply_on_error=self.apply_on_error if apply_on_error is None else apply_on_error,
            apply_on_exit=apply_on_exit,
            lock=lock,
            lock_config=lock_config,
            parent=self,
        )

    quota = nested

    async def __aenter__(self) -> QuotaContext[C]:
        self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._entered or not self.active:
            return
        if exc_type is None:
            apply = self.apply_on_exit
        elif self.apply_on_error is True or self.apply_on_error is False:
            apply = self.apply_on_error
        else:
            apply = issubclass(exc_type, self.apply_on_error)
        if not apply:
            if exc_type is not None and self.parent is not None:
                self._queue.clear()  # the documented rule: a failed child adds nothing
                self._detach()
            return
        if self.parent is not None:
            self._merge()
        else:
            await self.apply()

    def __repr__(self) -> str:
        owner = f"owner={self.owner.uid!r} " if self.owner is not None else ""
        state = "cancelled" if self._cancelled else "consumed" if self._consumed else "active"
        return (
            f"<QuotaContext {owner}queued={len(self._queue)} state={state} "
            f"nested={self.is_nested} depth={self.depth}>"
        )

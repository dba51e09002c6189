"""Sliding window log: exact usage over the last period, from a log of admitted requests.

Rule: a request of cost ``c`` at time ``now`` is admitted when the costs of the requests
admitted in ``(now - period, now]`` plus ``c`` are at most the limit. There are no window
edges: with ``"2/s"`` and hits at 0.9 s and 0.95 s, a hit at 1.0 s is refused and one at
1.9 s passes (the 0.9 s hit has left the window). A refused request is not logged; its
retry time is exact: the moment enough of the oldest entries have left the window. A
cost above the limit is refused for ever. A refund takes units back from the newest
entries (the request being refunded is normally the last one).

The state holds one ``(time, cost)`` entry per admitted request still in the window, so
it is O(limit), the one strategy whose state is not a few integers. Each hit costs
amortised O(1) all the same, although decisions are pure (a refused request, a peek or
an aborted multi-limit check must leave the stored log as it was):

* entries live in a shared, append-only buffer (times and running cost totals); a state
  is a view ``[start, end)`` of it, so dropping expired entries moves ``start`` and the
  usage is a difference of two running totals;
* an admitted request returns a *pending* state (its parent view plus one entry); only
  when that state is itself decided on — so it is the stored one — is the entry appended,
  in O(1) when the parent is the buffer's tip (the only case on the hot path) and by
  copying otherwise;
* expired entries are found by a cursor cached on the buffer, which only moves forward,
  so each entry is stepped over once however many peeks and refusals look at it;
* when more than half of a buffer has expired it is compacted (copied), paid for by the
  entries that expired.

``LogState.operations`` counts the entry visits, appends and copies made for a log, so a
test can check the work per hit is constant.

Integer algorithm (``P = period_ms``, ``L = limit``; entries in time order)::

    now = max(now, newest entry time)          # time never runs backwards for a log
    drop entries with time <= now - P           # from the oldest end; keep a running total
    live = sum of the remaining costs
    cost == 0:          allowed, remaining L - live, state unchanged
    cost > L:           refused, retry_after = inf
    live + cost <= L:   append (now, cost) (a store may merge it into the newest entry
                        when that has the same time: decisions do not change)
                        allowed, remaining L - live - cost, reset_after = P, ttl = P
    otherwise:          refused, remaining L - live; need = live + cost - L;
                        walk entries from the oldest, summing costs until the sum >= need;
                        at that entry (time t): retry_ms = t + P - now
    reset_ms = newest + P - now if live > 0 else 0;  ttl = max(reset_ms, 1)
    refund(c): remove c units from the newest entries (partially from the last one)

Storage as bytes: entries oldest first, the first time absolute and the others as
deltas from the previous entry, each followed by ``*cost`` unless the cost is 1, with
entries of the same millisecond merged: ``b"1700000000123*2,15,0*3"`` is
``(…123, 2), (…138, 1), (…138, 3)`` stored as ``(…123, 2), (…138, 4)``. A Redis port can
keep the same entries in a list (pop expired ones from the head, push at the tail) with
the running total beside them: the decisions are identical.
"""

from __future__ import annotations

import math
import re
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from typing import ClassVar, Final

from traffik._legacy_keywords import RefusesLockConfig
from traffik.decision import Decision
from traffik.rates import Rate
from traffik.strategies.base import Params, Step, require_exact

__all__ = ["LogState", "SlidingWindowLog"]

_COMPACT_AFTER: Final = 32
"""Expired entries tolerated at a buffer's start before compaction is considered."""

_NEVER: Final = -(2**62)
_ENTRY = re.compile(rb"([0-9]+)(?:\*([0-9]+))?")


class _Buffer:
    """Append-only entries shared by the versions of one log.

    ``totals[i]`` is the cost of entries ``0 .. i-1``, so the cost of ``[a, b)`` is
    ``totals[b] - totals[a]``. ``cursor`` caches the first index whose time is after
    ``cursor_floor``: a property of the contents, valid for every view of the buffer.
    """

    __slots__ = ("cursor", "cursor_floor", "operations", "times", "totals")

    def __init__(self, operations: int = 0) -> None:
        self.times = array("q")
        self.totals = array("q", [0])
        self.cursor = 0
        self.cursor_floor = _NEVER
        self.operations = operations

    def first_after(self, threshold: int, start: int, end: int) -> int:
        """The first index in ``[start, end]`` whose time is after ``threshold``."""
        times = self.times
        if threshold >= self.cursor_floor:
            index = self.cursor
            count = len(times)
            while index < count and times[index] <= threshold:
                index += 1
                self.operations += 1
            self.cursor, self.cursor_floor = index, threshold
        else:  # an older time than seen before (a lagging clock): search instead
            index = bisect_right(times, threshold, start, end)
            self.operations += 1
        return min(max(index, start), end)


class LogState:
    """One version of a sliding window log (treat as immutable).

    Entries ``[start, end)`` of a shared buffer, plus possibly one pending entry that is
    appended when this version is next used.
    """

    __slots__ = ("_buffer", "_end", "_pending", "_start")

    def __init__(
        self, buffer: _Buffer, start: int, end: int, pending: tuple[int, int] | None = None
    ) -> None:
        self._buffer = buffer
        self._start = start
        self._end = end
        self._pending = pending

    @classmethod
    def of(cls, entries: list[tuple[int, int]]) -> LogState:
        """A log of ``(time, cost)`` entries in time order."""
        buffer = _Buffer()
        total = 0
        for time, cost in entries:
            total += cost
            buffer.times.append(time)
            buffer.totals.append(total)
        return cls(buffer, 0, len(entries))

    def _settle(self) -> None:
        """Append the pending entry (this version is in use, so it is the stored one)."""
        pending = self._pending
        if pending is None:
            return
        buffer, start, end = self._buffer, self._start, self._end
        buffer.operations += 1
        if len(buffer.times) == end and not (start >= _COMPACT_AFTER and 2 * start > end):
            buffer.times.append(pending[0])
            buffer.totals.append(buffer.totals[end] + pending[1])
        else:  # another version appended here first, or the buffer is mostly expired
            copy = _Buffer(buffer.operations + end - start)
            base = buffer.totals[start]
            copy.times = buffer.times[start:end]
            copy.totals = array("q", (total - base for total in buffer.totals[start : end + 1]))
            copy.times.append(pending[0])
            copy.totals.append(copy.totals[-1] + pending[1])
            self._buffer, self._start, end = copy, 0, end - start
        self._end = end + 1
        self._pending = None

    def _view(self) -> tuple[_Buffer, int, int]:
        self._settle()
        return self._buffer, self._start, self._end

    def entries(self) -> tuple[tuple[int, int], ...]:
        """``(time, cost)`` oldest first, entries of the same millisecond merged."""
        buffer, start, end = self._view()
        merged: list[tuple[int, int]] = []
        times, totals = buffer.times, buffer.totals
        for index in range(start, end):
            time, cost = times[index], totals[index + 1] - totals[index]
            if merged and merged[-1][0] == time:
                merged[-1] = (time, merged[-1][1] + cost)
            else:
                merged.append((time, cost))
        return tuple(merged)

    @property
    def operations(self) -> int:
        """Entry visits, appends and copies made so far for this log (for tests)."""
        return self._view()[0].operations

    def __len__(self) -> int:
        _, start, end = self._view()
        return end - start

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogState):
            return NotImplemented
        return self.entries() == other.entries()

    __hash__ = None  # type: ignore[assignment]  # mutable representation, value equality

    def __repr__(self) -> str:
        return f"LogState({list(self.entries())!r})"


@dataclass(frozen=True, slots=True)
class SlidingWindowLog(RefusesLockConfig):
    """Exact sliding window over a log of admitted requests."""

    name: ClassVar[str] = "sliding_window_log"

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this log cannot decide exactly (see `require_exact`)."""
        require_exact(self, rate, rate.limit, rate.period_ms)

    def decide(
        self, state: LogState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[LogState]:
        self.check_rate(rate)
        period, limit = rate.period_ms, rate.limit
        if state is None:
            buffer, start, end = _Buffer(), 0, 0
        else:
            buffer, start, end = state._view()
            if end > start:
                now = max(now, buffer.times[end - 1])
        first = buffer.first_after(now - period, start, end)
        totals = buffer.totals
        live = totals[end] - totals[first]
        if cost > 0 and cost <= limit and live + cost <= limit:
            new_state = LogState(buffer, first, end, (now, cost))
            return new_state, Decision(True, limit, limit - live - cost, period / 1000, 0.0), period
        reset_ms = buffer.times[end - 1] + period - now if live > 0 else 0
        if cost == 0:
            retry_after = 0.0
        elif cost > limit:
            retry_after = math.inf
        else:
            # The oldest entries must leave until ``need`` units have gone with them.
            need, base, index = live + cost - limit, totals[first], first
            while totals[index + 1] - base < need:
                index += 1
                buffer.operations += 1
            buffer.operations += 1
            retry_after = (buffer.times[index] + period - now) / 1000
        decision = Decision(cost == 0, limit, limit - live, reset_ms / 1000, retry_after)
        return state, decision, max(reset_ms, 1)

    def refund(
        self, state: LogState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[LogState | None, int]:
        if state is None:
            return None, 1
        buffer, start, end = state._view()
        if end == start:
            return None, 1
        now = max(now, buffer.times[end - 1])
        first = buffer.first_after(now - rate.period_ms, start, end)
        totals = buffer.totals
        index = end
        owed = cost
        while index > first and totals[index] - totals[index - 1] <= owed:
            owed -= totals[index] - totals[index - 1]
            index -= 1
            buffer.operations += 1
        if index == first:
            return None, 1
        if owed == 0:
            refunded = LogState(buffer, first, index)
        else:  # the newest remaining entry gives back part of its cost
            kept = totals[index] - totals[index - 1] - owed
            refunded = LogState(buffer, first, index - 1, (buffer.times[index - 1], kept))
        return refunded, buffer.times[index - 1] + rate.period_ms - now

    def encode(self, state: LogState) -> bytes:
        parts: list[str] = []
        previous: int | None = None
        for time, cost in state.entries():
            delta = str(time if previous is None else time - previous)
            parts.append(delta if cost == 1 else f"{delta}*{cost}")
            previous = time
        return ",".join(parts).encode()

    def decode(self, data: bytes) -> LogState:
        entries: list[tuple[int, int]] = []
        time = 0
        for part in bytes(data).split(b","):
            match = _ENTRY.fullmatch(part)
            if match is None:
                raise ValueError(f"not a sliding window log: {data!r}")
            delta, cost_text = match.groups()
            cost = 1 if cost_text is None else int(cost_text)
            if cost < 1:
                raise ValueError(f"sliding window log entry with cost {cost}: {data!r}")
            time = int(delta) if not entries else time + int(delta)
            entries.append((time, cost))
        return LogState.of(entries)

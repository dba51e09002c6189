"""Leaky buckets: work drains at the rate; a meter refuses overflow, a queue makes it wait.

`LeakyBucket` (a meter) rule: each admitted request pours ``cost`` units into a bucket
of ``limit`` units, which leaks ``limit`` units per period (``"10/s"``: one unit every
100 ms). A request is admitted when it fits: ``level + cost <= limit``. The bucket starts
empty, so a burst of ``limit`` passes at once, then one unit per ``period / limit``. A
refused request pours nothing; it may retry once enough has leaked out. A cost above the
limit never fits (infinite retry time). A refund takes units back out.

`LeakyBucketWithQueue` (a queue) rule: the bucket is a FIFO queue served at ``limit``
units per period, holding at most ``queue_size`` units (default: the limit). A request
that fits is admitted, and told to wait (``Decision.delay``) until the work queued
before it has drained: with ``"10/s"``, ten simultaneous requests get delays of 0, 0.1,
0.2, ... 0.9 s, so they proceed one per 100 ms; the eleventh finds the queue full and is
refused, with a retry time of 0.1 s (when the first slot frees). The longest wait is
therefore about ``queue_size * period / limit`` (one period by default). A cost above the
queue size never fits.

Integer algorithm (the rate in lowest terms, ``L`` units per ``P`` ms, see
`traffik.strategies._bucket`; capacity ``Q = limit`` for the meter, ``queue_size or
limit`` for the queue; state ``(level, last)``, 2 integers, ``level`` in ``1/P`` units so
one ms drains exactly ``L``)::

    cap = Q * P;  need = cost * P                          (require Q * P + L < 2**53)
    state is None:  level = 0, last = now
    otherwise:      if now > last:
                        if now - last >= ceil(level / L): level = 0
                        else: level -= (now - last) * L
                        last = now
    cost == 0:              allowed, delay 0, state unchanged
    cost > Q:               refused, retry_after = inf
    level + need <= cap:    delay_ms = ceil(level / L)       (queue only; 0 for the meter)
                            level += need; store (level, last)
                            allowed, remaining = (cap - level) // P
    otherwise:              refused, remaining = (cap - level) // P,
                            retry_ms = ceil((level + need - cap) / L)
    reset_ms = ceil(level / L)  (time until empty);  ttl = max(reset_ms + max(last - now, 0), 1)
    refund(c): level = max(0, drained level - c * P)

After ``ttl`` the bucket is empty, which is what a missing state means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from traffik._aliases import Moved, forward
from traffik.decision import Decision
from traffik.rates import Rate
from traffik.strategies._bucket import drain, keep_for, lowest_terms
from traffik.strategies._support import whole_number
from traffik.strategies.base import IntTupleCodec, Params, Step, ceil_div, require_exact

__all__ = ["LeakyBucket", "LeakyBucketWithQueue"]

LevelState = tuple[int, int]


def _check(strategy: object, rate: Rate, capacity: int) -> None:
    limit, period = lowest_terms(rate)
    largest = capacity * period + limit
    require_exact(strategy, rate, largest, ceil_div(largest, limit))  # full to empty


def _decide(
    state: LevelState | None,
    now: int,
    rate: Rate,
    cost: int,
    capacity: int,
    queue: bool,
) -> Step[LevelState]:
    limit, period = lowest_terms(rate)
    cap = capacity * period
    if state is None:
        level, last = 0, now
    else:
        level, last = drain(state[0], state[1], now, limit)
    if cost == 0:
        reset_ms = ceil_div(level, limit)
        decision = Decision(True, capacity, (cap - level) // period, reset_ms / 1000, 0.0)
        return state, decision, keep_for(reset_ms, last, now)
    need = cost * period
    if cost <= capacity and level + need <= cap:
        delay_ms = ceil_div(level, limit) if queue else 0
        level += need
        reset_ms = ceil_div(level, limit)
        decision = Decision(
            True, capacity, (cap - level) // period, reset_ms / 1000, 0.0, delay_ms / 1000
        )
        return (level, last), decision, keep_for(reset_ms, last, now)
    reset_ms = ceil_div(level, limit)
    retry_after = math.inf if cost > capacity else ceil_div(level + need - cap, limit) / 1000
    decision = Decision(False, capacity, (cap - level) // period, reset_ms / 1000, retry_after)
    return state, decision, keep_for(reset_ms, last, now)


def _refund(
    state: LevelState | None, now: int, rate: Rate, cost: int
) -> tuple[LevelState | None, int]:
    if state is None:
        return None, 1  # a missing bucket is already empty
    limit, period = lowest_terms(rate)
    level, last = drain(state[0], state[1], now, limit)
    level = max(0, level - cost * period)
    return (level, last), keep_for(ceil_div(level, limit), last, now)


@dataclass(frozen=True, slots=True)
class LeakyBucket(IntTupleCodec):
    """Leaky bucket as a meter: a bucket of ``limit`` units leaking at the rate."""

    name: ClassVar[str] = "leaky_bucket"
    state_fields: ClassVar[int] = 2

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this bucket cannot decide exactly (see `require_exact`)."""
        _check(self, rate, rate.limit)

    def decide(
        self, state: LevelState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[LevelState]:
        self.check_rate(rate)
        return _decide(state, now, rate, cost, rate.limit, queue=False)

    def refund(
        self, state: LevelState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[LevelState | None, int]:
        return _refund(state, now, rate, cost)


@dataclass(frozen=True, slots=True)
class LeakyBucketWithQueue(IntTupleCodec):
    """Leaky bucket as a queue: admitted requests wait (``Decision.delay``) for their slot.

    :param queue_size: the most units queued (waiting or being served); the limit by
        default. The longest wait is about ``queue_size * period / limit``.
    """

    queue_size: int | None = None

    name: ClassVar[str] = "leaky_bucket_with_queue"
    state_fields: ClassVar[int] = 2

    def __post_init__(self) -> None:
        if self.queue_size is not None:
            whole_number(self.queue_size, "LeakyBucketWithQueue queue_size", minimum=1)

    def capacity(self, rate: Rate) -> int:
        return self.queue_size or rate.limit

    def check_rate(self, rate: Rate) -> None:
        """Refuse a rate this bucket cannot decide exactly (see `require_exact`)."""
        _check(self, rate, self.capacity(rate))

    def decide(
        self, state: LevelState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> Step[LevelState]:
        self.check_rate(rate)
        return _decide(state, now, rate, cost, self.capacity(rate), queue=True)

    def refund(
        self, state: LevelState | None, now: int, rate: Rate, cost: int, params: Params
    ) -> tuple[LevelState | None, int]:
        return _refund(state, now, rate, cost)


# traffik 1.x's names (`traffik._aliases`): each use warns.
if TYPE_CHECKING:
    LeakyBucketStrategy = LeakyBucket
    LeakyBucketWithQueueStrategy = LeakyBucketWithQueue
forward(
    __name__,
    globals(),
    {
        "LeakyBucketStrategy": Moved("traffik.strategies", name="LeakyBucket"),
        "LeakyBucketWithQueueStrategy": Moved("traffik.strategies", name="LeakyBucketWithQueue"),
    },
    alias_module=False,
)

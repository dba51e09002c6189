"""Naive oracles for the bucket strategies: replay every admitted request with fractions.

See `traffik.testing.oracles.base` for the conventions. Levels are exact fractions of a
token (or of a millisecond, for GCRA's schedule), replayed from the first admitted
request on; the production code's scaled integers appear nowhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from traffik import Decision
from traffik.testing.oracles.base import Oracle, Params, ceil_ms, ratio, seconds

__all__ = [
    "CostBasedTokenBucketOracle",
    "GCRAOracle",
    "LeakyBucketOracle",
    "TokenBucketOracle",
]


@dataclass
class TokenBucketOracle(Oracle):
    """Tokens refill at limit/period up to the capacity; may go down to -debt."""

    burst_size: int | None = None
    debt: int = 0

    @property
    def capacity(self) -> int:
        return self.burst_size or self.limit

    def tokens(self, now: int) -> Fraction:
        per_ms = Fraction(self.limit, self.period)
        tokens, last = Fraction(self.capacity), None
        for event in [*self.events, None]:
            moment = now if event is None else event.time
            if last is not None:
                tokens = min(Fraction(self.capacity), tokens + (moment - last) * per_ms)
            if event is not None:
                tokens -= event.cost
            last = moment
        return tokens

    def decide(self, now: int, cost: int, params: Params) -> Decision:
        capacity, debt = self.capacity, self.debt
        ms_per_token = Fraction(self.period, self.limit)
        tokens = self.tokens(now)
        allowed = cost == 0 or (cost <= capacity + debt and tokens - cost >= -debt)
        if allowed:
            tokens -= cost
        remaining = math.floor(tokens + debt)
        reset = seconds(ceil_ms((capacity - tokens) * ms_per_token))
        if allowed:
            return Decision(True, capacity + debt, remaining, reset, 0.0)
        retry = (
            math.inf
            if cost > capacity + debt
            else seconds(ceil_ms((cost - debt - tokens) * ms_per_token))
        )
        return Decision(False, capacity + debt, remaining, reset, retry)


@dataclass
class LeakyBucketOracle(Oracle):
    """A FIFO of admitted work served at limit/period: a meter, or a queue with delays."""

    queue_size: int | None = None
    queue: bool = False

    @property
    def capacity(self) -> int:
        return self.queue_size or self.limit

    def finish(self) -> Fraction | None:
        """When the last admitted request has been fully served (ms)."""
        unit_ms = Fraction(self.period, self.limit)
        finish: Fraction | None = None
        for event in self.events:
            start = event.time if finish is None else max(Fraction(event.time), finish)
            finish = start + event.cost * unit_ms
        return finish

    def decide(self, now: int, cost: int, params: Params) -> Decision:
        unit_ms = Fraction(self.period, self.limit)
        finish = self.finish()
        backlog_ms = max(Fraction(0), finish - now) if finish is not None else Fraction(0)
        work = backlog_ms / unit_ms
        capacity = self.capacity
        if cost == 0 or (cost <= capacity and work + cost <= capacity):
            delay = seconds(ceil_ms(backlog_ms)) if self.queue and cost > 0 else 0.0
            after_ms = backlog_ms + cost * unit_ms
            remaining = math.floor(capacity - work - cost)
            return Decision(True, capacity, remaining, seconds(ceil_ms(after_ms)), 0.0, delay)
        retry = (
            math.inf if cost > capacity else seconds(ceil_ms((work + cost - capacity) * unit_ms))
        )
        reset = seconds(ceil_ms(backlog_ms))
        return Decision(False, capacity, math.floor(capacity - work), reset, retry)


@dataclass
class GCRAOracle(Oracle):
    """The theoretical arrival time, as a fraction of a millisecond."""

    tolerance_ms: int = 0

    def decide(self, now: int, cost: int, params: Params) -> Decision:
        interval = Fraction(self.period, self.limit)
        reach = self.tolerance_ms + interval  # how far ahead the schedule may run
        tat: Fraction = Fraction(now)
        if self.events:
            tat = Fraction(self.events[0].time)
            for event in self.events:
                tat = max(tat, Fraction(event.time)) + event.cost * interval
            tat = max(tat, Fraction(now))
        burst = math.floor(reach / interval)
        allowed = cost == 0 or (cost <= burst and tat + cost * interval - now <= reach)
        if allowed:
            tat += cost * interval
        remaining = math.floor((reach - (tat - now)) / interval)
        reset = seconds(ceil_ms(tat - now))
        if allowed:
            return Decision(True, burst, remaining, reset, 0.0)
        retry = math.inf if cost > burst else seconds(ceil_ms(tat + cost * interval - reach - now))
        return Decision(False, burst, remaining, reset, retry)


@dataclass
class CostBasedTokenBucketOracle(Oracle):
    """A token bucket whose refill is multiplied by max(floor, 1 / average cost)."""

    burst_size: int | None = None
    cost_window: int = 100
    min_refill_rate: float | Fraction = 0.5

    @property
    def capacity(self) -> int:
        return self.burst_size or self.limit

    def multiplier(self, history: list[int]) -> Fraction:
        """Per-mille multiplier (a whole number of thousandths) for an average history."""
        average = self.average(history)
        if average is None or average <= 1000:
            return Fraction(1)
        floor = max(1, math.floor(1000 * ratio(self.min_refill_rate)))
        return Fraction(max(floor, 10**6 // average), 1000)

    def average(self, history: list[int]) -> int | None:
        """Mean cost in thousandths: exact (floored) for the first N, then a moving one."""
        average, count = 0, 0
        for cost in history:
            count = min(count + 1, self.cost_window)
            average += math.floor(Fraction(cost * 1000 - average, count))
        return average if history else None

    def replay(self, now: int) -> tuple[Fraction, list[int]]:
        """Tokens at ``now`` and the cost history since the bucket was last full."""
        capacity = Fraction(self.capacity)
        tokens, history, last = capacity, [], None
        for event in [*self.events, None]:
            moment = now if event is None else event.time
            if last is not None and moment > last:
                per_ms = Fraction(self.limit, self.period) * self.multiplier(history)
                tokens += (moment - last) * per_ms
                if tokens >= capacity:
                    tokens, history = capacity, []
            if event is not None:
                tokens -= event.cost
                history.append(event.cost)
            last = moment
        return tokens, history

    def decide(self, now: int, cost: int, params: Params) -> Decision:
        capacity = self.capacity
        tokens, history = self.replay(now)
        allowed = cost == 0 or (cost <= capacity and tokens >= cost)
        if allowed and cost > 0:
            tokens -= cost
            history = [*history, cost]
        per_ms = Fraction(self.limit, self.period) * self.multiplier(history)
        reset = seconds(ceil_ms((capacity - tokens) / per_ms))
        if allowed:
            return Decision(True, capacity, math.floor(tokens), reset, 0.0)
        retry = math.inf if cost > capacity else seconds(ceil_ms((cost - tokens) / per_ms))
        return Decision(False, capacity, math.floor(tokens), reset, retry)

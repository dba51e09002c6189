"""Naive oracles for the strategies built on aligned windows with a varying limit.

See `traffik.testing.oracles.base` for the conventions. Every quantity is recomputed from
the list of admitted requests: window sums, the history of effective limits, carried-over
quota.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from fractions import Fraction

from traffik import Decision
from traffik.testing.oracles.base import Oracle, Params, ratio, seconds
from traffik.testing.oracles.windows import FixedWindowOracle

__all__ = [
    "AdaptiveThrottleOracle",
    "PriorityQueueOracle",
    "QuotaWithRolloverOracle",
    "TieredRateOracle",
    "TimeOfDayOracle",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_HOUR = 3_600_000


def scaled(limit: int, multiplier: Fraction) -> int:
    return max(1, math.floor(limit * multiplier))


@dataclass
class TieredRateOracle(FixedWindowOracle):
    multipliers: dict[str, float | int | Fraction] = field(default_factory=dict)
    default_tier: str = "free"

    def limit_for(self, now: int, params: Params) -> int:
        tier = params.get("tier")
        if not isinstance(tier, str) or tier not in self.multipliers:
            tier = self.default_tier
        return scaled(self.limit, ratio(self.multipliers[tier]))


@dataclass
class TimeOfDayOracle(FixedWindowOracle):
    windows: tuple[tuple[int, int, float | int | Fraction], ...] = ()
    offset_hours: int = 0

    def limit_for(self, now: int, params: Params) -> int:
        local = _EPOCH + timedelta(milliseconds=now, hours=self.offset_hours)
        for start, end, multiplier in self.windows:
            if start <= local.hour < end:
                return scaled(self.limit, ratio(multiplier))
        return self.limit

    def retry_ms(self, now: int, used: int, cost: int, params: Params) -> int | None:
        window_end = (now // self.period + 1) * self.period
        since_hour = (now + self.offset_hours * _HOUR) % _HOUR
        # The limit changes only at hour boundaries, usage only at the window's end.
        candidates = {window_end}
        boundary = now - since_hour + _HOUR
        while boundary <= window_end + 25 * _HOUR:
            candidates.add(boundary)
            boundary += _HOUR
        for moment in sorted(candidates):
            spent = used if moment < window_end else 0
            if spent + cost <= self.limit_for(moment, params):
                return moment - now
        return None


@dataclass
class PriorityQueueOracle(Oracle):
    default_priority: int = 2
    max_queue_size: int = 1000

    def priority(self, params: Params) -> int:
        value = params.get("priority")
        names = {"LOW": 1, "NORMAL": 2, "HIGH": 3, "CRITICAL": 4}
        if isinstance(value, str) and value.upper() in names:
            return names[value.upper()]
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4:
            return int(value)
        return self.default_priority

    def decide(self, now: int, cost: int, params: Params) -> Decision:
        limit, queue = self.limit, self.max_queue_size
        mine = self.priority(params)
        window = self.in_window(now // self.period)
        seen = self.cost_in(e for e in window if self.priority(e.params) >= mine)
        total = self.cost_in(window)
        reset = seconds((now // self.period + 1) * self.period - now)
        headroom = min(limit - seen, queue - total)
        if cost == 0 or cost <= headroom:
            return Decision(True, limit, max(0, headroom - cost), reset, 0.0)
        retry = math.inf if cost > min(limit, queue) else reset
        return Decision(False, limit, max(0, headroom), reset, retry)


@dataclass
class QuotaWithRolloverOracle(Oracle):
    percentage: float | Fraction = 0.5
    max_rollover: int = 500

    def carry(self, used: int) -> int:
        unused = max(0, self.limit - used)
        return min(self.max_rollover, math.floor(unused * ratio(self.percentage)))

    def rollover(self, window: int) -> int:
        before = self.in_window(window - 1)
        return self.carry(self.cost_in(before)) if before else 0

    def decide(self, now: int, cost: int, params: Params) -> Decision:
        window = now // self.period
        quota = self.limit + self.rollover(window)
        mine = self.in_window(window)
        used = self.cost_in(mine)
        reset = seconds((window + 1) * self.period - now)
        if cost == 0 or used + cost <= quota:
            return Decision(True, quota, max(0, quota - used - cost), reset, 0.0)
        following = self.limit + (self.carry(used) if mine else 0)
        retry = reset if cost <= following else math.inf
        return Decision(False, quota, max(0, quota - used), reset, retry)


@dataclass
class AdaptiveThrottleOracle(Oracle):
    load_threshold: float | Fraction = 0.8
    reduction_factor: float | Fraction = 0.6
    recovery_rate: float | Fraction = 0.1
    min_limit_ratio: float | Fraction = 0.3

    @property
    def step(self) -> int:
        return scaled(self.limit, ratio(self.recovery_rate))

    def after(self, effective: int, used: int) -> int:
        """The limit of the window after one where ``used`` of ``effective`` went."""
        if used > ratio(self.load_threshold) * effective:
            reduced = math.floor(effective * ratio(self.reduction_factor))
            return max(scaled(self.limit, ratio(self.min_limit_ratio)), reduced)
        return min(self.limit, effective + self.step)

    def effective(self, window: int) -> int:
        """Replay the windows from the first request to ``window``."""
        if not self.events:
            return self.limit
        effective = self.limit
        current = self.events[0].time // self.period
        while current < window:
            used = self.cost_in(self.in_window(current))
            effective = self.after(effective, used)
            later = [e.time // self.period for e in self.events if e.time // self.period > current]
            following = min([*later, window])
            idle = following - current - 1  # windows without requests recover a step each
            effective = min(self.limit, effective + idle * self.step)
            current = following
        return effective

    def decide(self, now: int, cost: int, params: Params) -> Decision:
        window = now // self.period
        effective = self.effective(window)
        used = self.cost_in(self.in_window(window))
        reset_ms = (window + 1) * self.period - now
        if cost == 0 or (cost <= self.limit and used + cost <= effective):
            return Decision(True, effective, max(effective - used - cost, 0), reset_ms / 1000, 0.0)
        retry = math.inf
        if cost <= self.limit:
            following, windows = self.after(effective, used), 0
            while following < cost:
                following, windows = min(self.limit, following + self.step), windows + 1
            retry = seconds(reset_ms + windows * self.period)
        return Decision(False, effective, max(effective - used, 0), reset_ms / 1000, retry)

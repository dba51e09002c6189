"""Integer bucket arithmetic shared by the token, leaky and GCRA strategies.

A bucket level moves linearly with time: a token bucket fills towards ``full``, a leaky
bucket drains towards 0, ``per_ms`` units per millisecond. The level is kept in scaled
integer units (a fraction of a token) so that the movement over whole milliseconds is an
integer. Both helpers stop the movement at its bound *before* multiplying, so that
``elapsed * per_ms`` never exceeds ``gap + per_ms``: a state left untouched for years
still computes with small integers (below 2**53, as a Lua script needs).

Time never runs backwards for a bucket: when ``now`` is before ``last`` (a client whose
clock lags), nothing moves and ``last`` stays.

The buckets take the rate in lowest terms (`lowest_terms`): ``"10000000/30d"`` is 5
tokens per 1,296 ms, so a level counts 1/1,296 tokens rather than 1/2,592,000,000, and a
bucket of 10 million tokens stays far below 2**53. The decisions are the same.
"""

from __future__ import annotations

import math

from traffik.rates import Rate
from traffik.strategies.base import ceil_div

__all__ = ["drain", "keep_for", "lowest_terms", "refill"]


def lowest_terms(rate: Rate) -> tuple[int, int]:
    """``(l, p)``: the rate as ``l`` units per ``p`` ms, in lowest terms."""
    divisor = math.gcd(rate.limit, rate.period_ms)
    return rate.limit // divisor, rate.period_ms // divisor


def refill(level: int, last: int, now: int, per_ms: int, full: int) -> tuple[int, int]:
    """``(min(full, level + (now - last) * per_ms), now)``, computed without overflow."""
    if now <= last:
        return level, last
    gap = full - level
    if gap <= 0 or now - last >= ceil_div(gap, per_ms):
        return max(level, full), now
    return level + (now - last) * per_ms, now


def drain(level: int, last: int, now: int, per_ms: int) -> tuple[int, int]:
    """``(max(0, level - (now - last) * per_ms), now)``, computed without overflow."""
    if now <= last:
        return level, last
    if level <= 0 or now - last >= ceil_div(level, per_ms):
        return min(level, 0), now
    return level - (now - last) * per_ms, now


def keep_for(wait_ms: int, last: int, now: int) -> int:
    """The ttl of a bucket's state: until it is full (or empty) again, at least 1 ms.

    The wait is counted from the bucket's own clock: when ``now`` lags ``last`` (a clock
    behind the state's), the bucket only starts moving at ``last``, so a state forgotten
    after ``wait_ms`` from ``now`` would be forgotten too early.
    """
    return max(wait_ms + (last - now if last > now else 0), 1)

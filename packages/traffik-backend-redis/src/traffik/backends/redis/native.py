"""Strategies with a native Lua form, decided on the server in one atomic script.

Every built-in strategy is listed here: its Lua entry (``lua/<name>.lua``, which mirrors
the Python ``decide`` and ``refund`` expression by expression; ``lua/prelude.lua`` states
the contract), the helper files that entry needs, and its *spec*: the numbers the script
needs besides the time and the cost, resolved in Python from the strategy, the rate and
the request's params (a tier, a priority, the hourly limits...). Several classes may
share one Lua entry (`TieredRate` is a fixed window with the tier's limit).

Porting a strategy: write ``lua/<name>.lua`` and add one `NativeStrategy` line to
`NATIVE_STRATEGIES`. Every strategy not listed here — including any subclass of a listed
one, which may override ``decide`` — goes through the generic optimistic path
(`traffik.backends.redis.optimistic`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final

from traffik.backends.redis.scripts import Script, single_script
from traffik.rates import Rate
from traffik.strategies import (
    GCRA,
    AdaptiveThrottle,
    Concurrency,
    CostBasedTokenBucket,
    FixedWindow,
    LeakyBucket,
    LeakyBucketWithQueue,
    PriorityQueue,
    QuotaWithRollover,
    SlidingWindowCounter,
    SlidingWindowLog,
    TieredRate,
    TimeOfDay,
    TokenBucket,
    TokenBucketWithDebt,
)
from traffik.strategies._bucket import lowest_terms
from traffik.strategies.base import Params

__all__ = ["NATIVE_STRATEGIES", "NativeStrategy", "SpecCache", "native_form"]

SpecFunction = Callable[[Any, Rate, Params], tuple[int | str, ...]]
VariantFunction = Callable[[Any, Params], Hashable]

_WINDOW = "window.lua"
_BUCKET = "bucket.lua"


def _no_variant(strategy: Any, params: Params) -> None:
    return None


@dataclass(frozen=True, slots=True)
class NativeStrategy:
    """A strategy class and its Lua twin.

    ``spec(strategy, rate, params)`` gives the numbers the Lua entry reads from its spec
    argument, in order. ``variant(strategy, params)`` is the part of ``params`` the spec
    depends on (a tier, a priority; None for most strategies), so that specs can be
    cached per (strategy, rate, variant). ``files`` are the helper files the entry
    needs, before its own file. ``structured``: the state is kept in a Redis structure
    of its own, not in the string the generic path reads and writes, so this class is
    always decided by its script.
    """

    strategy_class: type
    lua_name: str
    spec: SpecFunction
    files: tuple[str, ...] = ()
    variant: VariantFunction = _no_variant
    structured: bool = False

    @property
    def lua_files(self) -> tuple[str, ...]:
        return (*self.files, f"{self.lua_name}.lua")

    @property
    def script(self) -> Script:
        """The script deciding one key of this strategy."""
        return single_script(self.lua_name, self.lua_files)


def _window_spec(strategy: Any, rate: Rate, params: Params) -> tuple[int, ...]:
    return (rate.limit, rate.period_ms)


def _tiered_spec(strategy: TieredRate, rate: Rate, params: Params) -> tuple[int, ...]:
    return (strategy.effective_limit(rate, params), rate.period_ms)


def _time_of_day_spec(strategy: TimeOfDay, rate: Rate, params: Params) -> tuple[int | str, ...]:
    limits = strategy.hourly_limits(rate)
    width = len(str(max(limits)))
    table = "".join(str(limit).zfill(width) for limit in limits)
    return (rate.period_ms, strategy.offset_ms, width, table)


# The buckets take the rate in lowest terms, as their Python twins do (strategies/_bucket.py).


def _token_bucket_spec(strategy: TokenBucket, rate: Rate, params: Params) -> tuple[int, ...]:
    return (*lowest_terms(rate), strategy.capacity(rate), 0)


def _token_bucket_with_debt_spec(
    strategy: TokenBucketWithDebt, rate: Rate, params: Params
) -> tuple[int, ...]:
    return (*lowest_terms(rate), strategy.capacity(rate), strategy.max_debt)


def _leaky_bucket_spec(strategy: LeakyBucket, rate: Rate, params: Params) -> tuple[int, ...]:
    return (*lowest_terms(rate), rate.limit, 0)


def _leaky_queue_spec(
    strategy: LeakyBucketWithQueue, rate: Rate, params: Params
) -> tuple[int, ...]:
    return (*lowest_terms(rate), strategy.capacity(rate), 1)


def _gcra_spec(strategy: GCRA, rate: Rate, params: Params) -> tuple[int, ...]:
    return (*lowest_terms(rate), strategy.burst_tolerance_ms)


def _adaptive_spec(strategy: AdaptiveThrottle, rate: Rate, params: Params) -> tuple[int, ...]:
    threshold, reduction, _, _ = strategy.exact_ratios
    return (
        rate.limit,
        rate.period_ms,
        strategy.floor_limit(rate),
        strategy.recovery_step(rate),
        threshold.numerator,
        threshold.denominator,
        reduction.numerator,
        reduction.denominator,
    )


def _priority_spec(strategy: PriorityQueue, rate: Rate, params: Params) -> tuple[int, ...]:
    priority = strategy.priority_of(params)
    return (rate.limit, rate.period_ms, strategy.max_queue_size, int(priority))


def _quota_spec(strategy: QuotaWithRollover, rate: Rate, params: Params) -> tuple[int, ...]:
    share = strategy.exact_percentage
    return (rate.limit, rate.period_ms, strategy.max_rollover, share.numerator, share.denominator)


def _cost_bucket_spec(
    strategy: CostBasedTokenBucket, rate: Rate, params: Params
) -> tuple[int, ...]:
    return (
        *lowest_terms(rate),
        strategy.capacity(rate),
        strategy.cost_window,
        strategy.floor_multiplier,
    )


def _concurrency_spec(strategy: Concurrency, rate: Rate, params: Params) -> tuple[int, ...]:
    return (rate.limit, rate.period_ms, strategy.retry_after_ms)


NATIVE_STRATEGIES: Final[dict[type, NativeStrategy]] = {
    native.strategy_class: native
    for native in (
        NativeStrategy(FixedWindow, "fixed_window", _window_spec, (_WINDOW,)),
        NativeStrategy(
            TieredRate,
            "fixed_window",
            _tiered_spec,
            (_WINDOW,),
            lambda strategy, params: strategy.tier_of(params),
        ),
        NativeStrategy(TimeOfDay, "time_of_day", _time_of_day_spec, (_WINDOW,)),
        NativeStrategy(SlidingWindowCounter, "sliding_window_counter", _window_spec, (_WINDOW,)),
        NativeStrategy(SlidingWindowLog, "sliding_window_log", _window_spec, structured=True),
        NativeStrategy(AdaptiveThrottle, "adaptive_throttle", _adaptive_spec, (_WINDOW,)),
        NativeStrategy(
            PriorityQueue,
            "priority_queue",
            _priority_spec,
            (_WINDOW,),
            lambda strategy, params: strategy.priority_of(params),
        ),
        NativeStrategy(QuotaWithRollover, "quota_with_rollover", _quota_spec, (_WINDOW,)),
        NativeStrategy(TokenBucket, "token_bucket", _token_bucket_spec, (_BUCKET,)),
        NativeStrategy(
            TokenBucketWithDebt, "token_bucket", _token_bucket_with_debt_spec, (_BUCKET,)
        ),
        NativeStrategy(
            CostBasedTokenBucket, "cost_based_token_bucket", _cost_bucket_spec, (_BUCKET,)
        ),
        NativeStrategy(LeakyBucket, "leaky_bucket", _leaky_bucket_spec, (_BUCKET,)),
        NativeStrategy(LeakyBucketWithQueue, "leaky_bucket", _leaky_queue_spec, (_BUCKET,)),
        NativeStrategy(GCRA, "gcra", _gcra_spec, (_BUCKET,)),
        NativeStrategy(Concurrency, "concurrency", _concurrency_spec),
    )
}


def native_form(strategy: object) -> NativeStrategy | None:
    """The native form of exactly this class, or None (subclasses may override decide)."""
    return NATIVE_STRATEGIES.get(type(strategy))


class SpecCache:
    """Spec arguments per (strategy, rate, variant), encoded once.

    The first time a combination is seen, the strategy decides a cost of 0 on no state
    (pure, no I/O, and checking the rate as every built-in strategy does when it
    decides): a rate too large to decide exactly raises the same `ConfigurationError` as
    on any other backend, before anything is sent. At most ``size`` entries are kept;
    beyond that the cache starts afresh (strategies and rates are few in practice).
    """

    __slots__ = ("_entries", "size")

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: dict[Hashable, bytes] = {}

    def spec(self, native: NativeStrategy, strategy: Any, rate: Rate, params: Params) -> bytes:
        variant = native.variant(strategy, params)
        key = (strategy, rate, variant)
        encoded = self._entries.get(key)
        if encoded is None:
            strategy.decide(None, 0, rate, 0, params)
            encoded = ",".join(map(str, native.spec(strategy, rate, params))).encode()
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[key] = encoded
        return encoded

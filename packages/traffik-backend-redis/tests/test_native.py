"""Every built-in strategy runs natively: the Python decisions, one round trip, O(1) logs."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from fractions import Fraction
from typing import Any, Protocol

import pytest
import redis.asyncio as redis

import traffik.strategies
from traffik import (
    ConfigurationError,
    FixedWindow,
    InMemoryBackend,
    ManualClock,
    Rate,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from traffik.backends.base import Hit
from traffik.backends.redis import RedisBackend
from traffik.backends.redis.backend import INJECTED_CLOCK_TTL_PADDING_MS
from traffik.backends.redis.native import native_form
from traffik.backends.redis.scripts import COMPARE_AND_SET, READ_STATES
from traffik.strategies import (
    GCRA,
    NO_PARAMS,
    AdaptiveThrottle,
    Concurrency,
    CostBasedTokenBucket,
    LeakyBucket,
    LeakyBucketWithQueue,
    PriorityQueue,
    QuotaWithRollover,
    Strategy,
    TieredRate,
    TimeOfDay,
    TokenBucketWithDebt,
)
from traffik.strategies.base import check_rate
from traffik.strategies.sliding_window_log import LogState

BackendFactory = Callable[..., Awaitable[RedisBackend]]
START = 1_700_000_000.0 + 1_800  # half-way through an hour

NO: list[Mapping[str, object]] = [{}]
# Hours 6-8, 13-19 and 23 are in no window: their multiplier is 1.
HOURS: tuple[tuple[int, int, float | Fraction], ...] = ((0, 6, 0.5), (9, 13, 3.0), (20, 23, 1.25))

# Every built-in strategy (some in two configurations), with the params it reads.
BUILTINS: list[tuple[Strategy[Any], list[Mapping[str, object]]]] = [
    (FixedWindow(), NO),
    (SlidingWindowLog(), NO),
    (SlidingWindowCounter(), NO),
    (TokenBucket(), NO),
    (TokenBucket(burst_size=3), NO),
    (TokenBucketWithDebt(burst_size=2, max_debt=3), NO),
    (LeakyBucket(), NO),
    (LeakyBucketWithQueue(), NO),
    (LeakyBucketWithQueue(queue_size=4), NO),
    (GCRA(), NO),
    (GCRA(burst_tolerance_ms=250), NO),
    (
        TieredRate(tier_multipliers={"free": 1, "premium": 2.5, "gold": Fraction(10, 3)}),
        [{"tier": tier} for tier in ("free", "premium", "gold", "unknown")],
    ),
    (AdaptiveThrottle(), NO),
    (AdaptiveThrottle(load_threshold=0.5, reduction_factor=0.5, recovery_rate=0.25), NO),
    (PriorityQueue(max_queue_size=6), [{"priority": p} for p in (1, 2, 3, 4, "high", None)]),
    (QuotaWithRollover(rollover_percentage=0.75, max_rollover=3), NO),
    (TimeOfDay(), NO),
    (TimeOfDay(time_windows=HOURS, timezone_offset=-5), NO),
    (CostBasedTokenBucket(), NO),
    (CostBasedTokenBucket(burst_size=6, cost_window=3, min_refill_rate=0.3), NO),
    (Concurrency(), NO),
    (Concurrency(retry_after_ms=7), NO),
]
BUILTIN_IDS = [f"{index}-{type(strategy).__name__}" for index, (strategy, _) in enumerate(BUILTINS)]
RATES = [Rate.parse(text) for text in ("3/s", "4/3ms", "5/10ms", "2/250ms", "7/1500ms", "6/min")]
# A time of day's windows may span hours, when its limit changes within a window.
HOURLY_RATES = [Rate.parse(text) for text in ("5/250ms", "6/min", "4/45min", "3/h", "8/7h")]
# Clock moves between operations: mostly none or a few ms, some a share of the periods
# above, a few of an hour (a new hour of the day, windows long gone).
STEPS = [0.0, 0.0, 0.0, 0.001, 0.001, 0.002, 0.005, 0.05, 0.3, 1.7, 61.0, 1200.0, 3600.0]
COSTS = [0, 1, 1, 1, 1, 1, 2, 3, 4, 9]
# Rates whose arithmetic passes 2**53 unless taken in lowest terms, or whose counts times
# times do (a sliding window counter's): ten million a month, a prime limit over a week,
# a year, and trillions a day. Costs in shares of the limit reach it; steps of days.
WIDE_RATES = [
    Rate.parse(text) for text in ("10000000/30d", "9999991/7d", "123456789/365d", "3000000000000/d")
]
WIDE_STEPS = [0.0, 0.0, 0.001, 0.7, 61.0, 3600.0, 86_400.0, 5 * 86_400.0, 29 * 86_400.0]
WIDE_SHARES = [0, 0, 1, 1, 7, 9, 4, 2]  # a cost of 0, 1 unit, or 1/share of the limit


def wide_cost(rng: random.Random, rate: Rate) -> int:
    share = rng.choice(WIDE_SHARES)
    return share if share < 2 else rate.limit // share


class SentLog(Protocol):
    """What the conftest's counting client sent (see conftest.SentLog)."""

    @property
    def commands(self) -> list[tuple[str, bytes]]: ...

    @property
    def names(self) -> list[str]: ...

    @property
    def writes(self) -> int: ...

    def clear(self) -> None: ...


class Server(Protocol):
    @property
    def url(self) -> str: ...


def test_every_builtin_strategy_has_a_native_script() -> None:
    exported = {
        value
        for name, value in vars(traffik.strategies).items()
        if name in traffik.strategies.__all__ and isinstance(value, type)
        and callable(getattr(value, "decide", None)) and value is not Strategy
    }  # fmt: skip
    assert exported == {type(strategy) for strategy, _ in BUILTINS}
    assert all(native_form(strategy) is not None for strategy, _ in BUILTINS)
    assert native_form(type("Own", (FixedWindow,), {})()) is None  # a subclass may override


class Program:
    """Random hits of one strategy on two keys, each with a rate of its own."""

    def __init__(
        self,
        rng: random.Random,
        strategy: Strategy[Any],
        params: list[Mapping[str, object]],
        prefix: str = "",
        *,
        wide: bool = False,
    ) -> None:
        self.rng = rng
        self.strategy = strategy
        self.params = params
        self.wide = wide
        if wide:  # those of the wide rates the strategy takes (10 million a month, at least)
            rates = [rate for rate in WIDE_RATES if accepts(strategy, rate)]
            assert WIDE_RATES[0] in rates, strategy
        else:
            rates = HOURLY_RATES if isinstance(strategy, TimeOfDay) else RATES
        # Few keys, so that states build up between the clock's moves.
        self.keys = [
            (f"{prefix}{index}", rate)
            for index, rate in enumerate(rng.sample(rates, min(2, len(rates))))
        ]
        self.steps = WIDE_STEPS if wide else STEPS

    def hit(self) -> Hit:
        rng = self.rng
        key, rate = rng.choice(self.keys)
        cost = wide_cost(rng, rate) if self.wide else rng.choice(COSTS)
        return Hit(key, self.strategy, rate, cost, rng.choice(self.params))


def accepts(strategy: Strategy[Any], rate: Rate) -> bool:
    try:
        check_rate(strategy, rate)
    except ConfigurationError:
        return False
    return True


async def run_against_memory(
    backend: RedisBackend, clock: ManualClock, programs: list[Program], steps: int
) -> None:
    """Each step: apply, peek, refund or apply_many (mixing the programs' strategies)."""
    memory = InMemoryBackend(clock=clock)
    rng = programs[0].rng
    for step in range(steps):
        roll = rng.random()
        program = rng.choice(programs)
        if roll < 0.5:
            hit = program.hit()
            expected: object = await memory.apply(*hit)
            actual: object = await backend.apply(*hit)
        elif roll < 0.65:
            hit = program.hit()
            expected, actual = await memory.peek(*hit), await backend.peek(*hit)
        elif roll < 0.8:
            hit = program.hit()
            await memory.refund(*hit)
            await backend.refund(*hit)
            expected = actual = None
        else:
            hits = [rng.choice(programs).hit() for _ in range(rng.randint(2, 4))]
            hits += hits[:1] if rng.random() < 0.3 else []  # a key listed twice
            expected, actual = await memory.apply_many(hits), await backend.apply_many(hits)
        assert actual == expected, f"step {step}"
        clock.advance(rng.choice(STEPS))


@pytest.mark.parametrize("index", range(len(BUILTINS)), ids=BUILTIN_IDS)
async def test_each_strategy_decides_exactly_as_in_memory(
    counting_redis: redis.Redis, sent_log: SentLog, namespace: str, index: int
) -> None:
    """Random programs of one strategy: the same decisions as in memory, every one."""
    strategy, params = BUILTINS[index]
    program = Program(random.Random(index), strategy, params)
    clock = ManualClock(START + program.rng.randrange(86_400_000) / 1000)
    client = counting_redis
    backend = RedisBackend(client, namespace=namespace, clock=clock)
    async with backend:
        await run_against_memory(backend, clock, [program], 300)
    generic = {READ_STATES.sha_bytes, COMPARE_AND_SET.sha_bytes}
    assert not [sha for _, sha in sent_log.commands if sha in generic]  # never the generic path


async def stored_state(raw_redis: redis.Redis, key: str, strategy: Any) -> tuple[Any, object]:
    """The state a key holds, decoded as the Python strategy reads it, and the raw value."""
    if isinstance(strategy, SlidingWindowLog):
        fields = [
            entry.split(b",") for entry in await raw_redis.lrange(key, 0, -1)
            if isinstance(entry, bytes)
        ]  # fmt: skip
        entries = [(int(time), int(cost)) for time, cost, _ in fields]
        return (LogState.of(entries) if entries else None), entries
    raw = await raw_redis.get(key)
    return (None if raw is None else strategy.decode(raw)), raw


def live(strategy: Any, state: Any, now: int, rate: Rate) -> object:
    """What of a stored state can still matter (a log keeps only its live entries)."""
    if not isinstance(strategy, SlidingWindowLog):
        return state
    entries = state.entries() if state is not None else ()
    newest = max(now, entries[-1][0]) if entries else now
    return [entry for entry in entries if entry[0] > newest - rate.period_ms]


@pytest.mark.parametrize("wide", [False, True], ids=["small rates", "wide rates"])
@pytest.mark.parametrize("index", range(len(BUILTINS)), ids=BUILTIN_IDS)
async def test_each_script_computes_its_strategy_state_by_state(
    make_redis_backend: BackendFactory,
    raw_redis: redis.Redis,
    namespace: str,
    index: int,
    wide: bool,
) -> None:
    """The Lua twin of ``decide`` and ``refund``: the decision, the state written, its TTL.

    Clocks also run backwards here (a client whose clock lags): windows and buckets must
    still decide as in Python. (A sliding window log's expired entries are dropped by
    every decision on Redis, so it is given a clock that only goes forward.) The wide
    rates are those whose integers pass 2**53 unless taken in lowest terms or in parts.
    """
    strategy, params = BUILTINS[index]
    if wide and isinstance(strategy, Concurrency):
        pytest.skip("a lease per unit: ten million leases are a memory test, not arithmetic")
    rng = random.Random(100 + index)
    program = Program(rng, strategy, params, wide=wide)
    clock = ManualClock(START + rng.randrange(86_400_000) / 1000)
    backend = await make_redis_backend(clock=clock)
    backwards = not isinstance(strategy, SlidingWindowLog)
    for step in range(300):
        key, _, rate, cost, hit_params = hit = program.hit()
        stored = f"{namespace}:{key}"
        now = round(clock() * 1000)
        state, _ = await stored_state(raw_redis, stored, strategy)
        started = time.monotonic()
        roll = rng.random()
        if roll < 0.2:
            expected_state, ttl = strategy.refund(state, now, rate, cost, hit_params)
            await backend.refund(*hit)
        else:
            expected_state, decision, ttl = strategy.decide(state, now, rate, cost, hit_params)
            if roll < 0.35:
                expected_state = state
                assert await backend.peek(*hit) == decision, f"step {step}"
            else:
                assert await backend.apply(*hit) == decision, f"step {step}"
        after, after_raw = await stored_state(raw_redis, stored, strategy)
        if expected_state is state:
            assert live(strategy, after, now, rate) == live(strategy, state, now, rate), step
        elif expected_state is None:
            assert after_raw is None or after_raw == [], f"step {step}"
        else:
            assert after == expected_state, f"step {step}"
            kept = INJECTED_CLOCK_TTL_PADDING_MS + max(ttl, 1)
            pttl = await raw_redis.pttl(stored)
            elapsed_ms = (time.monotonic() - started) * 1000  # Redis's clock ran meanwhile
            assert kept - elapsed_ms - 1 <= pttl <= kept, f"step {step}"
        if backwards and rng.random() < 0.1:
            clock.set(clock() - rng.choice([0.001, 0.002, 0.3, 61.0]))
        else:
            clock.advance(rng.choice(program.steps))


@pytest.mark.parametrize("seed", [1, 2])
async def test_several_strategies_in_one_request_decide_as_in_memory(
    make_redis_backend: BackendFactory, seed: int
) -> None:
    """apply_many over keys of different strategies: one composed script, all-or-nothing."""
    rng = random.Random(seed)
    programs = [
        Program(rng, strategy, params, f"{index}:")
        for index, (strategy, params) in enumerate(BUILTINS)
    ]
    clock = ManualClock(START + rng.randrange(86_400_000) / 1000)
    backend = await make_redis_backend(clock=clock)
    await run_against_memory(backend, clock, programs, 600)


async def test_each_check_is_one_round_trip(
    counting_redis: redis.Redis, sent_log: SentLog, namespace: str
) -> None:
    client = counting_redis
    backend = RedisBackend(client, namespace=namespace)
    rate = Rate.parse("10/min")
    async with backend:
        for index, (strategy, params) in enumerate(BUILTINS):
            for call in (backend.apply, backend.peek, backend.refund):
                sent_log.clear()
                await call(f"k{index}", strategy, rate, 1, params[-1])
                assert sent_log.names == ["EVALSHA"], (strategy, call)
                assert sent_log.writes == 1
        # The limits of one request: one script composed of their strategies.
        hits = [
            Hit(f"many:{index}", strategy, rate, 1, params[0])
            for index, (strategy, params) in enumerate(BUILTINS)
        ]
        await backend.apply_many(hits)  # the first call of a new combination loads it
        for _ in range(3):
            sent_log.clear()
            await backend.apply_many(hits)
            assert sent_log.names == ["EVALSHA"]
            assert sent_log.writes == 1


@pytest.mark.parametrize(
    "strategy", [SlidingWindowCounter(), TokenBucket(burst_size=2**52)], ids=lambda s: s.name
)
async def test_a_rate_too_large_to_decide_exactly_is_refused_as_everywhere(
    make_redis_backend: BackendFactory, strategy: Any
) -> None:
    backend = await make_redis_backend()
    rate = Rate(limit=2**52, hours=24)
    with pytest.raises(ConfigurationError) as in_memory:
        await InMemoryBackend().apply("k", strategy, rate, 1, NO_PARAMS)
    with pytest.raises(ConfigurationError) as on_redis:
        await backend.apply("k", strategy, rate, 1, NO_PARAMS)
    assert str(on_redis.value) == str(in_memory.value)


async def test_every_key_of_every_strategy_expires(
    make_redis_backend: BackendFactory, raw_redis: redis.Redis, namespace: str
) -> None:
    rates = [Rate.parse(text) for text in ("100/hour", "3/2s", "1/ms")]
    for clock in (None, ManualClock(START)):
        backend = await make_redis_backend(clock=clock, namespace=f"{namespace}-{clock is None}")
        for index, (strategy, params) in enumerate(BUILTINS):
            for rate in rates:
                key = f"{index}:{rate}"
                for _ in range(4):
                    await backend.apply(key, strategy, rate, 1, params[-1])
                await backend.refund(key, strategy, rate, 1, params[-1])
                await backend.peek(key, strategy, rate, 1, params[-1])
                await backend.apply_many(
                    [Hit(key, strategy, rate, 1, params[0]), Hit(f"{key}+", strategy, rate, 2, {})]
                )
    keys = [key async for key in raw_redis.scan_iter(match=f"{namespace}-*", count=1000)]
    assert len(keys) >= len(BUILTINS) * 2 * 2
    ttls = [await raw_redis.pttl(key) for key in keys]
    # A key whose 1 ms TTL ran out between the scan and PTTL is gone (-2): fine. -1 is not.
    assert all(ttl > 0 or ttl == -2 for ttl in ttls), dict(zip(keys, ttls, strict=True))
    assert sum(ttl > 0 for ttl in ttls) >= len(BUILTINS) * 2 * 2
    log_keys = [key for key in keys if key.split(b":")[1] == b"1"]  # BUILTINS[1]: the log
    assert {await raw_redis.type(key) for key in log_keys} <= {b"list", b"none"}

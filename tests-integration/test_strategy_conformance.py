"""Every (backend, strategy) pair against the strategy's naive oracle, on a manual clock.

A hypothesis state machine plays random programs — advance the clock by whole
milliseconds, hit with a cost, peek — against a real backend of each kind and against
the oracle (`oracles`, `oracles_windows`, `oracles_buckets`), and requires every decision
to be *exactly* the oracle's: allowed, limit, remaining, reset_after, retry_after and
delay (the times are whole milliseconds on both sides, so the floats are equal too).

Hypothesis drives the machine from a worker thread; each backend call is sent to the
test's event loop, where the backend lives (network clients belong to their loop).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import pytest
from conformance_cases import CASES, Case
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from oracles import Oracle

from traffik import Decision, ManualClock, Rate, ThrottleBackend

T = TypeVar("T")

_keys = itertools.count()

# A day's worth of start times: every hour of the day, every offset within a window.
START = 1_700_000_000_000
STARTS = st.integers(START, START + 86_400_000)
COSTS = st.one_of(st.just(1), st.integers(0, 10))
# Clock moves: a few ms, a share of the period, or minutes to hours.
STEPS = st.one_of(
    st.tuples(st.just("ms"), st.integers(0, 3)),
    st.tuples(st.just("percent"), st.integers(1, 250)),
    st.tuples(st.just("minutes"), st.integers(1, 600)),
)
# The wait before a hit: short, so that a window fills with hits at different times.
GAPS = st.one_of(
    st.tuples(st.just("ms"), st.integers(0, 3)),
    st.tuples(st.just("percent"), st.integers(1, 40)),
)

# Examples and decisions actually run, per case id (printed at the end of each test).
EXAMPLES: dict[str, int] = {}
DECISIONS: dict[str, int] = {}


def machine_for(
    case: Case, backend: ThrottleBackend, clock: ManualClock, loop: asyncio.AbstractEventLoop
) -> type[RuleBasedStateMachine]:
    class StrategyMachine(RuleBasedStateMachine):
        """One client of one throttle; each example uses a fresh key."""

        def __init__(self) -> None:
            super().__init__()
            self.key = f"conformance:{{{next(_keys)}}}:{case.strategy.name}"
            self.now = 0
            self.rate = Rate()
            self.oracle: Oracle | None = None
            EXAMPLES[case.id] += 1

        def run(self, call: Coroutine[Any, Any, T]) -> T:
            clock.set(self.now / 1000)
            return asyncio.run_coroutine_threadsafe(call, loop).result(timeout=60)

        @initialize(start=STARTS, rate=case.rates)
        def start(self, start: int, rate: Rate) -> None:
            self.now, self.rate = start, rate
            self.oracle = case.oracle(rate)

        @rule(step=STEPS)
        def advance(self, step: tuple[str, int]) -> None:
            unit, amount = step
            if unit == "ms":
                self.now += amount
            elif unit == "percent":  # of the period
                self.now += max(1, self.rate.period_ms * amount // 100)
            else:
                self.now += amount * 60_000

        @precondition(lambda self: self.oracle is not None)
        @rule(gap=GAPS, cost=COSTS, params=case.params)
        def hit_later(self, gap: tuple[str, int], cost: int, params: Mapping[str, object]) -> None:
            self.advance(gap)
            self.hit(cost, params)

        def hit(self, cost: int, params: Mapping[str, object]) -> None:
            assert self.oracle is not None
            expected = self.oracle.hit(self.now, cost, params)
            actual = self.run(backend.apply(self.key, case.strategy, self.rate, cost, params))
            DECISIONS[case.id] += 1
            assert actual == expected, describe(self, "hit", cost, params, actual, expected)

        @precondition(lambda self: self.oracle is not None)
        @rule(cost=COSTS, params=case.params, times=st.integers(2, 8))
        def burst(self, cost: int, params: Mapping[str, object], times: int) -> None:
            for _ in range(times):
                self.hit(cost, params)

        @precondition(lambda self: self.oracle is not None)
        @rule(cost=COSTS, params=case.params)
        def peek(self, cost: int, params: Mapping[str, object]) -> None:
            assert self.oracle is not None
            expected = self.oracle.decide(self.now, cost, params)
            actual = self.run(backend.peek(self.key, case.strategy, self.rate, cost, params))
            DECISIONS[case.id] += 1
            assert actual == expected, describe(self, "peek", cost, params, actual, expected)

    return StrategyMachine


def describe(
    machine: Any, what: str, cost: int, params: object, actual: Decision, expected: Decision
) -> str:
    return (
        f"{what} cost={cost} params={params} at {machine.now} ({machine.rate!r}, "
        f"{len(machine.oracle.events)} admitted so far):\n  backend {actual}\n  oracle  {expected}"
    )


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_decisions_match_the_oracle(case: Case, backend_kind: str, make_backend: Any) -> None:
    clock = ManualClock(START / 1000)
    backend = await make_backend(clock)
    machine = machine_for(case, backend, clock, asyncio.get_running_loop())
    profile = "traffik-conformance" if backend_kind == "memory" else "traffik-conformance-network"
    EXAMPLES[case.id] = DECISIONS[case.id] = 0
    await asyncio.to_thread(
        run_state_machine_as_test, machine, settings=settings.get_profile(profile)
    )
    examples = EXAMPLES[case.id]
    print(f"{case.id} on {backend_kind}: {examples} examples, {DECISIONS[case.id]} decisions")
    assert examples >= settings.get_profile(profile).max_examples

"""The conformance state machine: a backend's decisions against a strategy's naive oracle.

A hypothesis state machine plays random programs — advance the clock by whole
milliseconds, hit with a cost, burst, peek — against a real backend and against the
case's oracle, and requires every decision to be *exactly* the oracle's: allowed, limit,
remaining, reset_after, retry_after and delay (the times are whole milliseconds on both
sides, so the floats are equal too).

Backend calls go through ``run``, which takes a coroutine and returns its result: the
suite passes ``loop.run_until_complete`` of the loop the backend lives on (network
clients belong to their loop); a caller driving the machine from another thread can pass
``lambda call: asyncio.run_coroutine_threadsafe(call, loop).result()``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from traffik import Decision, ManualClock, Rate, ThrottleBackend
from traffik.testing.cases import Case
from traffik.testing.oracles import Oracle

__all__ = [
    "CONFORMANCE_SETTINGS",
    "NETWORK_CONFORMANCE_SETTINGS",
    "START_MS",
    "Runner",
    "Tally",
    "check_decisions",
]

T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, Any]], Any]
"""Runs a coroutine to completion on the backend's event loop and returns its result."""

# One failure, shrunk, is reported (not a group of every distinct one found).
_BASE_SETTINGS: Final = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    report_multiple_bugs=False,
)
CONFORMANCE_SETTINGS: Final = settings(_BASE_SETTINGS, max_examples=60, stateful_step_count=40)
"""The same examples on every run (CI stays deterministic): 60 programs of up to 40 steps."""

NETWORK_CONFORMANCE_SETTINGS: Final = settings(
    _BASE_SETTINGS, max_examples=25, stateful_step_count=25
)
"""Fewer, shorter programs, for backends whose every call is a network round trip."""

_keys = itertools.count()

START_MS: Final = 1_700_000_000_000
"""Where the clock of every program starts, give or take a day (whole milliseconds)."""

STARTS: Final = st.integers(START_MS, START_MS + 86_400_000)  # every hour, every offset
COSTS: Final = st.one_of(st.just(1), st.integers(0, 10))
# Clock moves: a few ms, a share of the period, or minutes to hours.
STEPS: Final = st.one_of(
    st.tuples(st.just("ms"), st.integers(0, 3)),
    st.tuples(st.just("percent"), st.integers(1, 250)),
    st.tuples(st.just("minutes"), st.integers(1, 600)),
)
# The wait before a hit: short, so that a window fills with hits at different times.
GAPS: Final = st.one_of(
    st.tuples(st.just("ms"), st.integers(0, 3)),
    st.tuples(st.just("percent"), st.integers(1, 40)),
)


@dataclass
class Tally:
    """What one check ran: programs (examples) and backend decisions compared."""

    examples: int = 0
    decisions: int = 0


def machine_for(
    case: Case, backend: ThrottleBackend, clock: ManualClock, run: Runner, tally: Tally
) -> type[RuleBasedStateMachine]:
    """A state machine class for one case on one backend (each example: a fresh key)."""

    class StrategyMachine(RuleBasedStateMachine):
        """One client of one throttle."""

        def __init__(self) -> None:
            super().__init__()
            self.key = f"conformance:{{{next(_keys)}}}:{case.strategy.name}"
            self.now = 0
            self.rate = Rate()
            self.oracle: Oracle | None = None
            tally.examples += 1

        def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
            clock.set(self.now / 1000)
            result: T = run(coroutine)
            return result

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
            actual = self.call(backend.apply(self.key, case.strategy, self.rate, cost, params))
            tally.decisions += 1
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
            actual = self.call(backend.peek(self.key, case.strategy, self.rate, cost, params))
            tally.decisions += 1
            assert actual == expected, describe(self, "peek", cost, params, actual, expected)

    StrategyMachine.__name__ = f"StrategyMachine[{case.id}]"
    return StrategyMachine


def describe(
    machine: Any, what: str, cost: int, params: object, actual: Decision, expected: Decision
) -> str:
    return (
        f"{what} cost={cost} params={params} at {machine.now} ({machine.rate!r}, "
        f"{len(machine.oracle.events)} admitted so far):\n  backend {actual}\n  oracle  {expected}"
    )


def check_decisions(
    case: Case,
    backend: ThrottleBackend,
    clock: ManualClock,
    run: Runner,
    *,
    settings: settings = CONFORMANCE_SETTINGS,
) -> Tally:
    """Play random programs of ``case`` on ``backend``; fail on the first disagreement.

    ``clock`` must be the clock ``backend`` reads (the machine sets it before every call).
    Returns what was run; raises AssertionError (with the shrunk program) on a mismatch.
    """
    tally = Tally()
    machine = machine_for(case, backend, clock, run, tally)
    run_state_machine_as_test(machine, settings=settings)
    return tally

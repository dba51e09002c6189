from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traffik import Concurrency, InMemoryBackend, ManualClock, Rate
from traffik.strategies import NO_PARAMS

RATE = Rate(limit=3, seconds=10)  # three slots, each leased for 10 s


def test_slots_are_taken_and_given_back() -> None:
    strategy = Concurrency()
    state = None
    for expected in (2, 1, 0):
        state, decision, ttl = strategy.decide(state, 0, RATE, 1, NO_PARAMS)
        assert decision.allowed
        assert decision.remaining == expected
        assert ttl == 10_000
    _, refused, _ = strategy.decide(state, 5, RATE, 1, NO_PARAMS)
    assert not refused.allowed
    assert refused.retry_after == 1.0  # the hint: slots usually come back sooner
    state, _ = strategy.refund(state, 5, RATE, 1, NO_PARAMS)
    _, decision, _ = strategy.decide(state, 5, RATE, 1, NO_PARAMS)
    assert decision.allowed


def test_a_lease_frees_its_slot_when_it_runs_out() -> None:
    strategy = Concurrency(retry_after_ms=60_000)
    state, _, _ = strategy.decide(None, 0, RATE, 3, NO_PARAMS)
    _, refused, _ = strategy.decide(state, 9_500, RATE, 1, NO_PARAMS)
    assert refused.retry_after == 0.5  # the lease ends before the hint
    _, decision, _ = strategy.decide(state, 10_000, RATE, 1, NO_PARAMS)
    assert decision.allowed
    assert decision.remaining == 2


def test_a_refund_keeps_the_longest_leases() -> None:
    strategy = Concurrency()
    state, _, _ = strategy.decide(None, 0, RATE, 1, NO_PARAMS)
    state, _, _ = strategy.decide(state, 4_000, RATE, 1, NO_PARAMS)
    state, ttl = strategy.refund(state, 5_000, RATE, 1, NO_PARAMS)
    assert state == (14_000,)
    assert ttl == 9_000
    assert strategy.refund(state, 5_000, RATE, 1, NO_PARAMS) == (None, 1)
    assert strategy.refund(None, 5_000, RATE, 1, NO_PARAMS) == (None, 1)


def test_more_than_every_slot_waits_forever() -> None:
    _, decision, _ = Concurrency().decide(None, 0, RATE, 4, NO_PARAMS)
    assert not decision.allowed
    assert math.isinf(decision.retry_after)


def test_state_round_trips() -> None:
    strategy = Concurrency()
    state, _, _ = strategy.decide(None, 7, RATE, 2, NO_PARAMS)
    assert state is not None
    assert strategy.encode(state) == b"10007,10007"
    assert strategy.decode(strategy.encode(state)) == state


@pytest.mark.parametrize("hint", [0, -1, 1.5, True])
def test_bad_hint_is_named(hint: object) -> None:
    with pytest.raises(ValueError, match=repr(hint)):
        Concurrency(retry_after_ms=hint)  # type: ignore[arg-type]


operations = st.lists(
    st.tuples(st.sampled_from(["take", "give"]), st.integers(0, 4_000), st.integers(1, 3)),
    max_size=60,
)


@given(operations)
def test_against_a_list_of_leases(steps: list[tuple[str, int, int]]) -> None:
    """The strategy agrees with a naive list of lease expiry times."""
    strategy = Concurrency()
    state = None
    leases: list[int] = []  # the oracle
    now = 0
    for operation, elapsed, cost in steps:
        now += elapsed
        leases = [expiry for expiry in leases if expiry > now]
        if operation == "take":
            state, decision, ttl = strategy.decide(state, now, RATE, cost, NO_PARAMS)
            admitted = len(leases) + cost <= RATE.limit
            assert decision.allowed == admitted
            if admitted:
                leases += [now + RATE.period_ms] * cost
            assert decision.remaining == RATE.limit - len(leases)
            assert ttl >= 1
        else:
            state, ttl = strategy.refund(state, now, RATE, cost, NO_PARAMS)
            leases = sorted(leases)[cost:]
            assert ttl >= 1
        live = tuple(expiry for expiry in (state or ()) if expiry > now)
        assert sorted(leases) == list(live)


async def test_on_the_in_memory_backend() -> None:
    clock = ManualClock(1_000.0)
    backend = InMemoryBackend(clock=clock)
    strategy = Concurrency()
    for _ in range(3):
        assert (await backend.apply("k", strategy, RATE, 1, NO_PARAMS)).allowed
    assert not (await backend.apply("k", strategy, RATE, 1, NO_PARAMS)).allowed
    await backend.refund("k", strategy, RATE, 1, NO_PARAMS)
    assert (await backend.apply("k", strategy, RATE, 1, NO_PARAMS)).allowed
    clock.advance(10)
    assert (await backend.peek("k", strategy, RATE, 3, NO_PARAMS)).allowed

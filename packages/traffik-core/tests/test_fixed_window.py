from __future__ import annotations

import math

from traffik import Decision, FixedWindow, Rate
from traffik.strategies import NO_PARAMS

RATE = Rate.parse("2/s")


def run(hits: list[tuple[int, int]], rate: Rate = RATE) -> list[bool]:
    """Apply (time_ms, cost) hits in order, threading the state; return allowed flags."""
    strategy = FixedWindow()
    state = None
    allowed = []
    for now, cost in hits:
        state, decision, ttl = strategy.decide(state, now, rate, cost, NO_PARAMS)
        assert ttl >= 1
        allowed.append(decision.allowed)
    return allowed


def test_two_per_aligned_second() -> None:
    # Hits at 0.9 s, 0.95 s, 0.99 s: the third is refused. At 1.0 s a new window opens.
    assert run([(900, 1), (950, 1), (990, 1), (1000, 1), (1500, 1), (1999, 1), (2000, 1)]) == [
        True, True, False, True, True, False, True,
    ]  # fmt: skip


def test_retry_after_is_the_real_time_to_the_next_window() -> None:
    strategy = FixedWindow()
    state, _, _ = strategy.decide(None, 10_250, RATE, 2, NO_PARAMS)
    state, decision, ttl = strategy.decide(state, 10_400, RATE, 1, NO_PARAMS)
    assert decision == Decision(False, 2, 0, 0.6, 0.6)
    assert ttl == 600


def test_refused_requests_consume_nothing() -> None:
    strategy = FixedWindow()
    state, _, _ = strategy.decide(None, 0, RATE, 1, NO_PARAMS)
    refused_state, decision, _ = strategy.decide(state, 1, RATE, 2, NO_PARAMS)
    assert not decision.allowed
    assert refused_state is state
    _, decision, _ = strategy.decide(refused_state, 2, RATE, 1, NO_PARAMS)
    assert decision.allowed
    assert decision.remaining == 0


def test_cost_above_the_limit_can_never_succeed() -> None:
    _, decision, _ = FixedWindow().decide(None, 0, RATE, 3, NO_PARAMS)
    assert not decision.allowed
    assert math.isinf(decision.retry_after)


def test_encode_decode_round_trip() -> None:
    strategy = FixedWindow()
    state, _, _ = strategy.decide(None, 1_700_000_000_123, RATE, 1, NO_PARAMS)
    assert state is not None
    assert strategy.decode(strategy.encode(state)) == state
    assert strategy.encode(state) == b"1700000000,1"


def test_refund_only_within_the_same_window() -> None:
    strategy = FixedWindow()
    state, _, _ = strategy.decide(None, 100, RATE, 2, NO_PARAMS)
    refunded, ttl = strategy.refund(state, 200, RATE, 1, NO_PARAMS)
    assert refunded == (0, 1)
    assert ttl == 800
    later, _ = strategy.refund(state, 1200, RATE, 1, NO_PARAMS)
    assert later is state

from __future__ import annotations

import math

import pytest

from traffik import Rate, SlidingWindowLog
from traffik.strategies import NO_PARAMS
from traffik.strategies.sliding_window_log import LogState

RATE = Rate.parse("2/s")
STRATEGY = SlidingWindowLog()


def test_the_window_slides_with_time() -> None:
    state = None
    flags = []
    for now in (900, 950, 1000, 1899, 1900, 1950, 1951):
        new_state, decision, ttl = STRATEGY.decide(state, now, RATE, 1, NO_PARAMS)
        assert ttl >= 1
        flags.append(decision.allowed)
        state = new_state if decision.allowed else state
    # 0.9 s and 0.95 s fill it; 1.0 s is refused; 1.9 s sees 0.9 s gone, 1.95 s sees 0.95 s.
    assert flags == [True, True, False, False, True, True, False]


def test_retry_after_is_when_enough_old_entries_have_left() -> None:
    rate = Rate.parse("5/s")
    state = LogState.of([(0, 2), (100, 1), (300, 2)])
    _, decision, ttl = STRATEGY.decide(state, 400, rate, 1, NO_PARAMS)
    assert decision.allowed is False
    assert decision.remaining == 0
    assert decision.retry_after == 0.6  # at 1.0 s the (0, 2) entry leaves
    assert decision.reset_after == 0.9  # everything has left at 1.3 s
    assert ttl == 900
    _, decision, _ = STRATEGY.decide(state, 400, rate, 3, NO_PARAMS)
    assert decision.retry_after == 0.7  # 3 units need (0, 2) and (100, 1) gone
    _, decision, _ = STRATEGY.decide(state, 400, rate, 6, NO_PARAMS)
    assert math.isinf(decision.retry_after)


def test_refused_requests_are_not_logged() -> None:
    state, _, _ = STRATEGY.decide(None, 0, RATE, 2, NO_PARAMS)
    assert state is not None
    for now in range(1, 900, 50):
        unchanged, decision, _ = STRATEGY.decide(state, now, RATE, 1, NO_PARAMS)
        assert unchanged is state
        assert not decision.allowed
    assert state.entries() == ((0, 2),)


def test_encoding_is_readable_and_merges_a_millisecond() -> None:
    state = LogState.of([(1_700_000_000_123, 2), (1_700_000_000_138, 1), (1_700_000_000_138, 3)])
    data = STRATEGY.encode(state)
    assert data == b"1700000000123*2,15*4"
    decoded = STRATEGY.decode(data)
    assert decoded == state
    assert decoded.entries() == ((1_700_000_000_123, 2), (1_700_000_000_138, 4))
    with pytest.raises(ValueError):
        STRATEGY.decode(b"12*0")


def test_refund_gives_back_the_newest_units() -> None:
    rate = Rate.parse("10/s")
    state = LogState.of([(0, 2), (100, 3), (200, 1)])
    refunded, ttl = STRATEGY.refund(state, 250, rate, 2, NO_PARAMS)
    assert refunded is not None
    assert refunded.entries() == ((0, 2), (100, 2))
    assert ttl == 850
    assert state.entries() == ((0, 2), (100, 3), (200, 1))  # the original is untouched
    assert STRATEGY.refund(state, 250, rate, 6, NO_PARAMS) == (None, 1)
    assert STRATEGY.refund(state, 5_000, rate, 1, NO_PARAMS) == (None, 1)  # all expired


def test_versions_share_entries_without_seeing_each_other() -> None:
    """A discarded admission (a peek, an aborted multi-limit check) leaves no trace."""
    rate = Rate.parse("3/s")
    base, _, _ = STRATEGY.decide(None, 0, rate, 1, NO_PARAMS)
    assert base is not None
    peeked, _, _ = STRATEGY.decide(base, 10, rate, 1, NO_PARAMS)
    branch, _, _ = STRATEGY.decide(peeked, 20, rate, 1, NO_PARAMS)  # settles `peeked`
    stored, _, _ = STRATEGY.decide(base, 30, rate, 2, NO_PARAMS)  # from the older version
    assert stored is not None
    assert branch is not None
    assert base.entries() == ((0, 1),)
    assert stored.entries() == ((0, 1), (30, 2))
    assert branch.entries() == ((0, 1), (10, 1), (20, 1))
    assert not STRATEGY.decide(stored, 40, rate, 1, NO_PARAMS)[1].allowed
    assert STRATEGY.decide(branch, 40, rate, 1, NO_PARAMS)[1].allowed is False


@pytest.mark.parametrize("limit", [100, 1_000, 10_000])
def test_each_decision_costs_amortised_constant_work(limit: int) -> None:
    """Counted, not timed: entry visits, appends and copies per decision stay flat as the
    log grows a hundredfold. Traffic at 1.5 times the rate for six windows, a peek before
    every hit, and every tenth admission thrown away (an aborted multi-limit check)."""
    rate = Rate(limit=limit, seconds=1)
    state: LogState | None = None
    decisions = 0
    largest_buffer = 0
    for i in range(6 * limit):
        now = i * 2_000 // (3 * limit)
        STRATEGY.decide(state, now, rate, 1, NO_PARAMS)
        new_state, decision, _ = STRATEGY.decide(state, now, rate, 1, NO_PARAMS)
        decisions += 2
        if decision.allowed and i % 10:
            state = new_state
        if state is not None:
            largest_buffer = max(largest_buffer, len(state._buffer.times) - 2 * len(state))
    assert state is not None
    assert len(state) == limit  # the window is full, as it should be
    assert state.operations / decisions < 1.5
    assert largest_buffer <= 33  # expired entries are compacted away: memory stays O(limit)


def test_a_lagging_clock_is_treated_as_the_newest_entry_time() -> None:
    state, _, _ = STRATEGY.decide(None, 5_000, RATE, 1, NO_PARAMS)
    later, decision, _ = STRATEGY.decide(state, 4_000, RATE, 1, NO_PARAMS)
    assert decision.allowed
    assert later is not None
    assert later.entries() == ((5_000, 2),)  # logged at 5 s, merged with the other

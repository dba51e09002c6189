from __future__ import annotations

import math

from traffik import Decision, Rate, SlidingWindowCounter
from traffik.strategies import NO_PARAMS

RATE = Rate.parse("10/s")
STRATEGY = SlidingWindowCounter()


def test_the_previous_window_fades_linearly() -> None:
    # 10 used in [0, 1 s); at 1.25 s the estimate is 7.5: 2 more fit, the third does not.
    state: tuple[int, int, int] | None = (0, 0, 10)
    state, first, _ = STRATEGY.decide(state, 1_250, RATE, 1, NO_PARAMS)
    state, second, _ = STRATEGY.decide(state, 1_250, RATE, 1, NO_PARAMS)
    _, third, _ = STRATEGY.decide(state, 1_250, RATE, 1, NO_PARAMS)
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert second == Decision(True, 10, 0, 1.75, 0.0)  # floor(10 - 9.5) = 0
    # It passes when 10 * (1 - e) + 2 + 1 <= 10: e >= 0.3, i.e. at 1.3 s.
    assert third.retry_after == 0.05
    assert state == (1, 10, 2)


def test_retry_in_the_next_window_and_the_one_after() -> None:
    _, decision, _ = STRATEGY.decide((0, 0, 10), 500, RATE, 4, NO_PARAMS)
    # Next window: 10 * (1 - e) + 4 <= 10 from e = 0.4, i.e. at 1.4 s.
    assert decision.retry_after == 0.9
    _, decision, _ = STRATEGY.decide((0, 0, 10), 500, RATE, 10, NO_PARAMS)
    assert decision.retry_after == 1.5  # a full budget only once the window has faded
    _, decision, _ = STRATEGY.decide((0, 0, 10), 500, RATE, 11, NO_PARAMS)
    assert math.isinf(decision.retry_after)


def test_refused_requests_count_nothing() -> None:
    state = (0, 0, 10)
    for now in range(0, 1000, 100):
        unchanged, decision, ttl = STRATEGY.decide(state, now, RATE, 1, NO_PARAMS)
        assert not decision.allowed
        assert unchanged is state
        assert ttl == 2_000 - now


def test_state_matters_until_the_end_of_the_next_window() -> None:
    state, decision, ttl = STRATEGY.decide(None, 1_300, RATE, 1, NO_PARAMS)
    assert (state, ttl, decision.reset_after) == ((1, 0, 1), 1_700, 1.7)
    # Two windows on, the state is as good as none.
    assert STRATEGY.decide(state, 3_000, RATE, 10, NO_PARAMS)[1].allowed


def test_refund_takes_from_the_current_window_first() -> None:
    refunded, ttl = STRATEGY.refund((1, 4, 2), 1_500, RATE, 3, NO_PARAMS)
    assert (refunded, ttl) == ((1, 3, 0), 500)
    rolled, _ = STRATEGY.refund((0, 4, 2), 1_500, RATE, 1, NO_PARAMS)
    assert rolled == (1, 1, 0)  # last window's 2 became the previous count
    assert STRATEGY.refund((1, 0, 1), 1_500, RATE, 1, NO_PARAMS) == (None, 1)

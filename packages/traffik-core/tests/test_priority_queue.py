from __future__ import annotations

import math

import pytest

from traffik import ConfigurationError, Priority, PriorityQueue, Rate
from traffik.strategies import NO_PARAMS

RATE = Rate.parse("10/s")


def test_priorities_are_an_int_enum() -> None:
    assert [int(p) for p in Priority] == [1, 2, 3, 4]
    assert Priority.LOW < Priority.CRITICAL


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Priority.HIGH, Priority.HIGH),
        (4, Priority.CRITICAL),
        ("low", Priority.LOW),
        ("Critical", Priority.CRITICAL),
        (None, Priority.NORMAL),
        (0, Priority.NORMAL),
        (True, Priority.NORMAL),
        ("urgent", Priority.NORMAL),
    ],
)
def test_the_priority_comes_from_the_params(value: object, expected: Priority) -> None:
    assert PriorityQueue().priority_of({"priority": value}) is expected


def test_usage_counts_only_against_equal_or_lower_priorities() -> None:
    strategy = PriorityQueue()
    state = None
    for priority, count in ((Priority.LOW, 6), (Priority.HIGH, 4)):
        for _ in range(count):
            state, decision, _ = strategy.decide(state, 0, RATE, 1, {"priority": priority})
            assert decision.allowed
    assert state == (0, 6, 0, 4, 0)
    low = strategy.decide(state, 0, RATE, 1, {"priority": Priority.LOW})[1]
    assert (low.allowed, low.retry_after) == (False, 1.0)
    normal = strategy.decide(state, 0, RATE, 6, NO_PARAMS)[1]  # sees HIGH's 4 only
    assert (normal.allowed, normal.remaining) == (True, 0)
    assert strategy.decide(state, 0, RATE, 6, {"priority": "critical"})[1].allowed


def test_max_queue_size_caps_the_window_over_all_priorities() -> None:
    strategy = PriorityQueue(max_queue_size=12)
    state = None
    for priority in (Priority.LOW, Priority.CRITICAL):
        state, decision, _ = strategy.decide(state, 0, RATE, 6, {"priority": priority})
        assert decision.allowed
    refused = strategy.decide(state, 0, RATE, 1, {"priority": Priority.CRITICAL})[1]
    assert (refused.allowed, refused.remaining) == (False, 0)
    assert math.isinf(strategy.decide(None, 0, RATE, 11, NO_PARAMS)[1].retry_after)
    tight = PriorityQueue(max_queue_size=3)
    assert math.isinf(tight.decide(None, 0, RATE, 4, NO_PARAMS)[1].retry_after)


def test_refund_goes_to_the_request_priority() -> None:
    refunded, ttl = PriorityQueue().refund((0, 1, 2, 3, 4), 400, RATE, 2, {"priority": 3})
    assert (refunded, ttl) == ((0, 1, 2, 1, 4), 600)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"default_priority": 7}, "default_priority"), ({"max_queue_size": 0}, "max_queue_size")],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        PriorityQueue(**kwargs)  # type: ignore[arg-type]

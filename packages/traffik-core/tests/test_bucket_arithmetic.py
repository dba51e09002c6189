"""The shared bucket helpers: exact at their bounds, and never large whatever the gap."""

from __future__ import annotations

from traffik.strategies._bucket import drain, refill


def test_refill_reaches_exactly_full_at_the_boundary() -> None:
    # 5 units missing at 3 per ms: full after ceil(5 / 3) = 2 ms, never beyond.
    assert refill(10, 100, 101, 3, 15) == (13, 101)
    assert refill(10, 100, 102, 3, 15) == (15, 102)
    assert refill(10, 100, 10**15, 3, 15) == (15, 10**15)  # no huge product on the way


def test_drain_reaches_exactly_empty_at_the_boundary() -> None:
    assert drain(5, 100, 101, 3) == (2, 101)
    assert drain(5, 100, 102, 3) == (0, 102)
    assert drain(5, 100, 10**15, 3) == (0, 10**15)


def test_time_never_runs_backwards() -> None:
    assert refill(10, 100, 90, 3, 15) == (10, 100)
    assert drain(5, 100, 90, 3) == (5, 100)

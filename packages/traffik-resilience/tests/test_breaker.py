from __future__ import annotations

import logging

import pytest

from traffik import ConfigurationError, ManualClock
from traffik.resilience import CircuitBreaker, CircuitState


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(0.0)


def test_opens_after_consecutive_failures_only(clock: ManualClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=10, clock=clock)
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()  # resets the run
    for _ in range(2):
        breaker.record_failure()
    assert breaker.is_closed
    breaker.record_failure()
    assert breaker.is_open
    assert not breaker.allow_execution()


def test_half_open_allows_a_single_probe_then_closes(clock: ManualClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=10, clock=clock)
    breaker.record_failure()
    clock.advance(9.999)
    assert not breaker.allow_execution()
    clock.advance(0.001)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow_execution()  # the probe
    assert not breaker.allow_execution()  # nobody else while it is in flight
    breaker.record_success()
    assert breaker.is_closed
    assert all(breaker.allow_execution() for _ in range(5))


def test_a_failed_probe_reopens_for_another_full_timeout(clock: ManualClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=10, clock=clock)
    breaker.record_failure()
    clock.advance(10)
    assert breaker.allow_execution()
    breaker.record_failure()
    assert breaker.is_open
    clock.advance(9)
    assert not breaker.allow_execution()
    clock.advance(1)
    assert breaker.allow_execution()


def test_success_threshold_needs_that_many_probes_in_a_row(clock: ManualClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=1, success_threshold=2, clock=clock
    )
    breaker.record_failure()
    clock.advance(1)
    assert breaker.allow_execution()
    breaker.record_success()
    assert breaker.is_half_open
    assert breaker.allow_execution()
    breaker.record_success()
    assert breaker.is_closed


def test_an_abandoned_probe_does_not_wedge_the_breaker(clock: ManualClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1, clock=clock)
    breaker.record_failure()
    clock.advance(1)
    assert breaker.allow_execution()
    breaker.record_abandoned()  # the probe was cancelled
    assert breaker.is_open
    clock.advance(1)
    assert breaker.allow_execution()


def test_one_warning_per_state_change(clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    changes: list[tuple[CircuitState, CircuitState]] = []
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=1, name="redis", clock=clock)
    breaker.add_listener(lambda _, old, new: changes.append((old, new)))
    with caplog.at_level(logging.WARNING, logger="traffik.resilience"):
        for _ in range(50):
            breaker.record_failure()
            breaker.allow_execution()
        clock.advance(1)
        assert breaker.allow_execution()
        breaker.record_success()
    assert changes == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert "'redis' opened" in messages[0]


def test_force_and_info(clock: ManualClock) -> None:
    breaker = CircuitBreaker(clock=clock)
    breaker.force_open()
    assert breaker.info()["state"] == "open"
    breaker.force_close()
    assert breaker.info()["state"] == "closed"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"success_threshold": 1.5}, "1.5"),
        ({"recovery_timeout": 0}, "recovery_timeout"),
        ({"recovery_timeout": "5"}, "'5'"),
    ],
)
def test_bad_settings_are_named(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)

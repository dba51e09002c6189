"""Decision events: one per decision, with what an exporter needs, and nothing when unobserved."""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from traffik import (
    EXEMPTED,
    NOT_LIMITED,
    BackendError,
    ConfigurationError,
    Decision,
    DecisionEvent,
    ExemptedType,
    InMemoryBackend,
    Limiter,
    ManualClock,
    Rate,
    add_observer,
    hit_all,
    remove_observer,
)
from traffik.backends.base import Hit
from traffik.observability import OBSERVERS, observing
from traffik.strategies import Params, Strategy


class BrokenBackend(InMemoryBackend):
    """A backend whose store is down."""

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        raise ConnectionError("store unreachable")

    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        raise ConnectionError("store unreachable")


class Recorder:
    """An observer that keeps every event."""

    def __init__(self) -> None:
        self.events: list[DecisionEvent] = []

    def __call__(self, event: DecisionEvent) -> None:
        self.events.append(event)

    def outcomes(self) -> list[str]:
        return [event.outcome for event in self.events]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000.0)  # 40 s into a minute


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    with observing(recorder):
        yield recorder


@pytest.fixture(autouse=True)
def _no_observer_left_behind() -> Iterator[None]:
    before = list(OBSERVERS)  # the observed run's own observer, when it runs
    yield
    assert before == OBSERVERS, "a test left an observer registered"


async def test_hits_report_allowed_then_throttled(clock: ManualClock, recorder: Recorder) -> None:
    limiter = Limiter("emails", rate="3/min", backend=InMemoryBackend(clock=clock))
    decisions = [await limiter.decide("alice", cost=1) for _ in range(4)]
    assert recorder.outcomes() == ["allowed", "allowed", "allowed", "throttled"]
    first, last = recorder.events[0], recorder.events[-1]
    assert (first.uid, first.key, first.strategy, first.cost) == (
        "emails",
        "emails:{alice}:fixed_window",
        "fixed_window",
        1,
    )
    assert [event.remaining for event in recorder.events] == [2, 1, 0, 0]
    assert (last.allowed, last.limit, last.retry_after) == (False, 3, 20.0)
    assert last.used == 3
    assert [event.retry_after for event in recorder.events] == [d.retry_after for d in decisions]
    for event in recorder.events:
        assert event.latency is not None
        assert event.latency >= 0
        assert event.throttle is limiter
        assert not event.shadow
        assert not event.peek
        assert event.error is None


async def test_short_circuits_report_exempted_without_a_backend(
    clock: ManualClock, recorder: Recorder
) -> None:
    async def exempt_admin(key: str) -> str | ExemptedType:
        return EXEMPTED if key == "admin" else key

    backend = InMemoryBackend(clock=clock)
    limited = Limiter("a", rate="1/s", backend=backend, identifier=exempt_admin)
    unlimited = Limiter("b", rate=Rate(), backend=InMemoryBackend(clock=clock))
    await limited.decide("admin")
    await limited.decide("user", cost=0)
    await unlimited.decide("user")
    limited.disable()
    await limited.decide("user")
    assert recorder.outcomes() == ["exempted"] * 4
    assert {(e.uid, e.allowed, e.key, e.cost, e.limit, e.latency) for e in recorder.events} == {
        ("a", True, None, 0, 0, None),
        ("b", True, None, 0, 0, None),
    }


async def test_peeks_are_reported_as_peeks(clock: ManualClock, recorder: Recorder) -> None:
    limiter = Limiter("api", rate="5/min", backend=InMemoryBackend(clock=clock))
    await limiter.decide("k", cost=4)
    assert await limiter.check("k", cost=1)
    assert not await limiter.check("k", cost=2)
    assert [(e.outcome, e.peek, e.cost) for e in recorder.events] == [
        ("allowed", False, 4),
        ("allowed", True, 1),
        ("throttled", True, 2),
    ]


async def test_store_failures_report_errors_with_what_on_error_decided(
    recorder: Recorder,
) -> None:
    allow = Limiter("allow", rate="1/s", backend=BrokenBackend())
    refuse = Limiter("refuse", rate="1/s", backend=BrokenBackend(), on_error="throttle")
    strict = Limiter("strict", rate="1/s", backend=BrokenBackend(), on_error="raise")
    assert await allow.decide("k") == NOT_LIMITED
    assert not (await refuse.decide("k")).allowed
    with pytest.raises(BackendError):
        await strict.decide("k")
    assert recorder.outcomes() == ["error"] * 3
    assert [(e.uid, e.allowed) for e in recorder.events] == [
        ("allow", True),
        ("refuse", False),
        ("strict", False),
    ]
    for event in recorder.events:
        assert isinstance(event.error, ConnectionError)
        assert event.key == f"{event.uid}:{{k}}:fixed_window"
        assert event.latency is not None  # the failed call was timed


async def test_a_failing_identifier_is_one_error_not_an_exemption(
    clock: ManualClock, recorder: Recorder
) -> None:
    async def broken(key: str) -> str:
        raise LookupError("no such user")

    limiter = Limiter("api", rate="1/s", identifier=broken, backend=InMemoryBackend(clock=clock))
    assert await limiter.decide("k") == NOT_LIMITED  # on_error="allow" let it through
    (event,) = recorder.events
    assert (event.outcome, event.allowed, event.key, event.latency) == ("error", True, None, None)
    assert isinstance(event.error, LookupError)


async def test_handlers_returning_not_limited_are_still_errors(
    clock: ManualClock, recorder: Recorder
) -> None:
    async def let_through(context: Any) -> Decision:
        return NOT_LIMITED

    limiter = Limiter("api", rate="1/s", backend=BrokenBackend(), on_error=let_through)
    assert await limiter.decide("k") == NOT_LIMITED
    assert recorder.outcomes() == ["error"]


async def test_hit_all_reports_each_limit_with_the_shared_call(
    clock: ManualClock, recorder: Recorder
) -> None:
    backend = InMemoryBackend(clock=clock)
    burst = Limiter("burst", rate="2/min", backend=backend)
    daily = Limiter("daily", rate="10/d", backend=backend)
    for _ in range(3):
        await hit_all([(burst, "k"), (daily, "k")])
    assert [(e.uid, e.outcome) for e in recorder.events] == [
        ("burst", "allowed"),
        ("daily", "allowed"),
        ("burst", "allowed"),
        ("daily", "allowed"),
        ("burst", "throttled"),
        ("daily", "allowed"),  # decided as if admitted, but nothing was stored
    ]
    # Limits decided in one backend call share its latency.
    assert recorder.events[0].latency == recorder.events[1].latency


async def test_hit_all_reports_errors_and_exemptions(recorder: Recorder) -> None:
    broken = Limiter("broken", rate="1/s", backend=BrokenBackend())
    free = Limiter("free", rate=Rate(), backend=BrokenBackend())
    await hit_all([(broken, "k"), (free, "k")])
    assert [(e.uid, e.outcome) for e in recorder.events] == [
        ("free", "exempted"),
        ("broken", "error"),
    ]


async def test_a_shadow_refusal_in_hit_all_consumes_the_others(clock: ManualClock) -> None:
    backend = InMemoryBackend(clock=clock)
    real = Limiter("real", rate="5/min", backend=backend)
    trial = Limiter("trial", rate="1/min", backend=backend, shadow=True)
    first = await hit_all([(real, "k"), (trial, "k")])
    second = await hit_all([(real, "k"), (trial, "k")])
    assert [d.allowed for d in first] == [True, True]
    assert [d.allowed for d in second] == [True, False]  # the trial would have refused
    stat = await real.stat("k")
    assert stat is not None
    assert stat.remaining == 3


async def test_hit_all_only_looks_at_shadows_when_a_real_limit_refused(clock: ManualClock) -> None:
    backend = InMemoryBackend(clock=clock)
    real = Limiter("real", rate="1/min", backend=backend)
    trial = Limiter("trial", rate="5/min", backend=backend, shadow=True)
    await hit_all([(real, "k"), (trial, "k")])
    refused, looked = await hit_all([(real, "k"), (trial, "k")])
    assert not refused.allowed
    assert looked.allowed
    assert looked.remaining == 3
    stat = await trial.stat("k")
    assert stat is not None
    assert stat.remaining == 4


async def test_shadow_events_say_so(clock: ManualClock, recorder: Recorder) -> None:
    limiter = Limiter("trial", rate="1/min", backend=InMemoryBackend(clock=clock), shadow=True)
    await limiter.acquire("k")
    await limiter.acquire("k")  # refused by the limit, let through by shadow mode
    assert [(e.outcome, e.shadow) for e in recorder.events] == [
        ("allowed", True),
        ("throttled", True),
    ]


async def test_a_raising_observer_is_logged_once_and_breaks_nothing(
    clock: ManualClock, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: DecisionEvent) -> None:
        raise RuntimeError("observer bug")

    limiter = Limiter("api", rate="3/min", backend=InMemoryBackend(clock=clock))
    with caplog.at_level(logging.WARNING, logger="traffik"), observing(broken):
        decisions = [await limiter.decide("k") for _ in range(10)]
    assert [d.allowed for d in decisions] == [True] * 3 + [False] * 7
    assert len(recorder.events) == 10  # observers after it still hear every decision
    records = [r for r in caplog.records if r.name.startswith("traffik")]
    assert len(records) == 1
    assert records[0].name == "traffik.observability"
    assert "observer bug" in caplog.text


async def test_observers_that_remove_themselves_while_called(clock: ManualClock) -> None:
    calls: list[str] = []

    def once(event: DecisionEvent) -> None:
        calls.append("once")
        remove_observer(once)

    def always(event: DecisionEvent) -> None:
        calls.append("always")

    limiter = Limiter("api", rate="3/min", backend=InMemoryBackend(clock=clock))
    with observing(always):
        add_observer(once)
        add_observer(once)  # added once only
        await limiter.decide("k")
        await limiter.decide("k")
    assert calls == ["always", "once", "always"]


def test_observers_must_be_callable_and_events_are_frozen() -> None:
    with pytest.raises(ConfigurationError, match="42"):
        add_observer(42)  # type: ignore[arg-type]
    remove_observer(print)  # never added: nothing happens
    event = DecisionEvent(
        uid="api",
        outcome="allowed",
        allowed=True,
        key="api:{k}:fixed_window",
        strategy="fixed_window",
        cost=1,
        limit=10,
        remaining=1,
        retry_after=0.0,
        latency=None,
        shadow=False,
        peek=False,
        error=None,
        throttle=Limiter("api", rate="10/min"),
    )
    assert event.used == 9
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.uid = "other"  # type: ignore[misc]


class HotPathSpy:
    """Counts what only observation needs: clock reads from traffik code, event objects."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock_reads = 0
        self.events = 0
        real_perf_counter = time.perf_counter
        real_init = DecisionEvent.__init__

        def perf_counter() -> float:
            if sys._getframe(1).f_globals.get("__name__", "").startswith("traffik"):
                self.clock_reads += 1
            return real_perf_counter()

        def init(event: DecisionEvent, *args: Any, **kwargs: Any) -> None:
            self.events += 1
            real_init(event, *args, **kwargs)

        monkeypatch.setattr(time, "perf_counter", perf_counter)
        monkeypatch.setattr(DecisionEvent, "__init__", init)


async def exercise(clock: ManualClock) -> None:
    """Every decision path of the core, refusals and failures included."""
    backend = InMemoryBackend(clock=clock)
    limiter = Limiter("api", rate="2/min", backend=backend)
    other = Limiter("other", rate="1/min", backend=backend, shadow=True)
    for _ in range(3):
        await limiter.decide("k")
        await limiter.peek("k")
        await hit_all([(limiter, "j"), (other, "j")])
    await Limiter("down", rate="1/s", backend=BrokenBackend()).decide("k")
    await Limiter("free", rate=Rate(), backend=backend).decide("k")


async def test_without_observers_the_hot_path_reads_no_clock_and_builds_no_event(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = HotPathSpy(monkeypatch)
    installed = OBSERVERS[:]  # the observed run's own observer, when it runs
    OBSERVERS.clear()
    try:
        await exercise(clock)
    finally:
        OBSERVERS[:] = installed
    assert (spy.clock_reads, spy.events) == (0, 0)


async def test_the_hot_path_spy_sees_observation(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch, recorder: Recorder
) -> None:
    # The same run with an observer: the spy counts what observation costs, so the
    # test above cannot pass for want of looking.
    spy = HotPathSpy(monkeypatch)
    await exercise(clock)
    assert spy.events == len(recorder.events) == 3 * 4 + 2
    assert spy.clock_reads == 2 * (3 * 4 + 1)  # two per backend call (the shadow alone)
    assert all((e.latency is None) == (e.outcome == "exempted") for e in recorder.events)

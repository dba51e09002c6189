"""The kit on the in-memory backend: it passes a correct backend and fails broken ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
from hypothesis import settings

from traffik import Decision, ManualClock, Rate, ThrottleBackend
from traffik.backends.base import Hit
from traffik.backends.inmemory import InMemoryBackend
from traffik.strategies.base import Params, Strategy
from traffik.testing import (
    CASES,
    CONFORMANCE_SETTINGS,
    BackendConformance,
    Case,
    check_decisions,
)

QUICK = settings(CONFORMANCE_SETTINGS, max_examples=10, stateful_step_count=15)


class TestInMemoryBackend(BackendConformance):
    """The class as an author uses it (a subset of the cases, to stay quick here)."""

    cases: ClassVar[Sequence[Case]] = [
        case for case in CASES if case.id in ("fixed_window", "gcra", "tiered_rate")
    ]
    conformance_settings = QUICK

    async def make_backend(self, clock: ManualClock) -> ThrottleBackend:
        return InMemoryBackend(clock=clock)


class PeekConsumes(InMemoryBackend):
    """Broken: a peek stores what it decides."""

    async def peek(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        return await self.apply(key, strategy, rate, cost, params)


class HalfAtomic(InMemoryBackend):
    """Broken: several limits are applied one by one, with no undo on refusal."""

    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        return [await self.apply(*hit) for hit in hits]


def test_a_peek_that_consumes_is_caught() -> None:
    broken = TestInMemoryBackend()
    with broken.event_loop() as run:
        clock = ManualClock()
        backend = PeekConsumes(clock=clock)
        (fixed_window,) = [case for case in CASES if case.id == "fixed_window"]
        with pytest.raises(AssertionError, match=r"peek|hit"):
            check_decisions(fixed_window, backend, clock, run, settings=QUICK)


def test_a_multi_limit_that_is_not_all_or_nothing_is_caught() -> None:
    class TestHalfAtomic(BackendConformance):
        async def make_backend(self, clock: ManualClock) -> ThrottleBackend:
            return HalfAtomic(clock=clock)

    with pytest.raises(AssertionError):
        TestHalfAtomic().test_apply_many_is_all_or_nothing()


def test_make_backend_must_be_implemented() -> None:
    with pytest.raises(NotImplementedError, match="make_backend"):
        BackendConformance().test_apply_many_is_all_or_nothing()

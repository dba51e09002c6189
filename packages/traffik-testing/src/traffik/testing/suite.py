"""`BackendConformance`: the whole suite for one backend, as a pytest test class to subclass.

::

    from traffik.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        async def make_backend(self, clock):
            return MyBackend(clock=clock)

Pytest then runs, against backends built by ``make_backend``:

* ``test_decisions_match_the_oracle[<case>]``: every built-in strategy (`CASES`, or the
  class's ``cases``) against its naive oracle, with random programs on a manual clock;
* ``test_apply_peek_refund_delete_clear``, ``test_apply_many_is_all_or_nothing`` and
  ``test_simultaneous_hits_admit_exactly_the_limit``: the backend protocol.

The tests are plain (synchronous) pytest tests: each runs its own event loop, so no
asyncio plugin or mode is needed, and the backends built for a test live on that loop.
Every backend made is initialised before use and closed afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import settings

from traffik import FixedWindow, Limiter, ManualClock, Rate, ThrottleBackend, TokenBucket, hit_all
from traffik.backends.base import Hit
from traffik.strategies import NO_PARAMS
from traffik.testing.cases import CASES, Case
from traffik.testing.machine import CONFORMANCE_SETTINGS, Runner, check_decisions

__all__ = ["BackendConformance"]

T = TypeVar("T")

CONTRACT_NOW = 1_700_001_800.0  # half-way through an hour: no window ends during a test
CONTRACT_RATE = Rate(limit=10, minutes=1)


class BackendConformance:
    """Subclass as ``Test<Something>`` and implement `make_backend`.

    Class attributes to adjust:

    * ``cases``: the strategy cases checked against their oracles (`CASES` by default;
      add a `Case` of your own strategy with its oracle, or run a subset);
    * ``conformance_settings``: the hypothesis settings of those checks
      (`CONFORMANCE_SETTINGS`: 60 programs of up to 40 steps per case; network backends
      may prefer `NETWORK_CONFORMANCE_SETTINGS`).
    """

    cases: ClassVar[Sequence[Case]] = CASES
    conformance_settings: settings = CONFORMANCE_SETTINGS

    async def make_backend(self, clock: ManualClock) -> ThrottleBackend:
        """A new backend that takes ``now`` from ``clock``. Each call: a fresh backend."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_backend(clock)")

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "conformance_case" in metafunc.fixturenames:
            cases = list(self.cases)
            metafunc.parametrize("conformance_case", cases, ids=[case.id for case in cases])

    # -- strategies against their oracles --------------------------------------------

    def test_decisions_match_the_oracle(self, conformance_case: Case) -> None:
        with self.event_loop() as run:
            clock = ManualClock()
            backend = run(self.started_backend(clock))
            tally = check_decisions(
                conformance_case, backend, clock, run, settings=self.conformance_settings
            )
        print(
            f"{conformance_case.id} on {type(backend).__name__}: "
            f"{tally.examples} examples, {tally.decisions} decisions"
        )
        assert tally.examples >= self.conformance_settings.max_examples

    # -- the backend protocol --------------------------------------------------------

    def test_apply_peek_refund_delete_clear(self) -> None:
        with self.event_loop() as run:
            run(self.apply_peek_refund_delete_clear())

    async def apply_peek_refund_delete_clear(self) -> None:
        clock = ManualClock(CONTRACT_NOW)
        backend = await self.started_backend(clock)
        rate = CONTRACT_RATE
        for strategy in (FixedWindow(), TokenBucket()):
            key = f"k:{strategy.name}"
            assert (await backend.apply(key, strategy, rate, 4, NO_PARAMS)).remaining == 6
            assert (await backend.peek(key, strategy, rate, 1, NO_PARAMS)).remaining == 5
            await backend.refund(key, strategy, rate, 2, NO_PARAMS)
            assert (await backend.peek(key, strategy, rate, 1, NO_PARAMS)).remaining == 7
            refused = await backend.apply(key, strategy, rate, 9, NO_PARAMS)
            assert not refused.allowed
            assert refused.retry_after > 0
            await backend.delete(key)
            assert (await backend.peek(key, strategy, rate, 1, NO_PARAMS)).remaining == 9
        await backend.apply("other", FixedWindow(), rate, 10, NO_PARAMS)
        await backend.clear()
        assert (await backend.apply("other", FixedWindow(), rate, 10, NO_PARAMS)).allowed
        clock.advance(60)
        assert (await backend.apply("other", FixedWindow(), rate, 10, NO_PARAMS)).allowed

    def test_apply_many_is_all_or_nothing(self) -> None:
        with self.event_loop() as run:
            run(self.apply_many_is_all_or_nothing())

    async def apply_many_is_all_or_nothing(self) -> None:
        backend = await self.started_backend(ManualClock(CONTRACT_NOW))
        tight = Hit("tight", FixedWindow(), Rate(limit=1, minutes=1), 1, NO_PARAMS)
        loose = Hit("loose", TokenBucket(), CONTRACT_RATE, 1, NO_PARAMS)
        assert [d.allowed for d in await backend.apply_many([loose, tight])] == [True, True]
        assert [d.allowed for d in await backend.apply_many([loose, tight])] == [True, False]
        assert (await backend.peek(*loose)).remaining == 8  # the refused pair took nothing

    def test_simultaneous_hits_admit_exactly_the_limit(self) -> None:
        with self.event_loop() as run:
            run(self.simultaneous_hits_admit_exactly_the_limit())

    async def simultaneous_hits_admit_exactly_the_limit(self) -> None:
        backend = await self.started_backend(ManualClock(CONTRACT_NOW))
        limiters = [
            Limiter("fw", rate="100/hour", backend=backend, on_error="raise"),
            Limiter(
                "tb", rate="100/hour", backend=backend, strategy=TokenBucket(), on_error="raise"
            ),
        ]
        for limiter in limiters:
            decisions = await asyncio.gather(*(limiter.decide("alice") for _ in range(1_000)))
            assert sum(d.allowed for d in decisions) == 100
        pairs = await asyncio.gather(
            *(hit_all([(limiters[0], "bob"), (limiters[1], "bob")]) for _ in range(300))
        )
        assert sum(all(d.allowed for d in pair) for pair in pairs) == 100

    # -- plumbing --------------------------------------------------------------------

    async def started_backend(self, clock: ManualClock) -> ThrottleBackend:
        """`make_backend`, initialised, and remembered so that it is closed afterwards."""
        backend = await self.make_backend(clock)
        if not isinstance(backend, ThrottleBackend):
            raise TypeError(f"make_backend returned {backend!r}, not a ThrottleBackend")
        await backend.initialize()
        self._made.append(backend)
        return backend

    @contextmanager
    def event_loop(self) -> Iterator[Runner]:
        """A fresh event loop for one test; closes the backends made on it, then the loop."""
        loop = asyncio.new_event_loop()
        self._made: list[ThrottleBackend] = []

        def run(coroutine: Coroutine[Any, Any, T]) -> T:
            return loop.run_until_complete(coroutine)

        try:
            yield run
        finally:
            try:
                for backend in self._made:
                    loop.run_until_complete(backend.close())
            finally:
                _close(loop)


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still running on ``loop`` (as `asyncio.run` does), then close it."""
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()

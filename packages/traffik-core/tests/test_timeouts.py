from __future__ import annotations

import asyncio
import sys
import time

import pytest

from traffik import BackendTimeoutError
from traffik.timeouts import SilenceWatchdog, within

needs_311 = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="Python 3.10 bounds each call with a plain deadline"
)


class Store:
    """An in-process store: answers on the next loop iteration, or never when silent."""

    def __init__(self) -> None:
        self.silent = False
        self.answered = 0

    async def ask(self) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if not self.silent:
            asyncio.get_running_loop().call_soon(future.set_result, "ok")
        result = await future
        self.answered += 1
        return result


async def busy(seconds: float) -> None:
    """Hold the event loop without yielding, as a CPU-bound handler (or a GC pause) does."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


@needs_311
async def test_a_busy_loop_is_not_a_silent_store() -> None:
    store = Store()
    watchdog = SilenceWatchdog(0.005)

    async def client() -> None:
        for _ in range(10):
            await watchdog.call(store.ask)
            await busy(0.002)  # every step of every client holds the loop for 2 ms

    # 20 clients: each loop iteration runs for ~40 ms, eight times the 5 ms budget.
    await asyncio.gather(*(client() for _ in range(20)))
    assert store.answered == 200
    assert watchdog.silences == 0


async def test_a_silent_store_fails_every_waiting_call() -> None:
    store = Store()
    store.silent = True
    watchdog = SilenceWatchdog(0.02, what="the test store")
    started = time.monotonic()
    results = await asyncio.gather(
        *(watchdog.call(store.ask) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(result, BackendTimeoutError) for result in results)
    assert "the test store" in str(results[0])
    assert time.monotonic() - started < 2.0  # generous: a bound, not a timing
    # The store comes back: so do the calls, with a fresh budget.
    store.silent = False
    assert await watchdog.call(store.ask) == "ok"


@needs_311
async def test_errors_the_store_sends_are_answers() -> None:
    watchdog = SilenceWatchdog(0.01)

    async def refuse() -> None:
        await asyncio.sleep(0)
        raise ValueError("WRONGTYPE")

    with pytest.raises(ValueError, match="WRONGTYPE"):
        await watchdog.call(refuse)
    assert watchdog.silences == 0


async def test_within_is_a_plain_deadline() -> None:
    with pytest.raises(BackendTimeoutError, match="20 ms"):
        await within(asyncio.Event().wait(), 0.02)
    assert await within(asyncio.sleep(0, "done"), 1.0) == "done"


# Cancellation bookkeeping (Task.cancelling, asyncio.timeout) exists from Python 3.11.
if sys.version_info >= (3, 11):

    async def test_a_timed_out_call_leaves_its_task_free_to_go_on() -> None:
        store = Store()
        store.silent = True
        watchdog = SilenceWatchdog(0.01)
        with pytest.raises(BackendTimeoutError) as caught:
            await watchdog.call(store.ask)
        assert isinstance(caught.value.cause, TimeoutError)
        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0  # the watchdog took back the cancellation it sent
        await asyncio.sleep(0.001)  # and nothing is left pending on the task
        store.silent = False
        assert await watchdog.call(store.ask) == "ok"

    async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
        store = Store()
        store.silent = True
        watchdog = SilenceWatchdog(10.0)
        call = asyncio.ensure_future(watchdog.call(store.ask))
        await asyncio.sleep(0)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # An enclosing deadline that expires first is that deadline's, not the watchdog's.
        with pytest.raises(TimeoutError) as caught:
            async with asyncio.timeout(0.01):
                await watchdog.call(store.ask)
        assert not isinstance(caught.value, BackendTimeoutError)
        assert watchdog.silences == 0

    async def test_nested_calls_of_one_task_time_out_once() -> None:
        store = Store()
        store.silent = True
        watchdog = SilenceWatchdog(0.01)
        with pytest.raises(BackendTimeoutError):
            await watchdog.wait(watchdog.call(store.ask))
        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0
        assert watchdog.silences == 1

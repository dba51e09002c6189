"""The silence budget: a store's silence on the wire, never our own queues or a busy loop.

The store here is real enough to tell the two apart: a thread on the far end of a socket
pair answers each line it reads (or, paused, answers nothing), so its replies reach the
kernel's buffer while this event loop is busy, exactly as a server's do.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from traffik import BackendTimeoutError
from traffik.timeouts import SilenceWatchdog, within


class ThreadStore:
    """A store in a thread: answers ``b"ok\\n"`` to each line, unless paused."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.answering = threading.Event()
        self.answering.set()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        buffer = b""
        while True:
            try:
                data = self.theirs.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                _, buffer = buffer.split(b"\n", 1)
                self.answering.wait()
                try:
                    self.theirs.sendall(b"ok\n")
                except OSError:  # closed by `close` while this reply waited: the test is over
                    return

    def close(self) -> None:
        self.answering.set()
        self.theirs.close()
        self._thread.join(timeout=5)


class Connection:
    """One connection to the store: each `ask` is an exchange of the watchdog."""

    def __init__(
        self,
        watchdog: SilenceWatchdog,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.watchdog = watchdog
        self.reader = reader
        self.writer = writer
        self.lock = asyncio.Lock()  # one exchange at a time: the others queue here

    async def ask(self, hold_loop: float = 0.0) -> bytes:
        async with self.lock:  # waiting here is our queue, never the store's time
            with self.watchdog.exchange() as exchange:
                self.writer.write(b"question\n")
                busy(hold_loop)  # the reply lands in the kernel's buffer meanwhile
                reply = await self.reader.readline()
                exchange.heard()
                return reply


@pytest.fixture
def store() -> Iterator[ThreadStore]:
    store = ThreadStore()
    yield store
    store.close()


@pytest.fixture
async def connect(store: ThreadStore) -> AsyncIterator[object]:
    writers: list[asyncio.StreamWriter] = []

    async def make(watchdog: SilenceWatchdog) -> Connection:
        reader, writer = await asyncio.open_connection(sock=store.ours)
        writers.append(writer)
        return Connection(watchdog, reader, writer)

    yield make
    for writer in writers:
        writer.close()


def busy(seconds: float) -> None:
    """Hold the event loop without yielding, as a CPU-bound handler (or a GC pause) does."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


async def test_waiting_in_our_own_queue_is_never_the_stores_silence(connect: object) -> None:
    watchdog = SilenceWatchdog(0.1)
    connection: Connection = await connect(watchdog)  # type: ignore[operator]

    async def client() -> bytes:
        return await watchdog.wait(connection.ask())

    async def first() -> None:
        async with connection.lock:  # holds the connection for 3 budgets, sending nothing
            await asyncio.sleep(0.3)

    # 200 calls queue behind it for one connection: each waits more than 3 budgets, then
    # the store answers each question at once.
    holder = asyncio.ensure_future(first())
    await asyncio.sleep(0)
    replies = await asyncio.gather(*(client() for _ in range(200)))
    await holder
    assert replies == [b"ok\n"] * 200
    assert watchdog.silences == 0


async def test_replies_left_unread_by_a_busy_loop_are_not_silence(connect: object) -> None:
    watchdog = SilenceWatchdog(0.05)
    connection: Connection = await connect(watchdog)  # type: ignore[operator]

    async def client() -> None:
        for _ in range(2):
            # Every exchange holds the loop for 4 budgets after writing its question: the
            # reply waits in the kernel's buffer, unread, far longer than the budget.
            await watchdog.wait(connection.ask(hold_loop=0.2))
            busy(0.05)

    await asyncio.gather(*(client() for _ in range(2)))
    assert watchdog.silences == 0


async def test_an_operation_of_many_answered_steps_is_not_silent() -> None:
    # A connect and handshake: many steps, each answered, the whole far over the budget.
    watchdog = SilenceWatchdog(0.1)

    async def handshake() -> str:
        for _ in range(40):
            await asyncio.sleep(0.01)  # each step's answer comes in 10 ms
        return "connected"

    assert await watchdog.call(handshake) == "connected"
    assert watchdog.silences == 0


async def test_a_store_slowing_down_is_measured_against_its_own_pace() -> None:
    # A store starved of CPU answers ever more slowly: each gap up to twice the last, five
    # times the budget by the end. Slow, not silent; the budget follows its pace.
    watchdog = SilenceWatchdog(0.1)

    async def slowing() -> None:
        gap = 0.02
        while gap < 0.5:
            await asyncio.sleep(gap)
            gap *= 2

    await watchdog.call(slowing)
    assert watchdog.silences == 0
    assert watchdog.budget() > 3 * 0.3  # three times the longest gap (0.32 s), barely decayed


async def test_a_silent_store_fails_every_waiting_call_queued_ones_too(
    store: ThreadStore, connect: object
) -> None:
    watchdog = SilenceWatchdog(0.05, what="the test store")
    connection: Connection = await connect(watchdog)  # type: ignore[operator]
    assert await watchdog.wait(connection.ask()) == b"ok\n"
    store.answering.clear()  # paused: reads its questions, answers nothing
    started = time.monotonic()
    results = await asyncio.gather(
        *(watchdog.wait(connection.ask()) for _ in range(10)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    # One call was on the wire; the nine queued behind it never reached it: all fail.
    assert all(isinstance(result, BackendTimeoutError) for result in results), results
    assert "the test store gave no answer for 50 ms" in str(results[0])
    assert watchdog.silences == 1
    assert elapsed < 2.0  # generous: a bound, not a timing
    # The store comes back: so do the calls, with a fresh budget. (The question left
    # unanswered is answered now, and read as the next one's reply: every reply of this
    # store is the same.)
    store.answering.set()
    assert await watchdog.wait(connection.ask()) == b"ok\n"


async def test_a_connection_that_hears_nothing_for_the_budget_is_silent() -> None:
    watchdog = SilenceWatchdog(0.02)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(BackendTimeoutError) as caught:
        await watchdog.call(lambda: never)
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value.cause, TimeoutError)


async def test_errors_the_store_sends_are_answers() -> None:
    watchdog = SilenceWatchdog(0.01)

    async def refuse() -> None:
        await asyncio.sleep(0)
        raise ValueError("WRONGTYPE")

    with pytest.raises(ValueError, match="WRONGTYPE"):
        await watchdog.call(refuse)
    assert watchdog.silences == 0


async def test_calls_waiting_with_nothing_on_the_wire_are_not_timed() -> None:
    # Nothing was written: there is nothing to be silent about (a caller's own wait).
    watchdog = SilenceWatchdog(0.01)
    assert await watchdog.wait(asyncio.sleep(0.05, "done")) == "done"
    assert watchdog.silences == 0


async def test_within_is_a_plain_deadline() -> None:
    with pytest.raises(BackendTimeoutError, match="20 ms"):
        await within(asyncio.Event().wait(), 0.02)
    assert await within(asyncio.sleep(0, "done"), 1.0) == "done"


async def test_a_timed_out_call_leaves_its_task_free_to_go_on() -> None:
    watchdog = SilenceWatchdog(0.01)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(BackendTimeoutError):
        await watchdog.call(lambda: never)
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):
        assert task.cancelling() == 0  # the watchdog took back the cancellation it sent
    await asyncio.sleep(0.001)  # and nothing is left pending on the task

    async def answer() -> str:
        await asyncio.sleep(0)
        return "ok"

    assert await watchdog.call(answer) == "ok"


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    watchdog = SilenceWatchdog(10.0)
    call = asyncio.ensure_future(watchdog.call(asyncio.Event().wait))
    await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert watchdog.silences == 0


async def test_an_enclosing_deadline_that_expires_first_is_that_deadlines() -> None:
    watchdog = SilenceWatchdog(10.0)
    with pytest.raises((TimeoutError, asyncio.TimeoutError)) as caught:
        await asyncio.wait_for(watchdog.call(asyncio.Event().wait), 0.01)
    assert not isinstance(caught.value, BackendTimeoutError)
    assert watchdog.silences == 0


async def test_nested_calls_of_one_task_time_out_once() -> None:
    watchdog = SilenceWatchdog(0.01)
    with pytest.raises(BackendTimeoutError):
        await watchdog.wait(watchdog.call(asyncio.Event().wait))
    task = asyncio.current_task()
    assert task is not None
    if sys.version_info >= (3, 11):
        assert task.cancelling() == 0
    assert watchdog.silences == 1

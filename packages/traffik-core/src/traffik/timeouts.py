"""Time budgets for calls to a store.

Two ways to bound a call:

* `within` — a plain deadline: the awaitable must finish within ``seconds``.
* `SilenceWatchdog` — a budget on the store's *silence on the wire*: calls fail only when
  a connection to the store has commands written and unanswered, and nothing has arrived
  on it for ``timeout`` seconds.

A plain deadline on each check misreads our own queues as a dead store. With thousands of
simultaneous requests a check waits for a pooled connection, for its turn in a shared
round trip, and for the event loop, far longer than 50 ms, while the store answers every
command in microseconds; failing those checks would let them through
(``on_error="allow"``) exactly when the limiter matters most. The watchdog times the store
instead: a clock starts when commands are written on a connection, restarts with every
reply that arrives on it, and stops when the last reply is in. Time spent before the write
never counts. Nor does time an answer spends unread because the event loop was busy:
before calling a connection silent, the watchdog lets the loop run a few iterations, in
which whatever has arrived is read. When a connection does fall silent (a paused or
partitioned server), every call waiting on the store fails at once, queued ones included.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Final, TypeVar

from traffik.exceptions import BackendTimeoutError

__all__ = ["Exchange", "SilenceWatchdog", "within"]

T = TypeVar("T")

# Loop iterations the watchdog yields before calling a connection silent. Bytes that arrived
# while the loop was busy are read in them: one iteration polls the sockets and feeds the
# readers, the next runs the tasks reading replies; the rest is margin (TLS, shielded tasks).
_SETTLE_ITERATIONS: Final = 5

# How often per budget the watcher looks at the open exchanges: a silent connection is
# noticed at most a budget and a sixteenth after its last reply.
_SAMPLES: Final = 16

# The store's recent pace: a connection is silent only past `timeout` and past this many
# times the longest gap it recently left between answers (decaying by half every
# `_PACE_HALF_LIFE` seconds). A store starved of CPU on a crowded host answers in slow
# bursts; measured against its own pace, it is slow, not silent.
_PACE_FACTOR: Final = 3
_PACE_HALF_LIFE: Final = 10.0


async def within(awaitable: Awaitable[T], seconds: float, what: str = "the backend") -> T:
    """Await ``awaitable``, raising `BackendTimeoutError` if it takes more than ``seconds``.

    The awaited work is cancelled when time runs out, so nothing keeps running behind a
    request that has moved on.
    """
    try:
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(seconds):
                return await awaitable
        return await asyncio.wait_for(awaitable, seconds)
    except (asyncio.TimeoutError, TimeoutError) as exc:
        raise BackendTimeoutError(
            f"{what} did not answer within {seconds * 1000:.0f} ms", cause=exc
        ) from exc


class Exchange:
    """Commands written on one connection, their replies awaited: what the watchdog times.

    Open one with `SilenceWatchdog.exchange` just before writing (connecting counts too),
    call `heard` as each reply arrives — or await the operation through `watch`, which
    hears every step of it — and close it once the last reply is in or the connection
    failed (it is a context manager). The connection is silent when it stays open
    ``timeout`` seconds with nothing heard.
    """

    __slots__ = ("_quiet_since", "_seen", "_silenced", "_watchdog", "abort", "replies")

    def __init__(self, watchdog: SilenceWatchdog, now: float) -> None:
        self._watchdog = watchdog
        self.replies = 0
        #: Drops the connection, if whoever opened the exchange can: called when it is
        #: found silent, so that the command waiting on it fails instead of waiting on.
        self.abort: Callable[[], object] | None = None
        self._silenced = False  # found silent once: its gaps tell nothing of the pace
        self._seen = 0  # replies the watcher had seen when it last looked
        self._quiet_since = now

    def heard(self) -> None:
        """A reply arrived on the connection."""
        self.replies += 1

    def watch(self, awaitable: Awaitable[T]) -> Awaitable[T]:
        """``awaitable``, with each of its steps heard.

        For an operation whose replies are read out of sight (a client library's connect
        and handshake, a command): it resumes only when something it awaited has happened
        — bytes arrived, a connection opened — so each resumption is progress, and a store
        that answers is never silent however many steps the operation takes.
        """
        return _Heard(awaitable, self)

    def close(self) -> None:
        watchdog = self._watchdog
        watchdog._exchanges.discard(self)
        if self.replies != self._seen and not self._silenced:  # ended by an answer
            now = asyncio.get_running_loop().time()
            watchdog._note_gap(now - self._quiet_since, now)

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _quiet_for(self, now: float) -> float:
        """Seconds since the write or the last reply, as the watcher samples them."""
        if self.replies != self._seen:
            if not self._silenced:
                self._watchdog._note_gap(now - self._quiet_since, now)
            self._seen = self.replies
            self._quiet_since = now
        return now - self._quiet_since


class _Heard(Awaitable[T]):
    """Awaits an awaitable step by step (as ``yield from`` does), noting each step."""

    __slots__ = ("_awaitable", "_exchange")

    def __init__(self, awaitable: Awaitable[T], exchange: Exchange) -> None:
        self._awaitable = awaitable
        self._exchange = exchange

    def __await__(self) -> Generator[Any, Any, T]:
        steps = self._awaitable.__await__()
        exchange = self._exchange
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            try:
                waiting_on = steps.send(sent) if thrown is None else steps.throw(thrown)
            except StopIteration as done:
                result: T = done.value
                return result
            try:
                sent, thrown = (yield waiting_on), None
            except GeneratorExit:
                steps.close()
                raise
            except BaseException as exc:  # a cancellation, passed on as `yield from` does
                sent, thrown = None, exc
                continue  # (an error is not an answer)
            exchange.replies += 1


class SilenceWatchdog:
    """Fails the calls waiting on a store once a connection to it has been silent for
    ``timeout`` seconds.

    Two halves. Code that talks to the store opens an `Exchange` around each write and its
    replies (`exchange`). Callers wait for the store in `wait` (or `call`, which also opens
    an exchange around the operation). A watcher task runs while exchanges are open; when
    one has heard nothing for ``timeout`` seconds, and still nothing after the event loop
    has had its chance to read, every call waiting in `wait` fails with
    `BackendTimeoutError`. ``silences`` counts the times calls were failed so.

    The budget is ``timeout``, or three times the longest gap the store recently left
    between answers when that is longer (`budget`): on a crowded host a store starved of
    CPU answers in slow bursts, and is measured against its own recent pace. The pace is
    forgotten by half every ten seconds.

    A silent exchange is dropped (`Exchange.abort`) when it can be; one that cannot stays
    watched, and fails the calls waiting then only after another full budget of silence.

    A waiting call is failed as ``asyncio.timeout`` fails one: its task is cancelled, and
    the cancellation becomes `BackendTimeoutError` where the call was awaited. On Python
    3.11 and later a cancellation from elsewhere stays a cancellation (``Task.uncancel``
    tells them apart). Python 3.10 has no way to tell: a cancellation from elsewhere that
    lands on a call the watchdog is failing at that moment is reported as the timeout.
    """

    def __init__(self, timeout: float, *, what: str = "the backend") -> None:
        self.timeout = timeout
        self.what = what
        self.silences = 0
        self._waiting: dict[asyncio.Task[Any], int] = {}  # task -> its calls waiting
        self._expired: set[asyncio.Task[Any]] = set()  # tasks the watcher cancelled
        self._exchanges: set[Exchange] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._pace = 0.0  # the longest recent gap between answers (decaying)
        self._pace_at = 0.0  # when it was last updated
        self._failed_budget = timeout  # the budget that failed the calls last

    def budget(self, now: float | None = None) -> float:
        """Seconds of silence that fail the calls now: ``timeout``, or more at a slow pace."""
        if now is None:
            now = asyncio.get_running_loop().time()
        return max(self.timeout, _PACE_FACTOR * self._paced(now))

    def _paced(self, now: float) -> float:
        if self._pace:
            self._pace *= 0.5 ** ((now - self._pace_at) / _PACE_HALF_LIFE)
            self._pace_at = now
        return self._pace

    def _note_gap(self, gap: float, now: float) -> None:
        if gap > self._paced(now):
            self._pace, self._pace_at = gap, now

    def exchange(self) -> Exchange:
        """Open an exchange: commands are about to be written on a connection."""
        loop = asyncio.get_running_loop()
        exchange = Exchange(self, loop.time())
        self._exchanges.add(exchange)
        if self._watcher is None:
            self._watcher = loop.create_task(self._watch())
        return exchange

    async def call(self, operation: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await ``operation(*args, **kwargs)``, one exchange with the store, under the budget.

        Every step of the operation is heard (`Exchange.watch`). For an operation that
        talks to the store without a wait of its own first (the caller bounds how many run
        at once).
        """
        with self.exchange() as exchange:
            return await self.wait(exchange.watch(operation(*args, **kwargs)))

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable``, failing with `BackendTimeoutError` if the store falls silent."""
        task = asyncio.current_task()
        if task is None:  # not run by asyncio's tasks: nothing to cancel
            return await within(awaitable, self.timeout, self.what)
        waiting = self._waiting
        waiting[task] = waiting.get(task, 0) + 1
        cancelling = 0  # cancellations pending before this call (3.10 does not count them)
        if sys.version_info >= (3, 11):
            cancelling = task.cancelling()
        try:
            result = await awaitable
        except asyncio.CancelledError as exc:
            self._leave(task)
            if task in self._expired and self._withdraw(task, cancelling):
                message = f"{self.what} gave no answer for {self._failed_budget * 1000:.0f} ms"
                timeout = TimeoutError(message)
                timeout.__cause__ = exc
                raise BackendTimeoutError(message, cause=timeout) from timeout
            raise
        except BaseException:
            self._leave(task)
            if task in self._expired:
                self._withdraw(task, cancelling)  # it ended otherwise meanwhile
            raise
        self._leave(task)
        if task in self._expired:
            self._withdraw(task, cancelling)  # the call swallowed the cancellation
        return result

    def _leave(self, task: asyncio.Task[Any]) -> None:
        outstanding = self._waiting[task] - 1
        if outstanding:
            self._waiting[task] = outstanding
        else:
            del self._waiting[task]

    def _withdraw(self, task: asyncio.Task[Any], cancelling: int) -> bool:
        """Take back the watcher's cancellation of ``task``, whose call has ended.

        True when no other cancellation arrived meanwhile: the call timed out, rather
        than being cancelled from elsewhere (as ``asyncio.timeout`` tells them apart).
        """
        self._expired.discard(task)
        if sys.version_info < (3, 11):  # no cancellation count to take back
            return True
        return task.uncancel() <= cancelling

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._exchanges:
                await asyncio.sleep(self.timeout / _SAMPLES)
                now = loop.time()
                spans = [(each, each._quiet_for(now)) for each in self._exchanges]
                budget = self.budget(now)
                quiet = [each for each, span in spans if span >= budget]
                if not quiet:
                    continue
                # Quiet for a whole budget by the clock. But a process that was not
                # scheduled (a busy loop, a GC pause, a crowded host) has replies waiting to
                # be read: let the loop read them, and call it silence only if nothing
                # arrived on the connection meanwhile.
                for _ in range(_SETTLE_ITERATIONS):
                    await asyncio.sleep(0)
                exchanges = self._exchanges
                silent = [
                    each for each in quiet if each in exchanges and each.replies == each._seen
                ]
                if silent:
                    self._failed_budget = budget
                    self._fail_waiting(silent, loop.time())
        finally:
            self._watcher = None

    def _fail_waiting(self, silent: list[Exchange], now: float) -> None:
        self.silences += 1
        for exchange in silent:
            exchange._silenced = True
            exchange._quiet_since = now  # (one that cannot be dropped: another budget)
            if exchange.abort is not None:
                exchange.abort()
        for task in list(self._waiting):
            if task not in self._expired:  # (a nested call's task: once)
                self._expired.add(task)
                task.cancel()

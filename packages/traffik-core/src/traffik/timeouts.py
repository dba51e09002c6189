"""Time budgets for calls to a store.

Two ways to bound a call:

* `within` — a plain deadline: the awaitable must finish within ``seconds``.
* `SilenceWatchdog` — a *liveness* budget: calls fail only when the store has given no
  answer at all for ``timeout`` seconds while calls were waiting on it.

A plain deadline on each check misreads a busy event loop as a dead store. With
thousands of simultaneous requests a check can wait far longer than 50 ms for its turn
on the loop while the store answers every command in microseconds; failing those checks
would let them through (``on_error="allow"``) exactly when the limiter matters most.
The watchdog measures the store instead: while answers keep arriving, nothing times out;
when the store hangs (a paused or partitioned server), every call waiting on it fails
within about ``timeout``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from traffik.exceptions import BackendTimeoutError

__all__ = ["SilenceWatchdog", "within"]

T = TypeVar("T")

# Loop iterations the watchdog yields before declaring silence: answers that arrived while
# the loop was busy are read in the first few iterations after it frees up.
_SETTLE_ITERATIONS: Final = 5


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


class SilenceWatchdog:
    """Fails the calls to a store once it has been silent for ``timeout`` seconds.

    Wrap every call to one store in `call`. Any call that completes — with a result or
    with an error the store sent — counts as an answer. A watcher task runs while calls
    are outstanding; when no answer has come for ``timeout`` seconds, every outstanding
    call fails with `BackendTimeoutError`. ``silences`` counts those events, so callers
    queued behind the store can fail at once instead of trying the same silent store in
    turn.

    A store whose commands run elsewhere than the guarded call (say, in a task of its own
    that batches requests) reports each answer it gets with `answered`.

    An outstanding call is failed as ``asyncio.timeout`` fails one: its task is cancelled,
    and the cancellation becomes `BackendTimeoutError` where the call was awaited (a
    cancellation from elsewhere stays a cancellation). The watchdog does that itself
    rather than open an ``asyncio.timeout`` scope per call, which costs several times more
    than the rest of its bookkeeping.

    On Python 3.10 (no ``Task.uncancel``) each call gets a plain deadline of ``timeout``
    instead.
    """

    def __init__(self, timeout: float, *, what: str = "the backend") -> None:
        self.timeout = timeout
        self.what = what
        self.silences = 0
        self._waiting: dict[asyncio.Task[Any], int] = {}  # task -> its calls outstanding
        self._expired: set[asyncio.Task[Any]] = set()  # tasks the watcher cancelled
        self._last_answer = 0.0
        self._answers = 0  # counts answers, so the watcher can tell whether any came lately
        self._watcher: asyncio.Task[None] | None = None

    def answered(self) -> None:
        """Note an answer from the store, seen outside a guarded call."""
        self._last_answer = asyncio.get_running_loop().time()
        self._answers += 1

    async def call(self, operation: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await ``operation(*args, **kwargs)`` under the silence budget."""
        return await self.wait(operation(*args, **kwargs))

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` under the silence budget."""
        if sys.version_info < (3, 11):
            return await within(awaitable, self.timeout, self.what)
        task = asyncio.current_task()
        if task is None:  # not run by asyncio's tasks: nothing to cancel
            return await within(awaitable, self.timeout, self.what)
        loop = task.get_loop()
        waiting = self._waiting
        if not waiting:
            self._last_answer = loop.time()  # silence is measured from the first question
        waiting[task] = waiting.get(task, 0) + 1
        cancelling = task.cancelling()  # cancellations pending before this call
        if self._watcher is None:
            self._watcher = loop.create_task(self._watch())
        try:
            result = await awaitable
        except asyncio.CancelledError as exc:
            self._leave(task)
            if task in self._expired and self._withdraw(task, cancelling):
                message = f"{self.what} gave no answer for {self.timeout * 1000:.0f} ms"
                timeout = TimeoutError(message)
                timeout.__cause__ = exc
                raise BackendTimeoutError(message, cause=timeout) from timeout
            raise
        except BaseException:
            self._leave(task)
            if task in self._expired:
                self._withdraw(task, cancelling)  # it ended otherwise meanwhile
            self._last_answer = loop.time()  # the store answered, with an error
            self._answers += 1
            raise
        self._leave(task)
        if task in self._expired:
            self._withdraw(task, cancelling)  # the call swallowed the cancellation
        self._last_answer = loop.time()
        self._answers += 1
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
        if sys.version_info < (3, 11):  # never reached: wait() uses plain deadlines there
            return False
        return task.uncancel() <= cancelling

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                await asyncio.sleep(self.timeout / 4)
                if loop.time() - self._last_answer < self.timeout:
                    continue
                # Quiet for a whole budget, by the clock. But a process that was not
                # scheduled (a busy loop, a GC pause, a crowded host) has answers waiting to
                # be read: give them a few loop iterations, and call it silence only if not
                # one arrived meanwhile.
                answers = self._answers
                for _ in range(_SETTLE_ITERATIONS):
                    await asyncio.sleep(0)
                now = loop.time()
                if self._waiting and self._answers == answers:
                    self.silences += 1
                    self._last_answer = now  # calls made from now on get a full budget
                    for task in list(self._waiting):
                        if task not in self._expired:  # (a nested call's task: once)
                            self._expired.add(task)
                            task.cancel()
        finally:
            self._watcher = None

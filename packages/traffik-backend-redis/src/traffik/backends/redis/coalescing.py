"""Coalescing: concurrent calls share pipelined round trips, each keeping its own answer.

A call that finds nothing in flight goes out at once, in its caller's task: one command,
one round trip, as without coalescing. While round trips are in flight, further calls
queue; as soon as a connection is free, the queued calls go out together — one write of
all their commands on one connection — and the replies, which Redis sends in order, are
read back one by one and handed to their callers. Redis still runs each command (each
script) atomically and in the order it arrived, so coalescing changes how many round
trips a burst takes, never what is decided.

* **Connections.** At most `PIPELINES` round trips are in flight at once, each on a
  connection of its own taken from the client's pool (and kept until `close`): while
  this process reads and hands out the replies of one batch, Redis runs the next. Calls
  queued while both are busy are split evenly between them (``max_batch`` at most each),
  so a burst keeps both busy.
* **Each caller its own outcome.** A reply that is an error (``WRONGTYPE``, a script
  error) fails its own caller with `BackendError`. ``NOSCRIPT`` (a restarted or flushed
  server) is recovered for the calls that got it only: they are sent again, the first
  of each script as ``EVAL`` (which caches it again) and the rest as ``EVALSHA``.
  A connection that fails is retried as the client's own commands are (its ``retry``:
  for clients the backend creates, once, on a connection error), re-sending only the
  calls not yet answered; a call whose caller gave up while queued is never sent.
* **The silence budget.** Each round trip is an exchange of the runner's
  `traffik.timeouts.SilenceWatchdog`, timed from its write and restarted by each reply:
  waiting in the queue is never Redis's time. When a connection stays silent for the
  budget, the calls of every round trip in flight fail with `BackendTimeoutError`, and so
  does every call queued behind them, at once, instead of trying the same silent server
  in turn.
* **On a Cluster** (`cluster_routing`), each primary has a coalescer of its own, given two
  hooks: ``redirect`` takes over a call whose reply is ``MOVED``, ``ASK``, ``TRYAGAIN``
  or ``CLUSTERDOWN`` (the call then goes to another coalescer, or again later, and its
  caller keeps waiting), and ``unreachable`` hears of a failed connection. A call
  redirected by ``ASK`` goes out behind ``ASKING``, in the same write.
* **Each caller's own errors.** A command is packed in its caller's task when it is
  queued, so a command that cannot be encoded fails its own caller, unchanged, and is
  never sent. An error that is not Redis's (a bug) reaches the callers unchanged, never
  as a `BackendError`.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from redis._parsers.encoders import Encoder
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from traffik.backends.redis.errors import TRANSLATED, timed_out, translate
from traffik.backends.redis.scripts import Script
from traffik.exceptions import BackendConnectionError
from traffik.timeouts import SilenceWatchdog

__all__ = ["MAX_BATCH", "PIPELINES", "Call", "Coalescer", "pack"]

PIPELINES: Final = 2
"""Round trips in flight at once: one being answered while the next is sent.

Measured with `benchmarks/redis_backend.py`: two overlap the client's work with the
server's; more split a burst into smaller batches, which one event loop answers no
faster.
"""

MAX_BATCH: Final = 512
"""The most calls one round trip carries (a burst of thousands takes several)."""


# The wire's small numbers, made once: array heads, bulk-string heads and whole numbers
# below these bounds are looked up rather than formatted (most of `pack`'s time).
_ARRAY_HEADS: Final = tuple(b"*%d" % count for count in range(64))
_BULK_HEADS: Final = tuple(b"$%d" % size for size in range(512))
_SMALL_INTS: Final = tuple(b"%d" % number for number in range(512))


def pack(commands: Iterable[tuple[Any, ...]], encoder: Encoder) -> bytes:
    """``commands`` in Redis's wire format (arrays of bulk strings), in one buffer.

    What redis-py's ``pack_commands`` sends, for a third of its time: the arguments here
    are nearly all bytes, text and whole numbers, which take a short path; anything else
    is encoded by the client's own encoder (floats, memoryviews; a bool is refused).
    """
    encoding, errors = encoder.encoding, encoder.encoding_errors
    encode: Callable[[Any], bytes] = encoder.encode
    parts: list[bytes] = []
    append = parts.append
    for command in commands:
        first = command[0]
        if isinstance(first, str) and " " in first:  # "SCRIPT LOAD": two words, two arguments
            command = (*first.split(), *command[1:])
        count = len(command)
        append(_ARRAY_HEADS[count] if count < 64 else b"*%d" % count)
        for argument in command:
            kind = type(argument)
            if kind is str:
                argument = argument.encode(encoding, errors)
            elif kind is int:
                argument = _SMALL_INTS[argument] if 0 <= argument < 512 else b"%d" % argument
            elif kind is not bytes:
                argument = encode(argument)
            size = len(argument)
            append(_BULK_HEADS[size] if size < 512 else b"$%d" % size)
            append(argument)
    append(b"")  # the last argument's CRLF
    return b"\r\n".join(parts)


ASKING: Final = b"*1\r\n$6\r\nASKING\r\n"
"""Sent just before a call that a Cluster node redirected with ``ASK``, on the same connection."""


class Call:
    """One caller's command (as given, and packed for the wire), its script (for
    ``NOSCRIPT``) and where its outcome goes.

    ``asking``: the command goes out behind ``ASKING`` (a Cluster's ``ASK`` redirect);
    ``route``: what a Cluster router keeps about the call between its attempts.
    """

    __slots__ = ("asking", "command", "future", "packed", "route", "script")

    def __init__(
        self,
        command: tuple[Any, ...],
        packed: bytes,
        script: Script | None,
        future: asyncio.Future[Any],
    ) -> None:
        self.command = command
        self.packed = packed
        self.script = script
        self.future = future
        self.asking = False
        self.route: Any = None

    def settle(self, reply: Any) -> None:
        if not self.future.done():  # its caller may have given up meanwhile
            self.future.set_result(reply)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class Coalescer:
    """Sends the calls of one backend in pipelined round trips on the client's pool."""

    def __init__(
        self,
        pool: ConnectionPool,
        watchdog: SilenceWatchdog,
        *,
        target: str,
        timeout: float,
        pipelines: int = PIPELINES,
        max_batch: int = MAX_BATCH,
        redirect: Callable[[Call, ResponseError, Coalescer], bool] | None = None,
        unreachable: Callable[[Coalescer], None] | None = None,
        immediate: bool = True,
    ) -> None:
        self.pool = pool
        self.target = target
        self.timeout = timeout
        self.pipelines = pipelines
        self.max_batch = max_batch
        # A Cluster router's hooks: `redirect` takes over a call whose reply is an error
        # it handles (True: the call is its own now); `unreachable` hears of a failed
        # connection (the slot map may be out of date).
        self.redirect = redirect
        self.unreachable = unreachable
        # Whether a call that finds nothing in flight goes out at once, in its caller's
        # task. A Cluster router's nodes wait for the end of the loop iteration instead:
        # with the callers spread over several nodes, each node is often idle when a
        # call comes, and would otherwise send most calls alone.
        self.immediate = immediate
        self._watchdog = watchdog
        self._encoder: Encoder = pool.get_encoder()  # type: ignore[no-untyped-call]
        self._queue: collections.deque[Call] = collections.deque()
        self._busy = 0  # round trips in flight
        self._in_flight = 0  # calls in those round trips
        self._idle: list[AbstractConnection] = []  # connections taken from the pool, free
        self._dispatch_scheduled = False
        self._batches: set[asyncio.Task[None]] = set()
        self._closed = False

    async def run(self, command: tuple[Any, ...], script: Script | None = None) -> Any:
        """Send ``command`` (with ``script`` when it is that script's ``EVALSHA``); its reply.

        Raises `BackendError` (or a subclass) for this call's own failure at Redis, and
        whatever encoding ``command`` raises (a bug of the caller's), unchanged.
        """
        return await self.send(self.call(command, script))

    def call(self, command: tuple[Any, ...], script: Script | None = None) -> Call:
        """A call of ``command``, packed in the caller's task (an encoding error is theirs)."""
        future = asyncio.get_running_loop().create_future()
        return Call(command, pack((command,), self._encoder), script, future)

    async def send(self, call: Call) -> Any:
        """Send ``call`` and await its outcome (wherever a redirect takes it meanwhile)."""
        if self._busy == 0 and not self._queue and self.immediate:
            # Nothing in flight: this call goes out at once, from its caller's task.
            self._busy = 1
            self._in_flight = 1
            try:
                await self._exchange([call])
            finally:
                self._busy -= 1
                self._in_flight -= 1
                self._schedule()
        else:
            self.submit(call)
        return await call.future

    def submit(self, call: Call) -> None:
        """Queue ``call`` for the next round trip (a call redirected here, say)."""
        if self._closed:
            call.fail(self._closed_error())
            return
        self._queue.append(call)
        self._schedule()

    def _schedule(self) -> None:
        # Dispatch after the current loop iteration: the callers woken by a round trip's
        # replies queue their next calls first, and go out together.
        if self._queue and not self._dispatch_scheduled and self._busy < self.pipelines:
            self._dispatch_scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        queue = self._queue
        while queue and self._busy < self.pipelines and not self._closed:
            # An even share of everything queued or in flight: the pipelines stay balanced.
            share = -(-(len(queue) + self._in_flight) // self.pipelines)
            size = min(share, self.max_batch)
            calls: list[Call] = []
            while queue and len(calls) < size:
                call = queue.popleft()
                if not call.future.done():  # a caller that gave up while queued: not sent
                    calls.append(call)
            if calls:
                self._busy += 1
                self._in_flight += len(calls)
                batch = asyncio.get_running_loop().create_task(self._batch(calls))
                self._batches.add(batch)
                batch.add_done_callback(self._batches.discard)

    async def _batch(self, calls: list[Call]) -> None:
        try:
            await self._exchange(calls)
        except asyncio.CancelledError:  # by close: nobody is left waiting for nothing
            for call in calls:
                call.fail(self._closed_error())
            raise
        except Exception as exc:  # not Redis's doing (a bug): the callers get it unchanged
            for call in calls:
                call.fail(exc)
        finally:
            self._busy -= 1
            self._in_flight -= len(calls)
            self._schedule()

    async def _exchange(self, calls: list[Call]) -> None:
        """One round trip (plus its ``NOSCRIPT`` recovery) under the silence budget."""
        connection = self._idle.pop() if self._idle else None
        try:
            if connection is None:
                connection = await self._watchdog.call(self._connect)  # connecting is on the wire
            await self._watchdog.wait(self._round_trips(connection, calls))
        except TRANSLATED as exc:
            for call in calls:
                call.fail(translate(exc, self.target, self.timeout))
            if isinstance(exc, (RedisTimeoutError, TimeoutError, asyncio.TimeoutError)):
                self._fail_queue(exc)
            if self.unreachable is not None:
                self.unreachable(self)
        finally:
            if connection is not None:
                if self._closed:
                    await self.pool.release(connection)
                else:
                    self._idle.append(connection)

    async def _connect(self) -> AbstractConnection:
        connection: AbstractConnection = await self.pool.get_connection()  # type: ignore[no-untyped-call]
        return connection

    def _fail_queue(self, cause: BaseException) -> None:
        """Redis went silent: the calls queued behind it fail now, not one budget later."""
        queue, self._queue = self._queue, collections.deque()
        for call in queue:
            call.fail(timed_out(self.target, self.timeout, cause, waiting=True))

    async def _round_trips(self, connection: AbstractConnection, calls: list[Call]) -> None:
        first = [ASKING + call.packed if call.asking else call.packed for call in calls]
        lost = await self._send(connection, calls, first)
        while lost:  # NOSCRIPT: each script is cached again by its first EVAL
            loaded: set[str] = set()
            commands = []
            for call in lost:
                assert call.script is not None
                if call.script.sha in loaded:
                    packed = call.packed
                else:
                    loaded.add(call.script.sha)
                    command = ("EVAL", call.script.source, *call.command[2:])
                    packed = pack((command,), self._encoder)
                commands.append(ASKING + packed if call.asking else packed)
            lost = await self._send(connection, lost, commands)

    async def _send(
        self,
        connection: AbstractConnection,
        calls: Sequence[Call],
        commands: Sequence[bytes],
    ) -> list[Call]:
        """Send the packed ``commands`` in one write, settle each call from its reply, in
        order: one exchange of the silence budget, restarted by each reply.

        Returns the calls whose script the server did not know. A connection error
        retries (as the client's ``retry`` allows) the calls not yet answered.
        """
        lost: list[Call] = []
        answered = 0
        redirect = self.redirect

        async def attempt() -> None:
            nonlocal answered
            with self._watchdog.exchange() as exchange:
                await connection.send_packed_command(b"".join(commands[answered:]))
                read = connection.read_response
                for call in calls[answered:]:
                    try:
                        if call.asking:
                            await read()  # ASKING's OK
                        reply = await read()
                    except ResponseError as exc:  # this call's own error: the others go on
                        if isinstance(exc, NoScriptError) and call.script is not None:
                            lost.append(call)
                        elif redirect is None or not redirect(call, exc, self):
                            call.fail(translate(exc, self.target, self.timeout))
                    else:
                        call.settle(reply)
                    exchange.heard()
                    answered += 1

        async def reset(error: Exception) -> None:
            await connection.disconnect()

        await connection.retry.call_with_retry(attempt, reset)
        return lost

    def _closed_error(self) -> BackendConnectionError:
        return BackendConnectionError(f"The backend for Redis at {self.target} was closed")

    async def close(self) -> None:
        """Fail the queued calls, stop the round trips in flight, give connections back."""
        self._closed = True
        queue, self._queue = self._queue, collections.deque()
        for call in queue:
            call.fail(self._closed_error())
        for batch in list(self._batches):
            batch.cancel()
        if self._batches:
            await asyncio.gather(*self._batches, return_exceptions=True)
        idle, self._idle = self._idle, []
        for connection in idle:
            await self.pool.release(connection)

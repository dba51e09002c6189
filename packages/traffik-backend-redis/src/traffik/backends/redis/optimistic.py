"""The generic path: any strategy, atomic through an optimistic compare-and-set.

For a strategy without a native script (a user's own, or a subclass of a built-in), a
decision takes two round trips: one script reads the server's time and every key's
state; the strategy decides in Python, exactly as the in-memory backend would; a second
script writes the new states only if no key changed in between. If one did, the decision
is made again on fresh state, up to ``max_attempts`` times.

Within one process, decisions on the same key take turns (a per-key asyncio lock), so
conflicts come only from other processes and each round lets at least one through;
short random pauses keep processes from colliding in step.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

from traffik.backends.base import Hit
from traffik.backends.redis.runner import CommandRunner, ScriptArgument
from traffik.backends.redis.scripts import COMPARE_AND_SET, READ_STATES
from traffik.clock import Clock, milliseconds
from traffik.decision import Decision
from traffik.exceptions import BackendError

__all__ = ["OptimisticPath"]


class _KeyLocks:
    """Per-key asyncio locks, created on demand and dropped when nobody holds them."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, keys: Sequence[str]) -> AsyncIterator[None]:
        ordered = sorted(set(keys))  # one global order: no two callers wait on each other
        async with contextlib.AsyncExitStack() as stack:
            for key in ordered:
                lock, users = self._locks.get(key, (None, 0))
                if lock is None:
                    lock = asyncio.Lock()
                self._locks[key] = (lock, users + 1)
                stack.callback(self._release, key)
                await stack.enter_async_context(lock)
            yield

    def _release(self, key: str) -> None:
        lock, users = self._locks[key]
        if users == 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)


class OptimisticPath:
    """Decides any strategy atomically with read, decide, compare-and-set."""

    def __init__(
        self, runner: CommandRunner, clock: Clock | None, max_attempts: int, ttl_padding: int
    ) -> None:
        self.runner = runner
        self.clock = clock
        self.max_attempts = max_attempts
        self.ttl_padding = ttl_padding  # ms added to every TTL (see RedisBackend)
        self._locks = _KeyLocks()

    async def decide(self, keys: Sequence[str], hits: Sequence[Hit], mode: str) -> list[Decision]:
        """``mode`` is "apply", "peek" or "refund" (which returns no decisions)."""
        unique = list(dict.fromkeys(keys))
        async with self._locks.hold(unique):
            for attempt in range(self.max_attempts):
                reply = await self.runner.run_script(READ_STATES, unique, ())
                now = self._now(reply)
                stored = dict(zip(unique, (_as_bytes(value) for value in reply[2:]), strict=True))
                decisions, writes = _decide(keys, hits, mode, now, stored)
                if not writes:
                    return decisions
                args: list[ScriptArgument] = []
                for key in unique:
                    raw = stored[key]
                    args += ["0", ""] if raw is None else ["1", raw]
                for index, operation, value, ttl in writes:
                    args += [index + 1, operation, value, ttl + self.ttl_padding]
                if await self.runner.run_script(COMPARE_AND_SET, unique, args) == 1:
                    return decisions
                await asyncio.sleep(random.uniform(0, min(0.0005 * 2**attempt, 0.02)))
        raise BackendError(
            f"Gave up deciding {unique!r} after {self.max_attempts} attempts: other processes "
            "kept changing the state in between (raise max_conflict_retries, or give the "
            "strategy a native script)"
        )

    def _now(self, reply: list[Any]) -> int:
        if self.clock is not None:
            return milliseconds(self.clock)
        return int(reply[0]) * 1000 + int(reply[1]) // 1000


def _as_bytes(value: object) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode()  # a client created with decode_responses=True


def _decide(
    keys: Sequence[str],
    hits: Sequence[Hit],
    mode: str,
    now: int,
    stored: dict[str, bytes | None],
) -> tuple[list[Decision], list[tuple[int, str, bytes, int]]]:
    """The in-memory backend's rules, on states read from Redis.

    Returns the decisions and the writes: (key position, "S" or "D", value, ttl_ms).
    """
    position = {key: index for index, key in enumerate(dict.fromkeys(keys))}
    current: dict[str, Any] = {}  # key -> decoded state (the same object for every use)

    def state_of(key: str, strategy: Any) -> Any:
        if key not in current:
            raw = stored[key]
            state = None
            if raw is not None:
                try:
                    state = strategy.decode(raw)
                except ValueError:
                    state = None  # unreadable (another version's format): start afresh
            current[key] = state
        return current[key]

    decisions: list[Decision] = []
    changed: dict[str, tuple[Any, int]] = {}
    if mode == "refund":
        for key, (_, strategy, rate, cost, params) in zip(keys, hits, strict=True):
            state = state_of(key, strategy)
            new_state, ttl = strategy.refund(state, now, rate, cost, params)
            if new_state is not state:
                current[key] = new_state
                changed[key] = (new_state, ttl)
        return [], _writes(changed, position, hits, keys)

    refusals: dict[str, tuple[Any, int]] = {}
    for key, (_, strategy, rate, cost, params) in zip(keys, hits, strict=True):
        state = state_of(key, strategy)
        new_state, decision, ttl = strategy.decide(state, now, rate, cost, params)
        decisions.append(decision)
        if new_state is state:
            continue
        if decision.allowed:
            current[key] = new_state
            changed[key] = (new_state, ttl)
        elif key not in changed:
            refusals[key] = (new_state, ttl)  # a strategy that records refusals keeps them
    if mode == "peek":
        return decisions, []
    to_write = changed if all(decision.allowed for decision in decisions) else refusals
    return decisions, _writes(to_write, position, hits, keys)


def _writes(
    changed: dict[str, tuple[Any, int]],
    position: dict[str, int],
    hits: Sequence[Hit],
    keys: Sequence[str],
) -> list[tuple[int, str, bytes, int]]:
    strategies = dict(zip(keys, (hit[1] for hit in hits), strict=True))
    writes = []
    for key, (state, ttl) in changed.items():
        if state is None:
            writes.append((position[key], "D", b"", 0))
        else:
            encoded = strategies[key].encode(state)
            writes.append((position[key], "S", encoded, max(int(ttl), 1)))
    return writes

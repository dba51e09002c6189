"""The native path: built-in strategies decided by their Lua scripts, one round trip each.

One key runs its strategy's single script; the limits of one request (several keys in
one Cluster slot) run the script composed of exactly the strategies they use. Either
way the call is one ``EVALSHA``:

* ``KEYS``: the keys; ``ARGV``: the op (``a`` apply, ``p`` peek, ``r`` refund, followed
  by ``<now_ms>+<padding_ms>`` when a clock is injected), then per key the strategy's
  Lua name (several keys only), the cost and the spec (`native.SpecCache`);
* the reply is one status line of six integers per key,
  ``allowed,limit,remaining,reset_ms,retry_ms,delay_ms`` (``retry_ms`` -1: never):
  every time a strategy reports is a whole number of milliseconds over 1000, so
  dividing here gives exactly the floats the Python strategy computes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from traffik.backends.base import Hit
from traffik.backends.redis.native import NativeStrategy, SpecCache
from traffik.backends.redis.runner import CommandRunner, ScriptArgument
from traffik.backends.redis.scripts import Script, composed_script
from traffik.clock import Clock, milliseconds
from traffik.decision import Decision
from traffik.rates import Rate
from traffik.strategies.base import Params

__all__ = ["NativePath", "parse_decision", "parse_decisions"]

_OPS = {"apply": b"a", "peek": b"p", "refund": b"r"}


class NativePath:
    """Runs the native scripts for one backend."""

    def __init__(self, runner: CommandRunner, clock: Clock | None, ttl_padding: int) -> None:
        self.runner = runner
        self.clock = clock
        self.ttl_padding = ttl_padding  # ms added to every TTL (see RedisBackend)
        self.specs = SpecCache()
        self._composed: dict[tuple[str, ...], Script] = {}  # by the strategies, in order

    def op(self, mode: str) -> bytes:
        """The op argument: the mode, and the injected clock's time if there is one."""
        clock = self.clock
        if clock is None:
            return _OPS[mode]
        return b"%s%d+%d" % (_OPS[mode], milliseconds(clock), self.ttl_padding)

    async def decide_one(
        self,
        native: NativeStrategy,
        key: str,
        strategy: Any,
        rate: Rate,
        cost: int,
        params: Params,
        mode: str,
    ) -> Decision | None:
        """One key in one call of its strategy's script (None for a refund)."""
        spec = self.specs.spec(native, strategy, rate, params)
        reply = await self.runner.run_script(native.script, (key,), (self.op(mode), cost, spec))
        if mode == "refund":
            return None
        return parse_decision(reply)

    async def decide(
        self,
        keys: Sequence[str],
        hits: Sequence[Hit],
        natives: Sequence[NativeStrategy],
        mode: str,
    ) -> list[Decision]:
        """Several keys of one slot in one call, all-or-nothing (no decisions for a refund)."""
        if len(keys) == 1:
            key, (_, strategy, rate, cost, params), native = keys[0], hits[0], natives[0]
            decision = await self.decide_one(native, key, strategy, rate, cost, params, mode)
            return [] if decision is None else [decision]
        names = tuple(native.lua_name for native in natives)
        script = self._composed.get(names)
        if script is None:
            script = composed_script(frozenset((n.lua_name, n.lua_files) for n in natives))
            self._composed[names] = script
        args: list[ScriptArgument] = [self.op(mode)]
        for (_, strategy, rate, cost, params), native in zip(hits, natives, strict=True):
            args += [native.lua_name, cost, self.specs.spec(native, strategy, rate, params)]
        reply = await self.runner.run_script(script, keys, args)
        return [] if mode == "refund" else parse_decisions(reply)


def parse_decision(reply: bytes | str) -> Decision:
    """One decision from its status line."""
    if isinstance(reply, str):  # a client created with decode_responses=True
        reply = reply.encode()
    allowed, limit, remaining, reset_ms, retry_ms, delay_ms = reply.split(b",")
    return Decision(
        allowed == b"1",
        int(limit),
        int(remaining),
        int(reset_ms) / 1000,
        math.inf if retry_ms == b"-1" else int(retry_ms) / 1000,
        int(delay_ms) / 1000,
    )


def parse_decisions(reply: bytes | str) -> list[Decision]:
    """The decisions of several keys, six values each, from one status line."""
    if isinstance(reply, str):
        reply = reply.encode()
    values = reply.split(b",")
    return [
        Decision(
            values[at] == b"1",
            int(values[at + 1]),
            int(values[at + 2]),
            int(values[at + 3]) / 1000,
            math.inf if values[at + 4] == b"-1" else int(values[at + 4]) / 1000,
            int(values[at + 5]) / 1000,
        )
        for at in range(0, len(values), 6)
    ]

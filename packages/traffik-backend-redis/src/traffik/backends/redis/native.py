"""Strategies with a native Lua form, decided on the server in one atomic script.

Porting a strategy to Redis is mechanical: write ``lua/<name>.lua`` (one entry in the
``STRATEGIES`` table, mirroring the Python ``decide`` and ``refund`` expression by
expression; see ``lua/prelude.lua`` for the contract) and add a `NativeStrategy` line to
`NATIVE_STRATEGIES` saying which per-strategy values the script needs besides the rate
and the cost. Every strategy not listed here — including any subclass of a listed one —
goes through the generic optimistic path (`traffik.backends.redis.optimistic`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from traffik.backends.redis.scripts import compose_decision_script
from traffik.rates import Rate
from traffik.strategies import FixedWindow, TokenBucket
from traffik.strategies.base import Params

__all__ = ["DECISION_SCRIPT", "NATIVE_STRATEGIES", "NativeStrategy", "native_form"]

ArgumentsFunction = Callable[[Any, Rate, Params], tuple[int | str, ...]]


def _no_arguments(strategy: Any, rate: Rate, params: Params) -> tuple[int | str, ...]:
    return ()


@dataclass(frozen=True, slots=True)
class NativeStrategy:
    """A strategy class and its Lua twin.

    ``arguments(strategy, rate, params)`` gives the values the Lua ``decide`` receives as
    ``args`` (strings or integers), after the limit, the period and the cost.
    """

    strategy_class: type
    lua_file: str
    arguments: ArgumentsFunction = _no_arguments

    @property
    def name(self) -> str:
        """The strategy's ``name``: the key of its entry in the Lua ``STRATEGIES`` table."""
        return str(self.strategy_class.name)  # type: ignore[attr-defined]


def _token_bucket_arguments(
    strategy: TokenBucket, rate: Rate, params: Params
) -> tuple[int | str, ...]:
    return (strategy.capacity(rate),)


NATIVE_STRATEGIES: Final[dict[type, NativeStrategy]] = {
    native.strategy_class: native
    for native in (
        NativeStrategy(FixedWindow, "fixed_window.lua"),
        NativeStrategy(TokenBucket, "token_bucket.lua", _token_bucket_arguments),
    )
}

DECISION_SCRIPT: Final = compose_decision_script(
    native.lua_file for native in NATIVE_STRATEGIES.values()
)


def native_form(strategy: object) -> NativeStrategy | None:
    """The native form of exactly this class, or None (subclasses may override decide)."""
    return NATIVE_STRATEGIES.get(type(strategy))

"""Rate-limiting strategies: pure decisions over a small stored state.

Each strategy lives in a module of its own; see `traffik.strategies.base` for the
contract every one of them follows.
"""

from traffik.strategies.base import NO_PARAMS, Params, Step, Strategy
from traffik.strategies.concurrency import Concurrency
from traffik.strategies.fixed_window import FixedWindow
from traffik.strategies.token_bucket import TokenBucket

DEFAULT_STRATEGY = FixedWindow()

__all__ = [
    "DEFAULT_STRATEGY",
    "NO_PARAMS",
    "Concurrency",
    "FixedWindow",
    "Params",
    "Step",
    "Strategy",
    "TokenBucket",
]

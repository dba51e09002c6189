"""The outcome of one rate-limit check."""

from __future__ import annotations

import math
from typing import Final, NamedTuple

__all__ = ["NOT_LIMITED", "Decision", "new_decision"]


class Decision(NamedTuple):
    """What a strategy decided for one request against one limit.

    ``limit`` and ``remaining`` are whole units of cost; ``remaining`` is what is left
    *after* this request (unchanged when it was refused). ``reset_after`` is the number
    of seconds until the budget is whole again; ``retry_after`` is the number of seconds
    until the same request could succeed: 0 when allowed, ``math.inf`` when waiting
    cannot help (the cost is larger than the capacity).

    ``delay`` is for queueing strategies: an allowed request that must wait this many
    seconds for its slot before proceeding (0 for every other strategy). Throttles honour
    it by sleeping (asynchronously) before letting the request through.

    A limit of 0 means no limit applied (unlimited rate, exempted client, disabled
    throttle, zero cost, or an error that ``on_error`` chose to let through).
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float
    delay: float = 0.0

    @property
    def limited(self) -> bool:
        """Whether a limit was actually applied (False for the short-circuits)."""
        return self.limit > 0

    @property
    def waits_forever(self) -> bool:
        return math.isinf(self.retry_after)


NOT_LIMITED: Final = Decision(allowed=True, limit=0, remaining=0, reset_after=0.0, retry_after=0.0)


new_decision: Final = tuple.__new__
"""``new_decision(Decision, (allowed, limit, remaining, reset_after, retry_after, delay))``:
a `Decision` from all six fields in order, without the keyword handling of
``Decision(...)`` (half its cost). For the hot paths of strategies; elsewhere, call
``Decision(...)``."""

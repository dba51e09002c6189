"""`Limiter`: rate limiting for code outside the web, keyed by whatever you choose."""

from __future__ import annotations

import asyncio

from traffik.decision import Decision
from traffik.exceptions import RateLimitExceeded
from traffik.strategies.base import Params
from traffik.throttle import Throttle

__all__ = ["Limiter"]


class Limiter(Throttle[str]):
    """A throttle for code outside the web: the "connection" is the key you choose.

    >>> limiter = Limiter("emails", rate="10/min", backend=InMemoryBackend())  # doctest: +SKIP
    >>> decision = await limiter.decide("user:42")  # doctest: +SKIP

    Its verbs mean what they mean on every throttle: `decide` consumes and returns the
    `Decision` (refusing nothing); `acquire` consumes and raises `RateLimitExceeded` when
    refused, returning the decision; `hit` does the same as `acquire` but returns the key,
    as every throttle's ``hit`` returns its connection (traffik 1.x's meaning).
    """

    async def default_identifier(self, connection: str) -> str:
        return connection

    def default_identity(self, connection: str) -> str:
        return connection

    async def acquire(
        self, key: str, *, cost: int | None = None, params: Params | None = None
    ) -> Decision:
        """Like `decide`, but raise `RateLimitExceeded` when refused.

        When the strategy queues the request (``decision.delay > 0``, as
        `LeakyBucketWithQueue` does), wait that long for its slot before returning.
        """
        decision = await self.decide(key, cost=cost, params=params)
        if not decision.allowed and not self.shadow:
            raise RateLimitExceeded(decision, f"{self.uid!r} limit exceeded for {key!r}")
        if decision.delay > 0:
            await asyncio.sleep(decision.delay)
        return decision

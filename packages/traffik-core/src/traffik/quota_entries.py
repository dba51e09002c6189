"""One entry of a quota context (`traffik.quota_context`): a throttle, a cost, and the
settings that decide whether the next entry adds up into it (traffik 1.x's aggregation
rule) and whether a failed ``apply()`` is tried again (its retry policy).
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from traffik.checks import Outcome
from traffik.exceptions import ConfigurationError, RateLimitExceeded
from traffik.pipeline import decide, decide_one
from traffik.throttle import Throttle

__all__ = [
    "ApplyOnError",
    "Backoff",
    "Entry",
    "RetryOn",
    "check_context",
    "check_entry",
    "decide_entries",
    "default_backoff",
    "refuse",
    "would_allow",
]

ApplyOnError = bool | type[BaseException] | tuple[type[BaseException], ...]
"""Whether a block that raised applies its quota: never, always, or for these types."""

Backoff = Callable[[int, float], float]
"""``backoff(attempt, base_delay) -> seconds`` before retry ``attempt`` (from 1)."""

RetryOn = (
    type[Exception]
    | tuple[type[Exception], ...]
    | Callable[[Mapping[str, Any]], bool | Awaitable[bool]]
)
"""Which failures of ``apply()`` are retried: exception types, or a function of
``{"connection", "exception", "attempt", "cost", "context"}``."""


_NO_LOCKS = (
    "traffik 2 takes no locks: apply() decides every queued entry in one atomic step per "
    "backend, all-or-nothing, so no lock is needed to keep a quota from being "
    "over-consumed (remove {name}=)"
)


def default_backoff(attempt: int, base_delay: float) -> float:
    """1.x's default: the delay doubles per attempt, at most 60 s, with jitter (x0.5 to x1.5)."""
    return min(base_delay * 2.0 ** (attempt - 1), 60.0) * (0.5 + random.random())


class Entry:
    """One queued entry: a throttle, its cost (None: its cost function, at apply) and
    the settings that decide whether the next entry adds up into it."""

    __slots__ = (
        "backoff",
        "base_delay",
        "context",
        "cost",
        "retry",
        "retry_on",
        "skip_handler",
        "throttle",
    )

    def __init__(
        self,
        throttle: Throttle[Any],
        cost: int | None,
        context: Mapping[str, Any] | None,
        skip_handler: bool,
        retry: int,
        retry_on: RetryOn | None,
        backoff: Backoff,
        base_delay: float,
    ) -> None:
        self.throttle = throttle
        self.cost = cost
        self.context = context
        self.skip_handler = skip_handler
        self.retry = retry
        self.retry_on = retry_on
        self.backoff = backoff
        self.base_delay = base_delay

    def takes(self, other: Entry) -> bool:
        """Whether ``other`` adds up into this entry (1.x's aggregation rule)."""
        return (
            self.throttle is other.throttle
            and self.cost is not None
            and other.cost is not None
            and self.context == other.context
            and self.skip_handler == other.skip_handler
            and self.retry == other.retry
            and self.retry_on is other.retry_on
            and self.backoff is other.backoff
            and self.base_delay == other.base_delay
        )

    @property
    def estimated_cost(self) -> int:
        return self.cost if self.cost is not None else 1

    async def retries(self, connection: Any, exc: Exception, attempt: int) -> bool:
        """Whether this entry's ``retry_on`` retries ``exc`` (its count is checked apart)."""
        retry_on = self.retry_on
        if retry_on is None:
            return True
        if isinstance(retry_on, type | tuple):
            return isinstance(exc, retry_on)
        info = {
            "connection": connection,
            "exception": exc,
            "attempt": attempt,
            "cost": self.estimated_cost,
            "context": self.context,
        }
        answer = retry_on(info)
        if inspect.isawaitable(answer):
            answer = await answer
        return bool(answer)


def check_entry(
    context: object, retry: object, retry_on: object, backoff: object, base_delay: object
) -> None:
    """Refuse a quota entry's settings that cannot be used, naming the bad value."""
    if retry_on is not None and not callable(retry_on) and not _exception_types(retry_on):
        raise ConfigurationError(
            "retry_on must be an exception type, a tuple of them or a function of the "
            f"failure, got {retry_on!r}"
        )
    if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
        raise ConfigurationError(f"retry must be a whole number >= 0, got {retry!r}")
    if isinstance(base_delay, bool) or not isinstance(base_delay, int | float) or base_delay < 0:
        raise ConfigurationError(f"base_delay must be seconds >= 0, got {base_delay!r}")
    if backoff is not None and not callable(backoff):
        raise ConfigurationError(
            f"backoff must be a function (attempt, base_delay), got {backoff!r}"
        )
    if context is not None and not isinstance(context, Mapping):
        raise ConfigurationError(f"context must be a mapping, got {context!r}")


async def decide_entries(connection: Any, queue: list[Entry]) -> list[Outcome[Any]]:
    """Decide ``queue`` together (`traffik.pipeline.decide`), again while a failure is
    one an entry retries."""
    calls = [(entry.throttle, connection, entry.cost, None) for entry in queue]
    attempt = 0
    while True:
        attempt += 1
        try:
            return await decide(calls)
        except ConfigurationError:
            raise
        except Exception as exc:
            delays = [
                entry.backoff(attempt, entry.base_delay)
                for entry in queue
                if attempt <= entry.retry and await entry.retries(connection, exc, attempt)
            ]
            if not delays:
                raise
            await asyncio.sleep(max(delays))


async def refuse(connection: Any, refused: list[tuple[Outcome[Any], Entry]]) -> None:
    """Call the refusing throttles' handlers, the longest wait first; each is told
    the longest wait (when every limit would admit the whole queue)."""
    refused.sort(key=lambda pair: pair[0].decision.retry_after, reverse=True)
    wait = refused[0][0].decision.retry_after
    for outcome, entry in refused:
        if entry.skip_handler:
            continue
        decision = outcome.decision
        if decision.retry_after < wait:
            decision = decision._replace(retry_after=wait)
        throttle = entry.throttle
        handler = getattr(throttle, "on_throttled", None)
        if handler is None:
            raise RateLimitExceeded(decision)
        outcome.handled = True
        context = throttle.context
        if entry.context:
            context = {**context, **entry.context}
        await handler(connection, decision, throttle, context)


async def would_allow(throttle: Throttle[Any], connection: Any, cost: int | None) -> bool:
    """Whether a request of ``cost`` would be allowed now (a peek, consuming nothing)."""
    return (await decide_one(throttle, connection, cost, peek=True)).decision.allowed


def _exception_types(value: object) -> bool:
    return (
        isinstance(value, tuple)
        and bool(value)
        and all(isinstance(t, type) and issubclass(t, BaseException) for t in value)
    )


def check_context(
    lock: object,
    lock_config: object,
    context: object,
    apply_on_error: object,
    apply_on_exit: object,
) -> None:
    """Refuse a quota context's settings that cannot be used, naming the bad value."""
    if lock is not None and lock is not False:
        raise ConfigurationError(f"QuotaContext(lock={lock!r}): " + _NO_LOCKS.format(name="lock"))
    if lock_config is not None:
        raise ConfigurationError(
            f"QuotaContext(lock_config={lock_config!r}): " + _NO_LOCKS.format(name="lock_config")
        )
    if context is not None and not isinstance(context, Mapping):
        raise ConfigurationError(f"QuotaContext context must be a mapping, got {context!r}")
    if not isinstance(apply_on_exit, bool):
        raise ConfigurationError(f"apply_on_exit must be True or False, got {apply_on_exit!r}")
    if isinstance(apply_on_error, bool):
        return
    types = apply_on_error if isinstance(apply_on_error, tuple) else (apply_on_error,)
    if not _exception_types(types):
        raise ConfigurationError(
            "apply_on_error must be True, False, an exception type or a tuple of them, "
            f"got {apply_on_error!r}"
        )

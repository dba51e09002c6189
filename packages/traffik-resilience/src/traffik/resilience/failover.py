"""Backends that stay useful when their store fails.

`ResilientBackend` wraps a backend (Redis, memcached, ...) and adds, in this order:

1. a **circuit breaker**: after repeated failures, calls stop going to the store at all;
2. **retries** with backoff for store errors, inside the time budget, never past it;
3. optionally a **fallback** backend that decides while the primary cannot.

The time budget is the primary's own (``RedisBackend(timeout=0.05)``,
``MemcachedBackend(timeout=0.05)``): a budget on the store's *silence*, so a hung store
cannot hold a request while a busy one is never mistaken for a dead one (see
`traffik.timeouts`). A retry is attempted only while the check is still within that
budget. For a primary without a budget of its own, ``timeout`` sets a plain deadline per
check instead.

Only store failures count (`STORE_FAILURES`, the core's definition, which ``on_error``
follows too: `traffik.exceptions.BackendError` and its subclasses, and the ``OSError`` /
``TimeoutError`` of a backend that does not translate them): they open the breaker, are
retried and fall back. Anything else — a `ConfigurationError`, a strategy's own error, a
bug — propagates unchanged, and the breaker does not count it. Without a fallback, a
failed call raises (`CircuitOpenError`, `BackendTimeoutError`, ...), and the throttle's
``on_error`` decides what the request gets. `FailoverBackend` is the same with a
fallback required: typically an `InMemoryBackend` per instance, so limits are still
enforced (per instance) during an outage. When the breaker's probe finds the primary
answering again, decisions return to it by themselves — no restart.

State decided by the fallback during an outage stays there: when the primary returns,
clients are counted from what the primary remembers (it did not see the outage's hits).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from traffik.backends.base import Hit, ThrottleBackend
from traffik.decision import Decision
from traffik.error_policy import STORE_FAILURES, OnError
from traffik.exceptions import ConfigurationError
from traffik.rates import Rate
from traffik.resilience.breaker import CircuitBreaker, CircuitOpenError
from traffik.resilience.retry import Retry
from traffik.strategies.base import Params, Strategy
from traffik.timeouts import within

__all__ = ["DEFAULT_TIMEOUT", "STORE_FAILURES", "FailoverBackend", "ResilientBackend"]

logger = logging.getLogger("traffik.resilience")

DEFAULT_TIMEOUT = 0.05
"""Seconds: the retry budget of a check when neither ``timeout`` nor the primary says."""


class ResilientBackend(ThrottleBackend):
    """A backend guarded by a circuit breaker, a time budget, retries and an optional fallback.

    :param primary: the backend to guard.
    :param fallback: decides while the primary cannot (open circuit, error, timeout).
    :param breaker: a `CircuitBreaker`; None disables it.
    :param retry: a `Retry` policy; None means no retries. Retries run only while the
        check is within its budget (``timeout``, else the primary's ``timeout``).
    :param timeout: a plain deadline per check on the primary, retries included, for a
        primary without a time budget of its own. None (the default) relies on the
        primary's.
    :param on_error: the default ``on_error`` for throttles on this backend (the primary's
        by default).
    """

    def __init__(
        self,
        primary: ThrottleBackend,
        *,
        fallback: ThrottleBackend | None = None,
        breaker: CircuitBreaker | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        on_error: OnError | None = None,
    ) -> None:
        if not isinstance(primary, ThrottleBackend):
            raise ConfigurationError(f"primary must be a ThrottleBackend, got {primary!r}")
        if fallback is not None and not isinstance(fallback, ThrottleBackend):
            raise ConfigurationError(f"fallback must be a ThrottleBackend, got {fallback!r}")
        if fallback is primary:
            raise ConfigurationError("fallback must be a different backend from the primary")
        if breaker is not None and not isinstance(breaker, CircuitBreaker):
            raise ConfigurationError(f"breaker must be a CircuitBreaker, got {breaker!r}")
        if retry is not None and not isinstance(retry, Retry):
            raise ConfigurationError(f"retry must be a Retry, got {retry!r}")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
        ):
            raise ConfigurationError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        super().__init__(primary.namespace, on_error=on_error or primary.on_error)
        self.primary = primary
        self.fallback = fallback
        self.breaker = breaker
        self.retry = retry
        self.timeout = timeout
        own_budget = getattr(primary, "timeout", None)
        self.retry_budget: float = (
            timeout
            if timeout is not None
            else float(own_budget)
            if isinstance(own_budget, (int, float)) and own_budget > 0
            else DEFAULT_TIMEOUT
        )
        self.distributed = primary.distributed
        #: Counters for observation: retries made, calls sent to the fallback.
        self.retries = 0
        self.fallbacks = 0

    # -- decisions -------------------------------------------------------------------

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        result: Decision = await self._guarded("apply", key, strategy, rate, cost, params)
        return result

    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        result: list[Decision] = await self._guarded("apply_many", hits)
        return result

    async def peek(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        result: Decision = await self._guarded("peek", key, strategy, rate, cost, params)
        return result

    async def refund(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> None:
        await self._guarded("refund", key, strategy, rate, cost, params)

    async def delete(self, key: str) -> None:
        await self.primary.delete(key)
        if self.fallback is not None:
            await self.fallback.delete(key)

    async def clear(self) -> None:
        await self.primary.clear()
        if self.fallback is not None:
            await self.fallback.clear()

    # -- lifecycle -------------------------------------------------------------------

    async def initialize(self) -> None:
        if self.fallback is not None:
            await self.fallback.initialize()
        try:
            await self.primary.initialize()
        except ConfigurationError:
            raise
        except Exception as exc:
            # Start anyway: the API must come up while the store is down.
            logger.warning("Primary backend %r failed to start: %r", self.primary, exc)
            if self.breaker is not None:
                self.breaker.record_failure()

    async def close(self) -> None:
        try:
            await self.primary.close()
        finally:
            if self.fallback is not None:
                await self.fallback.close()

    async def ready(self) -> bool:
        try:
            return await self.primary.ready()
        except Exception:
            return False

    # -- the guarded call ----------------------------------------------------------------

    async def _guarded(self, operation: str, *args: Any) -> Any:
        breaker = self.breaker
        if breaker is not None and not breaker.allow_execution():
            return await self._fall_back(
                operation,
                args,
                CircuitOpenError(
                    f"circuit {breaker.name!r} is open: {self.primary!r} is not called"
                ),
            )
        try:
            if self.timeout is None:
                result = await self._attempts(operation, args)
            else:
                result = await within(
                    self._attempts(operation, args), self.timeout, repr(self.primary)
                )
        except STORE_FAILURES as exc:
            if breaker is not None:
                breaker.record_failure()
            return await self._fall_back(operation, args, exc)
        except BaseException:  # not the store's failure (or a cancellation): as it is
            if breaker is not None:
                breaker.record_abandoned()
            raise
        if breaker is not None:
            breaker.record_success()
        return result

    async def _attempts(self, operation: str, args: tuple[Any, ...]) -> Any:
        method = getattr(self.primary, operation)
        retry = self.retry
        attempt = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_budget
        while True:
            try:
                return await method(*args)
            except Exception as exc:
                if (
                    retry is None
                    or attempt >= retry.max_retries
                    or not isinstance(exc, retry.retry_on)
                ):
                    raise
                delay = retry.backoff.delay(attempt + 1)
                if loop.time() + delay >= deadline:
                    raise  # no time left in the budget for another attempt
                attempt += 1
                self.retries += 1
                if delay > 0:
                    await asyncio.sleep(delay)

    async def _fall_back(self, operation: str, args: tuple[Any, ...], error: Exception) -> Any:
        if self.fallback is None:
            raise error
        self.fallbacks += 1
        return await getattr(self.fallback, operation)(*args)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.primary!r}, fallback={self.fallback!r})"


class FailoverBackend(ResilientBackend):
    """`ResilientBackend` with a fallback that decides while the primary is down.

    ``FailoverBackend(RedisBackend(url, namespace="app"), InMemoryBackend("app"))`` keeps
    limiting, per instance, through a Redis outage, and returns to Redis when it answers.
    A circuit breaker is used by default so that, during an outage, requests do not each
    wait out the time budget before falling back.
    """

    def __init__(
        self,
        primary: ThrottleBackend,
        fallback: ThrottleBackend,
        *,
        breaker: CircuitBreaker | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        on_error: OnError | None = None,
    ) -> None:
        if fallback is None:
            raise ConfigurationError("FailoverBackend needs a fallback backend")
        super().__init__(
            primary,
            fallback=fallback,
            breaker=breaker if breaker is not None else CircuitBreaker(name=primary.namespace),
            retry=retry,
            timeout=timeout,
            on_error=on_error,
        )

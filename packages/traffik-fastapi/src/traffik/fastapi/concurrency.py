"""`ConcurrencyLimit`: cap the requests a client has in flight.

An admitted request takes a slot and gives it back when it ends. "Ends" is the first of:

* the response is finished (FastAPI: after the response is sent; a decorator: when the
  endpoint returns; `ThrottleMiddleware`: when the application returns);
* the client disconnects, as far as the application sees it (`ThrottleMiddleware`
  watches every ``receive`` for ``http.disconnect`` — a streaming response, a body
  read or ``request.is_disconnected()`` all read it);
* the handler is cancelled or raises.

Slots are leases (`traffik.strategies.concurrency.Concurrency`): a slot whose holder
crashed, or lost its store, frees itself after ``lease`` seconds, on every backend.

Ways in: ``Depends(limit)`` (a dependency with ``yield``), ``@throttled(limit)``,
``MiddlewareThrottle(limit, ...)``, or ``async with limit.slot(request): ...``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, ClassVar

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from traffik.backends.base import ThrottleBackend
from traffik.decision import Decision
from traffik.error_policy import OnError
from traffik.exceptions import ConfigurationError
from traffik.fastapi.connection_throttle import (
    ConnectionThrottle,
    DependencySignature,
    KeyBy,
    MillisecondHandler,
    ThrottledHandler,
)
from traffik.fastapi.enforcement import enforce
from traffik.fastapi.headers import HeaderSpec
from traffik.fastapi.ledger import LEDGER_KEY, RequestLedger
from traffik.fastapi.registry import ThrottleRegistry
from traffik.fastapi.rules import Rule
from traffik.fastapi.throttle import BaseHTTPThrottle
from traffik.rates import Rate
from traffik.strategies.concurrency import Concurrency
from traffik.throttle import CostFunction, Identifier

__all__ = ["ConcurrencyLimit", "release"]


class ConcurrencyLimit(BaseHTTPThrottle):
    """At most ``max_in_flight`` requests per client at once.

    :param uid: a unique, stable name (part of every key; the header policy name).
    :param max_in_flight: how many requests a client may have in flight.
    :param lease: the longest a slot is held, in seconds: a slot not given back (its
        holder crashed) frees itself after this. Longer than your slowest request.
    :param retry_after: what a refused client is told to wait, at most, in seconds.

    The other parameters are `HTTPThrottle`'s. Keys follow ``key_by`` / ``use_method``
    as for `HTTPThrottle`; ``key_by="client"`` caps a client across every route the
    limit guards.
    """

    holds: ClassVar[bool] = True
    quota_unit: ClassVar[bytes | None] = b"concurrent-requests"

    __signature__ = DependencySignature()

    def __init__(
        self,
        uid: str,
        max_in_flight: int,
        *,
        lease: float = 60.0,
        retry_after: float = 1.0,
        identifier: Identifier[HTTPConnection] | None = None,
        backend: ThrottleBackend | None = None,
        cost: int | CostFunction[HTTPConnection] = 1,
        on_error: OnError | None = None,
        handle_throttled: MillisecondHandler | None = None,
        use_method: bool = True,
        key_by: KeyBy = "route",
        headers: HeaderSpec | None = None,
        context: Mapping[str, Any] | None = None,
        rules: Iterable[Rule] = (),
        registry: ThrottleRegistry | None = None,
        shadow: bool = False,
        on_throttled: ThrottledHandler | None = None,
    ) -> None:
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int):
            raise ConfigurationError(
                f"ConcurrencyLimit {uid!r}: max_in_flight must be a whole number >= 1, "
                f"got {max_in_flight!r}"
            )
        if max_in_flight < 1:
            raise ConfigurationError(
                f"ConcurrencyLimit {uid!r}: max_in_flight must be >= 1, got {max_in_flight!r}"
            )
        lease_ms = _milliseconds(lease, "lease", uid)
        retry_ms = _milliseconds(retry_after, "retry_after", uid)
        super().__init__(
            uid,
            Rate(limit=max_in_flight, milliseconds=lease_ms),
            identifier=identifier,
            strategy=Concurrency(retry_after_ms=retry_ms),
            backend=backend,
            cost=cost,
            on_error=on_error,
            handle_throttled=handle_throttled,
            use_method=use_method,
            key_by=key_by,
            headers=headers,
            context=context,
            rules=rules,
            registry=registry,
            shadow=shadow,
            on_throttled=on_throttled,
        )
        self.max_in_flight = max_in_flight
        self.lease = lease_ms / 1000

    async def __call__(
        self,
        request: Request,
        response: Response | None = None,
        *,
        cost: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[Request]:
        """A FastAPI dependency with ``yield``: holds the slot while the request runs.
        It gives back the request, as ``Depends(throttle)`` does for every throttle
        (``get_decision(request, limit)`` reads the decision). `hit` takes a slot that
        is held until the request ends under `throttled` or `ThrottleMiddleware`, or
        until ``release(request)``; `slot` holds one for an ``async with`` block."""
        await enforce(request, (self,), cost=cost, context=context, response=response)
        try:
            yield request
        finally:
            await release(request, self)

    @contextlib.asynccontextmanager
    async def slot(
        self,
        connection: HTTPConnection,
        *,
        cost: int | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[Decision]:
        """Hold a slot for the ``async with`` block (refused: ``handle_throttled`` runs)."""
        outcomes = await enforce(connection, (self,), cost=cost, context=context)
        try:
            yield outcomes[0].decision
        finally:
            await release(connection, self)

    def __repr__(self) -> str:
        return (
            f"ConcurrencyLimit({self.uid!r}, max_in_flight={self.max_in_flight}, "
            f"lease={self.lease!r})"
        )


async def release(connection: HTTPConnection, throttle: ConnectionThrottle | None = None) -> None:
    """Give back the slots this request holds (of ``throttle``, or all). Idempotent."""
    ledger: RequestLedger | None = connection.scope.get(LEDGER_KEY)
    if ledger is not None:
        await ledger.release(throttle)


def _milliseconds(seconds: float, what: str, uid: str) -> int:
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise ConfigurationError(
            f"ConcurrencyLimit {uid!r}: {what} must be a positive number of seconds, "
            f"got {seconds!r}"
        )
    return max(round(seconds * 1000), 1)

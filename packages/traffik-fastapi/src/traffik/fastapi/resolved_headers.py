"""``throttle.get_headers`` and ``set_headers``: a throttle's custom headers on demand.

As in traffik 1.x: the throttle's custom headers (`traffik.fastapi.custom_headers`; the
standard ones are not among them), with ``headers`` merged over them for this call
(`Header.DISABLE` leaves one out), resolved against ``stat``: by default the throttle's
decision on this request when it made one, else its standing read without consuming.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection
from starlette.responses import Response

from traffik.fastapi.custom_headers import Header, HeaderStat
from traffik.fastapi.custom_rendering import CustomHeader, compile_headers, resolve_one
from traffik.fastapi.headers import custom_headers_of
from traffik.fastapi.ledger import LEDGER_KEY, RequestLedger
from traffik.stats import ThrottleStat

if TYPE_CHECKING:
    from traffik.fastapi.connection_throttle import ConnectionThrottle

__all__ = ["get_headers", "set_headers"]


async def get_headers(
    throttle: ConnectionThrottle,
    connection: HTTPConnection,
    headers: Mapping[str, Any] | None = None,
    stat: HeaderStat | ThrottleStat | None = None,
    context: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The values of ``throttle``'s custom headers for ``connection``, by name."""
    items: dict[str, CustomHeader] = {item.name: item for item in custom_headers_of(throttle)}
    if headers:
        for name, value in headers.items():
            if value is Header.DISABLE:
                items.pop(name.lower(), None)
        kept = {name: value for name, value in headers.items() if value is not Header.DISABLE}
        for item in compile_headers(kept):
            items[item.name] = item
    if not items:
        return {}
    found = stat if stat is not None else await _standing(throttle, connection)
    standing = HeaderStat.of_stat(found) if isinstance(found, ThrottleStat) else found
    merged = {**throttle.context, **context} if context else throttle.context
    resolved: dict[str, str] = {}
    for item in items.values():
        value = resolve_one(item, connection, standing, merged)
        if value is not None:
            resolved[item.label] = value.decode("latin-1")
    return resolved


async def set_headers(
    throttle: ConnectionThrottle,
    response: Response,
    connection: HTTPConnection,
    *,
    headers: Mapping[str, Any] | None = None,
    stat: HeaderStat | ThrottleStat | None = None,
    context: Mapping[str, Any] | None = None,
) -> None:
    """Put ``throttle``'s custom headers into ``response`` (replacing same-named ones)."""
    resolved = await get_headers(throttle, connection, headers, stat, context)
    response.headers.update(resolved)


async def _standing(
    throttle: ConnectionThrottle, connection: HTTPConnection
) -> HeaderStat | ThrottleStat | None:
    """The throttle's latest decision on this request, else its standing (None when no
    limit applies)."""
    ledger: RequestLedger | None = connection.scope.get(LEDGER_KEY)
    if ledger is not None:
        for outcome in reversed(ledger.outcomes):
            if outcome.throttle is throttle:
                if outcome.decision.limit <= 0:
                    return None
                return HeaderStat.of_outcome(outcome)
    return await throttle.stat(connection)

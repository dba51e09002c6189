"""Custom headers on a response: a throttle's snapshot of its `Headers`, and rendering.

`compile_headers` checks and freezes a collection when a throttle is built (constants
always sent are encoded once); `render_custom` writes the custom headers of a request's
decisions, one value per name; `resolve_one` computes one value, cleaned of what a header
may not carry, leaving out the header of a resolver that fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection, Request
from starlette.types import Scope

from traffik.fastapi.custom_headers import NOT_FIELD_VALUE, Header, Headers, HeaderStat, logger

if TYPE_CHECKING:
    from traffik.fastapi.ledger import Outcome

__all__ = ["CustomHeader", "clean_value", "compile_headers", "render_custom", "resolve_one"]


@dataclass(frozen=True, slots=True)
class CustomHeader:
    """One header of a throttle, ready to render: its name (as given, and lower-case)
    and, for a constant always sent, the encoded value."""

    label: str
    name: str
    raw_name: bytes
    header: Header
    raw_value: bytes | None


def compile_headers(headers: Mapping[str, Any]) -> tuple[CustomHeader, ...]:
    """A throttle's snapshot of ``headers`` (validated; disabled entries left out)."""
    checked = headers if isinstance(headers, Headers) else Headers(headers)
    compiled = []
    for name, header in checked.items():
        if not isinstance(header, Header):  # Header.DISABLE: left out
            continue
        constant = header.constant
        raw_value = constant.encode("latin-1") if header.static and constant is not None else None
        lowered = name.lower()
        compiled.append(CustomHeader(name, lowered, lowered.encode("ascii"), header, raw_value))
    return tuple(compiled)


def clean_value(value: object, name: str) -> bytes | None:
    """A resolver's value as it may be sent: control characters (CR, LF, ...) and
    characters beyond Latin-1 removed; None when it is no text or number."""
    if not isinstance(value, str):
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        else:
            logger.warning(
                "Header %r: its resolver returned %r, not a string; left out", name, value
            )
            return None
    if NOT_FIELD_VALUE.search(value) is not None:
        value = NOT_FIELD_VALUE.sub("", value)
    return value.strip(" \t").encode("latin-1")


def resolve_one(
    item: CustomHeader,
    connection: HTTPConnection,
    stat: HeaderStat | None,
    context: Mapping[str, Any] | None,
) -> bytes | None:
    """``item``'s value for this response, or None when it is not sent."""
    if item.raw_value is not None:
        return item.raw_value
    header = item.header
    if stat is None:  # no limit applied: only constants always sent
        return None
    try:
        if not header.check(connection, stat, context):
            return None
        value = header.resolve(connection, stat, context)
    except Exception:
        logger.warning(
            "Header %r: its resolver or condition raised; left out", item.name, exc_info=True
        )
        return None
    return clean_value(value, item.name)


def connection_of(scope: Scope) -> HTTPConnection:
    """The connection a resolver is given: the request, or the socket being handshaken."""
    return Request(scope) if scope["type"] == "http" else HTTPConnection(scope)


def render_custom(
    outcomes: list[tuple[Outcome, tuple[CustomHeader, ...]]],
    scope: Scope | None,
    taken: set[bytes],
) -> list[tuple[bytes, bytes]]:
    """The custom headers of ``outcomes``, one value per name: the limit closest to
    refusing gives it (as for ``X-RateLimit-*``); names in ``taken`` are left out."""
    if len(outcomes) > 1:
        outcomes = sorted(outcomes, key=_closeness)
    connection = connection_of(scope) if scope is not None else None
    block: list[tuple[bytes, bytes]] = []
    for outcome, items in outcomes:
        stat = HeaderStat.of_outcome(outcome)
        context = outcome.throttle.context
        for item in items:
            if item.raw_name in taken:
                continue
            if connection is None and item.raw_value is None:
                continue
            value = resolve_one(item, connection, stat, context)  # type: ignore[arg-type]
            if value is not None:
                taken.add(item.raw_name)
                block.append((item.raw_name, value))
    return block


def _closeness(entry: tuple[Outcome, tuple[CustomHeader, ...]]) -> tuple[bool, float, int, float]:
    decision = entry[0].decision
    waiting = -decision.retry_after if not decision.allowed else 0.0
    return (decision.allowed, waiting, decision.remaining, -decision.reset_after)

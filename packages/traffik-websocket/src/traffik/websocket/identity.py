"""Who a WebSocket client is, worked out once per connection.

A connection's client does not change while it is open, so an identifier runs once per
connection and per identifier: its result is kept on the connection's ASGI scope (a
handshake checked by `ThrottleMiddleware` and the messages the endpoint checks later
share it). Each connection also gets a random id on first use, for budgets kept per
connection rather than per client.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Final

from starlette.requests import HTTPConnection
from starlette.types import Scope

from traffik.fastapi import get_remote_address
from traffik.identities import ExemptedType

__all__ = [
    "CONNECTION_ID_KEY",
    "IDENTITIES_KEY",
    "ConnectionIdentifier",
    "client_address",
    "connection_id",
]

IDENTITIES_KEY: Final = "traffik.identities"
"""The scope key of a connection's identities: ``{id(identifier): (identifier, identity)}``."""

CONNECTION_ID_KEY: Final = "traffik.connection_id"
"""The scope key of a connection's random id."""

Identify = Callable[[HTTPConnection], Awaitable[str | ExemptedType]]


async def client_address(connection: HTTPConnection) -> str:
    """The default identifier: the socket peer's address (no proxy header is believed;
    pass ``identifier=remote_address([...])`` to name trusted proxies)."""
    return get_remote_address(connection)


class ConnectionIdentifier:
    """``identifier``, run at most once per connection (its result kept on the scope).

    A failing identifier caches nothing: the next check asks again.
    """

    __slots__ = ("identifier",)

    def __init__(self, identifier: Identify) -> None:
        self.identifier = identifier

    async def __call__(self, connection: HTTPConnection) -> str | ExemptedType:
        scope = connection.scope
        cache: dict[int, tuple[Identify, str | ExemptedType]] | None = scope.get(IDENTITIES_KEY)
        if cache is None:
            cache = scope[IDENTITIES_KEY] = {}
        identifier = self.identifier
        # Keyed by id(): identifiers need not be hashable. The entry keeps the identifier
        # alive, so its id cannot be reused by another while the connection lasts.
        entry = cache.get(id(identifier))
        if entry is not None and entry[0] is identifier:
            return entry[1]
        identity = await identifier(connection)
        cache[id(identifier)] = (identifier, identity)
        return identity

    def __repr__(self) -> str:
        return f"ConnectionIdentifier({self.identifier!r})"


def connection_id(scope: Scope) -> str:
    """This connection's random id (16 hex digits), made on first use."""
    value: str | None = scope.get(CONNECTION_ID_KEY)
    if value is None:
        value = scope[CONNECTION_ID_KEY] = secrets.token_hex(8)
    return value

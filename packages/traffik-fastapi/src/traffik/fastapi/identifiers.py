"""Ready-made identifiers: who a request comes from.

An identifier is an async function of the connection returning the client's identity (a
string) or `traffik.EXEMPTED`. Every throttle keys its budgets by it, so the identity
must tell clients apart: the identifiers here fall back to the client's address rather
than put everyone without a key (or a login) into one shared budget.

* `remote_address` (the default): the socket peer, or the client named by proxy headers
  when the peer is a trusted proxy (see `traffik.fastapi.proxies`).
* `header_identifier`: an API key or token from a request header (stored hashed).
* `user_identifier`: the authenticated user Starlette's ``AuthenticationMiddleware`` put
  on the request (``request.user`` / ``scope["user"]``).

Identities of different kinds cannot collide: keys are ``key:<hash>``, users
``user:<identity>``, addresses are bare.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Final

from starlette.requests import HTTPConnection

from traffik.exceptions import ConfigurationError
from traffik.fastapi.proxies import get_remote_address, remote_address
from traffik.identities import ExemptedType

__all__ = [
    "HTTPIdentifier",
    "HeaderIdentifier",
    "UserIdentifier",
    "header_identifier",
    "remote_address",
    "user_identifier",
]

HTTPIdentifier = Callable[[HTTPConnection], Awaitable[str | ExemptedType]]

# RFC 9110 token characters: what a header name may contain.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


async def _by_address(connection: HTTPConnection) -> str:
    return get_remote_address(connection)


def header_identifier(
    name: str, *, hash_values: bool = True, fallback: HTTPIdentifier | None = None
) -> HeaderIdentifier:
    """Identify clients by a request header, such as an API key.

    ``HTTPThrottle("api", rate="1000/h", identifier=header_identifier("X-API-Key"))``

    :param name: the header (``"X-API-Key"``, ``"Authorization"``); any case.
    :param hash_values: store a SHA-256 digest rather than the raw value, so that keys in
        the store reveal no credentials (default True).
    :param fallback: the identifier for requests without the header; by client address
        by default.
    """
    return HeaderIdentifier(name, hash_values=hash_values, fallback=fallback)


def user_identifier(
    *, attribute: str = "identity", fallback: HTTPIdentifier | None = None
) -> UserIdentifier:
    """Identify clients by the authenticated user on the request.

    Reads ``scope["user"]`` as Starlette's ``AuthenticationMiddleware`` sets it (install it
    *outside* a `ThrottleMiddleware` whose throttles should see users).

    :param attribute: the user attribute naming the user (``identity`` by default; a
        ``SimpleUser``'s identity is its username).
    :param fallback: the identifier for anonymous requests; by client address by default.
    """
    return UserIdentifier(attribute=attribute, fallback=fallback)


class HeaderIdentifier:
    """Identify clients by a request header (see `header_identifier`)."""

    __slots__ = ("_name", "fallback", "hash_values", "name")

    def __init__(
        self,
        name: str,
        *,
        hash_values: bool = True,
        fallback: HTTPIdentifier | None = None,
    ) -> None:
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise ConfigurationError(f"Invalid header name {name!r} for header_identifier")
        if fallback is not None and not callable(fallback):
            raise ConfigurationError(f"fallback must be an async identifier, got {fallback!r}")
        self.name = name
        self._name = name.lower()
        self.hash_values = hash_values
        self.fallback: HTTPIdentifier = fallback or _by_address

    async def __call__(self, connection: HTTPConnection) -> str | ExemptedType:
        value = connection.headers.get(self._name)
        if not value:
            return await self.fallback(connection)
        if self.hash_values:
            value = hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return "key:" + value

    def __repr__(self) -> str:
        return f"header_identifier({self.name!r})"


class UserIdentifier:
    """Identify clients by the authenticated user (see `user_identifier`)."""

    __slots__ = ("attribute", "fallback")

    def __init__(
        self, *, attribute: str = "identity", fallback: HTTPIdentifier | None = None
    ) -> None:
        if not isinstance(attribute, str) or not attribute.isidentifier():
            raise ConfigurationError(f"Invalid user attribute {attribute!r}")
        if fallback is not None and not callable(fallback):
            raise ConfigurationError(f"fallback must be an async identifier, got {fallback!r}")
        self.attribute = attribute
        self.fallback: HTTPIdentifier = fallback or _by_address

    async def __call__(self, connection: HTTPConnection) -> str | ExemptedType:
        user = connection.scope.get("user")
        if user is None or not getattr(user, "is_authenticated", False):
            return await self.fallback(connection)
        identity = getattr(user, self.attribute)
        if not isinstance(identity, str) or not identity:
            raise ConfigurationError(
                f"user_identifier: the user's {self.attribute!r} is {identity!r}; "
                "it must be a non-empty string"
            )
        return "user:" + identity

    def __repr__(self) -> str:
        return f"user_identifier(attribute={self.attribute!r})"

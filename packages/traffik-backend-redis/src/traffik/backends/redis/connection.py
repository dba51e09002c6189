"""Where the backend's Redis client comes from, checked before anything connects.

The backend accepts a URL (it then creates, owns and closes the client), a
``redis.asyncio.Redis`` or ``RedisCluster`` (used as given, never closed by the backend),
or a ``redis.asyncio.sentinel.Sentinel`` plus a service name (the backend creates, owns
and closes the client of the current primary; the Sentinel object stays the caller's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from traffik import redaction
from traffik.exceptions import ConfigurationError
from traffik.redaction import safe_repr

__all__ = ["ClientSource", "RedisClient", "redact_url", "validate_number"]

CONNECT_TIMEOUT_FLOOR = 30.0
"""Seconds before opening a connection gives up on its own, behind the runner's budget."""


class RedisClient(Protocol):
    """What the backend needs of a client: standalone, Sentinel-managed or Cluster."""

    async def execute_command(self, *args: Any, **options: Any) -> Any: ...


# The query options redis-py reads from a URL: shown by name (never by value) in messages.
URL_OPTIONS: Final = frozenset(
    {
        "db", "socket_timeout", "socket_connect_timeout", "socket_keepalive",
        "retry_on_timeout", "retry_on_error", "max_connections", "health_check_interval",
        "ssl_check_hostname", "ssl_cert_reqs", "timeout", "protocol", "client_name",
    }
)  # fmt: skip


def redact_url(url: str) -> str:
    """The URL with its password, and every query value, replaced by ``***``."""
    return redaction.redact_url(url, query_names=URL_OPTIONS)


def validate_number(value: object, name: str, *, minimum: float, integer: bool) -> None:
    """Raise ConfigurationError unless ``value`` is a finite number >= ``minimum``."""
    kinds = (int,) if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or not math.isfinite(value)
        or value < minimum
    ):
        what = "a whole number" if integer else "a finite number"
        raise ConfigurationError(
            f"RedisBackend {name} must be {what} >= {minimum:g}, got {value!r}"
        )
    if not integer and value <= 0:
        raise ConfigurationError(f"RedisBackend {name} must be above 0, got {value!r}")


def _check_url(url: str, cluster: bool) -> None:
    # No message repeats a parser's own words: for a password holding '/', '?', '#' or
    # '@' unencoded, they quote part of it (as the "port", say).
    shown = redact_url(url)
    if not url.strip():
        raise ConfigurationError(
            "RedisBackend needs a Redis URL such as 'redis://localhost:6379/0'"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigurationError(
            f"Invalid Redis URL {shown!r}: its host and port cannot be read (a password "
            "holding ':', '/', '?', '#' or '@' must be percent-encoded, as "
            "urllib.parse.quote(password, safe='') does)"
        ) from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(f"Invalid Redis URL {shown!r}: use redis://, rediss:// or unix://")
    try:
        parse_url(url)
    except ValueError:
        raise ConfigurationError(
            f"Invalid Redis URL {shown!r}: redis-py cannot read it (check the database "
            "number and the query options)"
        ) from None
    if cluster and parts.scheme not in ("redis", "rediss"):
        raise ConfigurationError(
            f"Invalid Redis Cluster URL {shown!r}: use redis:// or rediss:// and a node's address"
        )
    if parts.scheme in ("redis", "rediss"):
        database = parts.path.strip("/")
        if database and not (database.isascii() and database.isdigit()):
            raise ConfigurationError(f"Invalid Redis URL {shown!r}: the database must be a number")
        if cluster and database not in ("", "0"):
            raise ConfigurationError(
                f"Invalid Redis Cluster URL {shown!r}: a cluster has only database 0"
            )


@dataclass(frozen=True)
class ClientSource:
    """A validated description of where the client comes from; `open` makes the client.

    Its repr shows `describe` only: the URL, the client and ``client_kwargs`` may hold a
    password (and a traceback with locals, as error trackers capture, shows reprs).
    """

    connection: str | Redis | RedisCluster | Sentinel
    cluster: bool
    service_name: str | None = None
    client_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"ClientSource({self.describe!r}, cluster={self.cluster})"

    @classmethod
    def check(
        cls,
        connection: object,
        *,
        cluster: bool,
        sentinel_service_name: object,
        client_kwargs: object,
    ) -> ClientSource:
        if not isinstance(cluster, bool):
            raise ConfigurationError(f"RedisBackend cluster must be True or False, got {cluster!r}")
        if client_kwargs is not None and not isinstance(client_kwargs, Mapping):
            raise ConfigurationError(
                f"RedisBackend client_kwargs must be a mapping, got {safe_repr(client_kwargs)}"
            )
        kwargs = dict(client_kwargs or {})
        if isinstance(connection, Sentinel):
            if not isinstance(sentinel_service_name, str) or not sentinel_service_name:
                raise ConfigurationError(
                    "RedisBackend with a Sentinel needs sentinel_service_name, the name of the "
                    f"monitored primary (such as 'mymaster'), got {sentinel_service_name!r}"
                )
            if cluster:
                raise ConfigurationError("RedisBackend cluster=True does not apply to a Sentinel")
            return cls(connection, False, sentinel_service_name, kwargs)
        if sentinel_service_name is not None:
            raise ConfigurationError(
                f"RedisBackend sentinel_service_name={sentinel_service_name!r} needs a "
                "redis.asyncio.sentinel.Sentinel as the connection"
            )
        if isinstance(connection, str):
            _check_url(connection, cluster)
            return cls(connection, cluster, None, kwargs)
        if isinstance(connection, (Redis, RedisCluster)):
            if cluster:
                raise ConfigurationError(
                    "RedisBackend cluster=True applies to a URL; a client is used as it is"
                )
            if kwargs:
                raise ConfigurationError(
                    "RedisBackend client_kwargs apply to a client the backend creates (from a "
                    "URL or a Sentinel), not to a client you pass"
                )
            return cls(connection, isinstance(connection, RedisCluster), None, kwargs)
        hint = ""
        module = type(connection).__module__
        if module.startswith("redis.") and not module.startswith("redis.asyncio"):
            hint = " (a synchronous redis client: use redis.asyncio instead)"
        elif isinstance(connection, (bytes, bytearray)):
            hint = " (pass the URL as a str)"
        raise ConfigurationError(
            "RedisBackend needs a Redis URL, a redis.asyncio.Redis, a RedisCluster or a "
            f"Sentinel, got {safe_repr(connection)}{hint}"
        )

    @property
    def describe(self) -> str:
        """How errors and reprs name the server: the redacted URL, or the client."""
        connection = self.connection
        if isinstance(connection, str):
            return redact_url(connection)
        if isinstance(connection, Sentinel):
            return f"Sentinel service {self.service_name!r}"
        return type(connection).__name__

    @property
    def owned(self) -> bool:
        """Whether the backend creates the client, and so closes it."""
        return not isinstance(self.connection, (Redis, RedisCluster))

    def open(self, *, timeout: float, max_connections: int) -> RedisClient:
        """The client: the one given, or a new one (no I/O happens here)."""
        connection = self.connection
        if isinstance(connection, (Redis, RedisCluster)):
            return connection
        # The backend bounds every call itself (a liveness budget, see runner.py), and
        # cancels a call Redis leaves unanswered (the connection is then dropped). So
        # commands get no socket timeout of their own: with one, redis-py runs each send
        # under asyncio.wait_for (a task per command before Python 3.12) and each read
        # under a timeout scope, which costs more than the rest of a check. Connecting
        # keeps a long last-resort timeout. One retry, on a connection error only,
        # replaces a connection that died idle (a restarted server) without re-running a
        # command that may have run: a retry after a timeout could count one request twice.
        options: dict[str, Any] = {
            "socket_timeout": None,
            "socket_connect_timeout": max(timeout, CONNECT_TIMEOUT_FLOOR),
            "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        }
        options.update(self.client_kwargs)
        if isinstance(connection, Sentinel):
            assert self.service_name is not None
            return connection.master_for(  # type: ignore[no-any-return]
                self.service_name, max_connections=max_connections, **options
            )
        if self.cluster:
            return RedisCluster.from_url(connection, max_connections=max_connections, **options)
        # The runner lets at most max_connections calls through at once (the others wait
        # their turn there), so the pool never runs out; a plain pool is the cheapest.
        pool = ConnectionPool.from_url(connection, max_connections=max_connections, **options)
        return Redis.from_pool(pool)

"""Reaching memcached: addresses, the aiomcache client, and what its failures mean.

Every command goes through `WatchedClient`: it waits for one of the pool's connections,
then runs as one exchange of the backend's silence budget (`traffik.timeouts`), from its
write to its reply, so waiting for a connection is never counted as memcached's silence.
Memcached's failures become `BackendError` subclasses; anything else propagates as it is.

Two properties of aiomcache 0.8 shape how the backend talks to it:

* A command cancelled while it waits for its reply (a timeout, a cancelled request)
  leaves that reply unread on a connection that goes back to the pool, and the *next*
  command on it reads the stale reply — a ``cas`` could read another's ``STORED``. So the
  backend never cancels a command in flight: every command runs in a task of the
  backend's own, and a caller that gives up stops waiting for it instead.
  A connection found silent is not cancelled but closed (`MemcachedClient` hands each
  command's exchange the means): its command then fails, and the pool discards it.
* When the server closes a connection after reading a command but before replying,
  aiomcache's reply loop spins forever without yielding, freezing the event loop
  (aio-libs/aiomcache#502). `MemcachedClient` fixes that one method: the connection's end
  raises, and the pool discards the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any, Final
from urllib.parse import urlsplit

import aiomcache
from aiomcache.exceptions import ClientException, ValidationException
from aiomcache.pool import Connection, MemcachePool

from traffik.exceptions import (
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
)
from traffik.redaction import redact_url, safe_repr
from traffik.timeouts import Exchange, SilenceWatchdog

__all__ = [
    "DEFAULT_PORT",
    "MemcachedClient",
    "WatchedClient",
    "as_backend_error",
    "parse_address",
    "parse_servers",
]


DEFAULT_PORT: Final = 11211
SCHEMES: Final = ("memcached",)


_exchange: ContextVar[Exchange | None] = ContextVar("traffik_memcached_exchange", default=None)
"""The exchange of the command being sent in this context (see `WatchedClient`)."""


class _Pool(MemcachePool):
    """aiomcache's pool, telling the exchange in progress how to drop the connection it
    hands out: closing it fails the command on it, and the pool then discards it."""

    async def acquire(self) -> Connection:
        connection = await super().acquire()
        exchange = _exchange.get()
        if exchange is not None:
            exchange.abort = connection.writer.transport.abort
        return connection


class MemcachedClient(aiomcache.Client):
    """aiomcache's client, raising instead of spinning when a reply never comes, whose
    connections can be dropped when found silent."""

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        pool_size: int = 2,
        pool_minsize: int | None = None,
        conn_args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            host, port, pool_size=pool_size, pool_minsize=pool_minsize, conn_args=conn_args
        )
        self._pool = _Pool(
            host, port, minsize=pool_minsize or pool_size, maxsize=pool_size, conn_args=conn_args
        )

    async def _execute_simple_command(self, conn: Connection, raw_command: bytes) -> bytes:
        conn.writer.write(raw_command)
        await conn.writer.drain()
        response = bytearray()
        while not response.endswith(b"\r\n"):
            line = await conn.reader.readline()
            if not line:
                raise ConnectionResetError("memcached closed the connection before replying")
            response.extend(line)
        return bytes(response[:-2])


async def _arithmetic(
    client: aiomcache.Client, command: bytes, key: bytes, delta: int
) -> int | None:
    """``incr`` / ``decr`` on one of the client's connections: the new count, None when the
    key is not stored (aiomcache's own raise then, closing the connection: a window's first
    check would cost a reconnection).

    Safe to cancel in flight, unlike aiomcache's commands: a connection whose reply was not
    read is closed, never reused, so a counter needs no task of its own.
    """
    pool = client._pool
    connection = await pool.acquire()
    try:
        reply = await client._execute_simple_command(
            connection, b"%b %b %d\r\n" % (command, key, delta)
        )
    except BaseException as exc:  # a failure or a cancellation: its reply may be unread
        connection.reader.set_exception(
            exc if isinstance(exc, Exception) else ConnectionAbortedError("cancelled")
        )
        raise
    finally:
        pool.release(connection)  # one that failed is closed here
    if reply == b"NOT_FOUND":
        return None
    if not reply.isdigit():
        raise ClientException(f"memcached {command.decode()} failed", reply)
    return int(reply)


def parse_address(url: str | None, host: str | None, port: int | None) -> tuple[str, int]:
    """``(host, port)`` from a ``memcached://host:port`` URL or from host and port.

    :raises ConfigurationError: naming the value that is wrong (a URL with its user
        information hidden: it may hold a password).
    """
    if url is not None and (host is not None or port is not None):
        shown = redact_url(url) if isinstance(url, str) else safe_repr(url)
        raise ConfigurationError(
            f"Give memcached either url= ({shown!r}) or host=/port= ({host!r}, {port!r}), not both"
        )
    if url is None:
        host = "127.0.0.1" if host is None else host
        port = DEFAULT_PORT if port is None else port
        if not isinstance(host, str) or not host or any(c.isspace() or c in "/@" for c in host):
            shown = redact_url(host) if isinstance(host, str) else safe_repr(host)
            raise ConfigurationError(
                f"memcached host must be a host name or address (a URL goes in url=), got {shown!r}"
            )
        return host, _checked_port(port, repr(port))
    if not isinstance(url, str):
        raise ConfigurationError(f"memcached url must be a string, got {safe_repr(url)}")
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parsed_port = parts.port
    except ValueError:  # its message may quote part of a password
        raise ConfigurationError(
            f"Invalid memcached URL {shown!r}: its host and port cannot be read"
        ) from None
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(
            f"Invalid memcached URL {shown!r}: the scheme must be memcached://, "
            f"as in 'memcached://127.0.0.1:11211'"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            f"Invalid memcached URL {shown!r}: memcached's text protocol has no authentication"
        )
    if not parts.hostname:
        raise ConfigurationError(f"Invalid memcached URL {shown!r}: it names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigurationError(
            f"Invalid memcached URL {shown!r}: only memcached://host:port is understood"
        )
    return parts.hostname, _checked_port(
        DEFAULT_PORT if parsed_port is None else parsed_port, shown
    )


def parse_servers(servers: object) -> list[tuple[str, int]]:
    """``(host, port)`` of each of several servers, given as ``"host[:port]"`` or
    ``"memcached://host[:port]"`` (``"[::1]:11211"`` for IPv6).

    :raises ConfigurationError: naming the value that is wrong, or a server given twice.
    """
    if isinstance(servers, str):
        raise ConfigurationError(
            f"memcached servers must be a list of 'host:port' strings, got "
            f"{redact_url(servers)!r} (one server: [{redact_url(servers)!r}], or url=)"
        )
    if not isinstance(servers, (list, tuple)):
        raise ConfigurationError(
            f"memcached servers must be a list of 'host:port' strings, got {safe_repr(servers)}"
        )
    if not servers:
        raise ConfigurationError("memcached servers must name at least one server, got []")
    addresses: list[tuple[str, int]] = []
    for server in servers:
        if not isinstance(server, str):
            raise ConfigurationError(
                f"each memcached server must be a 'host:port' string, got {safe_repr(server)}"
            )
        url = server if "://" in server else f"memcached://{server}"
        address = parse_address(url, None, None)
        if address in addresses:
            raise ConfigurationError(f"memcached server {server!r} is given twice")
        addresses.append(address)
    return addresses


def _checked_port(port: object, source: str) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigurationError(f"memcached port must be 1-65535, got {port!r} (from {source})")
    return port


STORE_FAILURES: Final = (OSError, EOFError, asyncio.TimeoutError, TimeoutError, ClientException)
"""What memcached's failures raise: unreachable, closed mid-reply, or an answer that is an
error (``SERVER_ERROR ...``), which aiomcache raises as `ClientException`. Its subclass
`ValidationException` is not among them: it refuses an argument before anything is sent."""


def as_backend_error(exc: Exception, address: str) -> BackendError:
    """Translate what aiomcache and the socket raise (`STORE_FAILURES`) into backend errors."""
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return BackendTimeoutError(f"memcached at {address} timed out: {exc}", cause=exc)
    if isinstance(exc, (OSError, EOFError)):  # refused, reset, closed mid-reply
        return BackendConnectionError(
            f"memcached at {address} is unreachable: {type(exc).__name__}: {exc}", cause=exc
        )
    return BackendError(f"memcached at {address} failed: {type(exc).__name__}: {exc}", cause=exc)


class WatchedClient:
    """The memcached commands of one backend, each timed on the wire.

    A command first takes one of ``connections`` slots (the size of the client's pool), so
    the pool never makes it wait; then it is one `traffik.timeouts.Exchange` of the
    backend's watchdog, connecting included, until its reply is in. Memcached's failures
    (`STORE_FAILURES`) raise as `BackendError` subclasses; anything else, unchanged.
    """

    def __init__(
        self,
        client: aiomcache.Client,
        watchdog: SilenceWatchdog,
        *,
        connections: int,
        address: str,
    ) -> None:
        self.client = client
        self.address = address
        self._watchdog = watchdog
        self._slots = asyncio.Semaphore(connections)

    async def get(self, key: bytes) -> bytes | None:
        value: bytes | None = await self._run(self.client.get, key)
        return value

    async def gets(self, key: bytes) -> tuple[bytes | None, int | None]:
        found: tuple[bytes | None, int | None] = await self._run(self.client.gets, key)
        return found

    async def add(self, key: bytes, value: bytes, exptime: int = 0) -> bool:
        return bool(await self._run(self.client.add, key, value, exptime))

    async def cas(self, key: bytes, value: bytes, token: int, exptime: int = 0) -> bool:
        return bool(await self._run(self.client.cas, key, value, token, exptime))

    async def incr(self, key: bytes, delta: int) -> int | None:
        """The count after adding ``delta``; None when the key is not stored."""
        found: int | None = await self._run(_arithmetic, self.client, b"incr", key, delta)
        return found

    async def decr(self, key: bytes, delta: int) -> int | None:
        """The count after taking ``delta`` (never below 0); None when not stored."""
        found: int | None = await self._run(_arithmetic, self.client, b"decr", key, delta)
        return found

    async def append(self, key: bytes, value: bytes) -> bool:
        """False when the key is not stored (nothing is appended then)."""
        return bool(await self._run(self.client.append, key, value))

    async def set(self, key: bytes, value: bytes, exptime: int = 0) -> bool:
        return bool(await self._run(self.client.set, key, value, exptime))

    async def delete(self, key: bytes) -> bool:
        return bool(await self._run(self.client.delete, key))

    async def stats(self) -> dict[bytes, bytes | None]:
        found: dict[bytes, bytes | None] = await self._run(self.client.stats)
        return found

    async def version(self) -> bytes:
        found: bytes = await self._run(self.client.version)
        return found

    async def _run(self, command: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        async with self._slots:
            with self._watchdog.exchange() as exchange:
                context = _exchange.set(exchange)
                try:
                    return await exchange.watch(command(*args))  # connecting included
                except ValidationException:  # refused before sending: a bug, not memcached's
                    raise
                except STORE_FAILURES as exc:
                    raise as_backend_error(exc, self.address) from exc
                finally:
                    _exchange.reset(context)

"""Reaching memcached: addresses, the aiomcache client, and what its failures mean.

Two properties of aiomcache 0.8 shape how the backend talks to it:

* A command cancelled while it waits for its reply (a timeout, a cancelled request)
  leaves that reply unread on a connection that goes back to the pool, and the *next*
  command on it reads the stale reply — a ``cas`` could read another's ``STORED``. So the
  backend never cancels a command in flight: every command runs in a task of the
  backend's own, and a caller that gives up stops waiting for it instead.
* When the server closes a connection after reading a command but before replying,
  aiomcache's reply loop spins forever without yielding, freezing the event loop
  (aio-libs/aiomcache#502). `MemcachedClient` fixes that one method: the connection's end
  raises, and the pool discards the connection.
"""

from __future__ import annotations

import asyncio
from typing import Final
from urllib.parse import urlsplit

import aiomcache
from aiomcache.pool import Connection

from traffik.exceptions import (
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
)
from traffik.redaction import redact_url, safe_repr

__all__ = ["DEFAULT_PORT", "MemcachedClient", "as_backend_error", "parse_address"]

DEFAULT_PORT: Final = 11211
SCHEMES: Final = ("memcached",)


class MemcachedClient(aiomcache.Client):
    """aiomcache's client, raising instead of spinning when a reply never comes."""

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


def _checked_port(port: object, source: str) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigurationError(f"memcached port must be 1-65535, got {port!r} (from {source})")
    return port


def as_backend_error(exc: Exception, address: str) -> BackendError:
    """Translate what aiomcache and the socket raise into Traffik's backend errors."""
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return BackendTimeoutError(f"memcached at {address} timed out: {exc}", cause=exc)
    if isinstance(exc, (OSError, EOFError)):  # refused, reset, closed mid-reply
        return BackendConnectionError(
            f"memcached at {address} is unreachable: {type(exc).__name__}: {exc}", cause=exc
        )
    return BackendError(f"memcached at {address} failed: {type(exc).__name__}: {exc}", cause=exc)

"""Fixtures of the memcached backend's tests (the servers come from the root conftest)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol
from urllib.parse import urlsplit

import pytest

from traffik import ManualClock
from traffik.backends.memcached import MemcachedBackend

# 10 s into a 40-day-aligned instant: no window of seconds, minutes, hours or days
# straddles a boundary within a test that does not move the clock.
START = 1_797_120_010.0


class Server(Protocol):
    """What the tests use of the root conftest's ``ServerProcess`` (``server_factory``)."""

    @property
    def url(self) -> str: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def stop(self) -> None: ...

    def kill(self) -> None: ...

    def start(self) -> None: ...


class RawMemcached:
    """A blocking, byte-level memcached connection: what another writer (or an operator
    with telnet) would do. Reads expiry back with the meta command ``mg <key> t``."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 11211)
        self.sock = socket.create_connection(self.address, timeout=5)
        self.buffer = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("memcached closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exact(self, size: int) -> bytes:
        while len(self.buffer) < size + 2:
            self.buffer += self.sock.recv(65536)
        data, self.buffer = self.buffer[:size], self.buffer[size + 2 :]
        return data

    def set(self, key: bytes, value: bytes, exptime: int = 60) -> None:
        self.sock.sendall(b"set %b 0 %d %d\r\n%b\r\n" % (key, exptime, len(value), value))
        assert self._line() == b"STORED"

    def get(self, key: bytes) -> bytes | None:
        self.sock.sendall(b"get %b\r\n" % key)
        line = self._line()
        if line == b"END":
            return None
        size = int(line.split()[3])
        value = self._exact(size)
        assert self._line() == b"END"
        return value

    def delete(self, key: bytes) -> None:
        self.sock.sendall(b"delete %b\r\n" % key)
        assert self._line() in (b"DELETED", b"NOT_FOUND")

    def ttl(self, key: bytes) -> int | None:
        """Seconds until ``key`` expires (-1: never), None when it is not stored."""
        self.sock.sendall(b"mg %b t\r\n" % key)
        line = self._line()
        if line == b"EN":
            return None
        (flag,) = [part for part in line.split()[1:] if part.startswith(b"t")]
        return int(flag[1:])

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_to() -> Iterator[Callable[[str], RawMemcached]]:
    """Open raw connections to any server (by URL); all closed after the test."""
    opened: list[RawMemcached] = []

    def connect(url: str) -> RawMemcached:
        opened.append(RawMemcached(url))
        return opened[-1]

    yield connect
    for connection in opened:
        connection.close()


@pytest.fixture
def raw(memcached_url: str) -> Iterator[RawMemcached]:
    connection = RawMemcached(memcached_url)
    yield connection
    connection.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


BackendFactory = Callable[..., Awaitable[MemcachedBackend]]


@pytest.fixture
async def backends(
    memcached_url: str, namespace: str, clock: ManualClock
) -> AsyncIterator[BackendFactory]:
    """Make initialised backends on the shared server (``namespace``, ``clock`` by default,
    every other setting the shipped default); every one is closed after the test."""
    made: list[MemcachedBackend] = []

    async def make(**options: Any) -> MemcachedBackend:
        options.setdefault("namespace", namespace)
        options.setdefault("clock", clock)
        if "client" not in options and "host" not in options:
            options.setdefault("url", memcached_url)
        backend = MemcachedBackend(**options)
        await backend.initialize()
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()

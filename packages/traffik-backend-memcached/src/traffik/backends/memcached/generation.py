"""The namespace's generation: how ``clear()`` works without listing keys.

Every key of a namespace carries its current generation (a random hex token):
``<namespace>:<generation>:<key>``. ``clear()`` stores a new generation; the old keys are
never read again and expire on their own. The generation lives at
``<namespace>:generation`` with no expiry — the one key that never expires, a few bytes per
namespace. When it is missing (first use, eviction, a server restart), a new one is created
with ``add``, so concurrent processes agree on one.

Each process keeps a copy and reads the stored one again once its copy is older than
``refresh`` seconds: another process's ``clear()`` reaches it within that time.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

from traffik.backends.memcached.connection import WatchedClient
from traffik.backends.memcached.keys import generation_key
from traffik.exceptions import BackendError

__all__ = ["Generation"]

logger = logging.getLogger("traffik.backends.memcached")

_PATTERN: Final = re.compile(rb"[0-9a-f]{1,32}")


class Generation:
    """One namespace's generation, as this process knows it."""

    def __init__(
        self,
        namespace: str,
        *,
        refresh: float,
        spawn: Callable[[Coroutine[Any, Any, str]], asyncio.Task[str]],
    ) -> None:
        self.key = generation_key(namespace)
        self.refresh = refresh
        self._spawn = spawn
        self._value: str | None = None
        self._read_at = -math.inf
        self._reading: asyncio.Task[str] | None = None

    async def current(self, client: WatchedClient) -> str:
        """The generation to use now; one read at a time is shared by every caller."""
        value = self._value
        if value is not None and time.monotonic() - self._read_at < self.refresh:
            return value
        if self._reading is None:
            self._reading = self._spawn(self._read(client))
        return await asyncio.shield(self._reading)

    async def start_afresh(self, client: WatchedClient) -> None:
        """Move the namespace to a new generation (``clear()``)."""
        fresh = secrets.token_hex(6)
        await client.set(self.key, fresh.encode(), 0)
        self._remember(fresh)

    def forget(self) -> None:
        self._value, self._read_at = None, -math.inf

    async def _read(self, client: WatchedClient) -> str:
        try:
            for _ in range(3):
                value = await client.get(self.key)
                if value is not None and _PATTERN.fullmatch(value):
                    return self._remember(value.decode())
                fresh = secrets.token_hex(6)
                if value is not None:  # not ours: replace it rather than fail forever
                    logger.warning("memcached key %r held %r; replacing it", self.key, value[:40])
                    await client.set(self.key, fresh.encode(), 0)
                    return self._remember(fresh)
                if await client.add(self.key, fresh.encode(), 0):  # exptime 0: never expires
                    return self._remember(fresh)
            raise BackendError(f"memcached key {self.key!r} vanished three times in a row")
        finally:
            self._reading = None

    def _remember(self, value: str) -> str:
        self._value, self._read_at = value, time.monotonic()
        return value

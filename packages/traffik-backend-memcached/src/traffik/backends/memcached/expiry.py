"""From a strategy's ``ttl_ms`` to memcached's ``exptime``.

Memcached keeps expiry in whole seconds and reads ``exptime`` in two ways: up to 30 days
(2,592,000 s) it is relative; above that it is an *absolute* Unix time, so passing a
40-day TTL as is would store the item already expired (in 1970). And 0 means "never
expires". The rule here:

* ``seconds = ceil(ttl_ms / 1000) + 1 + 5``: round up; one more second because
  memcached's clock ticks once a second, so an item stored with ``exptime=N`` may vanish
  after only ``N - 1`` seconds; and 5 seconds for clock skew, because a host whose clock is
  behind still needs the state until *its* clock reaches the state's deadline. Never 0.
* Up to 30 days: ``exptime = seconds``. Above: ``exptime = server_now + seconds``, with
  ``server_now`` the memcached host's own time (read from its ``stats``), so the client
  host's clock plays no part in when an item expires.
* Memcached reads an absolute ``exptime`` as a 32-bit signed number: nothing can be kept
  past 2038-01-19 03:14:07 UTC (`LATEST_EXPTIME`); a later one is stored already expired.
  A state that must outlive it is refused with `ConfigurationError`, never written (an
  item that vanished at once would let the next request through).

A state kept a few seconds longer than its TTL is harmless: the stored value carries its own
deadline (see `traffik.backends.memcached.envelope`), and strategies judge stale state by
time anyway (a window that has passed, a bucket that has refilled).
"""

from __future__ import annotations

import math
import time
from typing import Any, Final

from traffik.backends.memcached.connection import WatchedClient
from traffik.exceptions import ConfigurationError
from traffik.rates import Rate
from traffik.strategies.base import ceil_div

__all__ = [
    "LATEST_EXPTIME",
    "MAX_RELATIVE_EXPTIME",
    "SKEW_ALLOWANCE_SECONDS",
    "Horizon",
    "ServerClock",
    "expiry_seconds",
    "exptime",
]

MAX_RELATIVE_EXPTIME: Final = 30 * 24 * 3600
"""The largest ``exptime`` memcached reads as "seconds from now"."""

LATEST_EXPTIME: Final = 2**31 - 1
"""The latest absolute ``exptime`` memcached keeps: 2038-01-19 03:14:07 UTC."""

_CLOCK_TICK_SECONDS: Final = 1
SKEW_ALLOWANCE_SECONDS: Final = 5
"""How far behind the others a host's clock may be and still find every state it needs."""


def expiry_seconds(ttl_ms: int) -> int:
    """How many seconds memcached should keep a state whose TTL is ``ttl_ms`` (>= 7)."""
    return max(ceil_div(ttl_ms, 1000), 1) + _CLOCK_TICK_SECONDS + SKEW_ALLOWANCE_SECONDS


def exptime(ttl_ms: int, server_now: int | None) -> int:
    """The ``exptime`` to send; ``server_now`` (Unix seconds) is needed past 30 days.

    :raises ValueError: when the TTL is longer than 30 days and ``server_now`` is None.
    :raises ConfigurationError: when the state would outlive `LATEST_EXPTIME`.
    """
    seconds = expiry_seconds(ttl_ms)
    if seconds <= MAX_RELATIVE_EXPTIME:
        return seconds
    if server_now is None:
        raise ValueError(f"a TTL of {ttl_ms} ms needs the server's time")
    if server_now + seconds > LATEST_EXPTIME:
        raise ConfigurationError(
            f"memcached cannot keep a state for {ttl_ms / 86_400_000:.0f} days: "
            f"{past_latest(server_now)}"
        )
    return server_now + seconds


def past_latest(server_now: int) -> str:
    """Why memcached cannot keep something that long, for messages."""
    days_left = (LATEST_EXPTIME - server_now) // 86_400
    return (
        "memcached keeps nothing past 2038-01-19 03:14:07 UTC (its absolute expiry is a "
        f"32-bit Unix time), {days_left} days from its clock now"
    )


class ServerClock:
    """The memcached host's Unix time, for absolute expiries (TTLs over 30 days).

    Read from the server's ``stats`` (its ``time``) at most once per ``refresh`` seconds
    and kept as an offset from this host's clock, so that this host's clock plays no part
    in when an item expires.
    """

    def __init__(self, refresh: float = 3600.0) -> None:
        self.refresh = refresh
        self._offset = 0.0
        self._read_at = -math.inf

    async def now_for(self, ttl_ms: int, client: WatchedClient) -> int | None:
        """The server's time when ``ttl_ms`` needs an absolute expiry, else None."""
        if expiry_seconds(ttl_ms) <= MAX_RELATIVE_EXPTIME:
            return None
        if time.monotonic() - self._read_at > self.refresh:
            stats = await client.stats()
            self._offset = int(stats[b"time"] or b"") - time.time()
            self._read_at = time.monotonic()
        return int(time.time() + self._offset)


class Horizon:
    """Refuses, the first time it is used, a rate whose period memcached cannot keep.

    A state is kept about a period (longer for some strategies: each write checks its own
    TTL too, in `exptime`); memcached keeps nothing past `LATEST_EXPTIME`.
    """

    def __init__(self, clock: ServerClock, remembered: int = 4096) -> None:
        self.clock = clock
        self.remembered = remembered
        self._fine: set[Rate] = set()

    async def check(self, strategy: Any, rate: Rate, client: WatchedClient) -> None:
        """:raises ConfigurationError: naming the rate and the strategy."""
        if rate in self._fine:
            return
        server_now = await self.clock.now_for(rate.period_ms, client)
        if server_now is not None and server_now + expiry_seconds(rate.period_ms) > LATEST_EXPTIME:
            raise ConfigurationError(
                f"MemcachedBackend cannot decide rate {rate} of {type(strategy).__name__}: "
                f"its state must be kept for a period, and {past_latest(server_now)}"
            )
        if len(self._fine) >= self.remembered:
            self._fine.clear()
        self._fine.add(rate)

"""A Sentinel-managed primary: the backend finds it through the Sentinel and decides there."""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as redis
from redis.asyncio.sentinel import Sentinel

from traffik import FixedWindow, Limiter, ManualClock, TokenBucket
from traffik.backends.redis import RedisBackend


class Primary(Protocol):
    @property
    def url(self) -> str: ...


class SentinelServers(Protocol):
    """What this test uses of the root conftest's RedisSentinelServers."""

    @property
    def primary(self) -> Primary: ...

    @property
    def service_name(self) -> str: ...

    @property
    def sentinel_address(self) -> tuple[str, int]: ...


async def test_decisions_through_a_sentinel(
    redis_sentinel: SentinelServers, namespace: str
) -> None:
    sentinel = Sentinel([redis_sentinel.sentinel_address], socket_timeout=1.0)  # type: ignore[no-untyped-call,unused-ignore]
    backend = RedisBackend(
        sentinel,
        sentinel_service_name=redis_sentinel.service_name,
        namespace=namespace,
        clock=ManualClock(1_700_001_800.0),
    )
    async with backend:
        assert await backend.ready()
        for strategy in (FixedWindow(), TokenBucket()):
            limiter = Limiter(f"api-{strategy.name}", rate="3/min", backend=backend,
                              strategy=strategy, on_error="raise")  # fmt: skip
            decisions = [await limiter.decide("alice") for _ in range(4)]
            assert [d.allowed for d in decisions] == [True, True, True, False]
    for sentinel_client in sentinel.sentinels:  # the Sentinel is the caller's to close
        await sentinel_client.aclose()
    # The state is on the primary the Sentinel named.
    primary = redis.Redis.from_url(redis_sentinel.primary.url)
    assert len([key async for key in primary.scan_iter(match=f"{namespace}:*")]) == 2
    await primary.aclose()

"""The fixtures' servers are real and reachable, through the clients our backends use."""

from __future__ import annotations

from urllib.parse import urlparse

import aiomcache
import redis.asyncio as redis


async def test_redis_is_reachable(redis_url: str, namespace: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert await client.ping()
        await client.set(f"{namespace}:smoke", "1", px=1000)
        assert await client.get(f"{namespace}:smoke") == b"1"
        info = await client.info("server")
        assert int(str(info["redis_version"]).split(".")[0]) >= 6
    finally:
        await client.aclose()


async def test_memcached_is_reachable(memcached_url: str, namespace: str) -> None:
    parsed = urlparse(memcached_url)
    client = aiomcache.Client(parsed.hostname or "127.0.0.1", parsed.port or 11211)
    try:
        key = f"{namespace}:smoke".encode()
        await client.set(key, b"1", exptime=5)
        assert await client.get(key) == b"1"
    finally:
        await client.close()

"""traffik 1.x's keywords of the Redis backend, on a real server: ``persistent=False``
clears the namespace when the lifespan ends (only when asked); 1.x-only keywords are
refused naming the 2.x way."""

from __future__ import annotations

import pytest

from traffik import Limiter
from traffik._legacy_keywords import LegacyError
from traffik.backends.redis import RedisBackend


@pytest.mark.parametrize(("persistent", "cleared"), [(False, True), (None, False), (True, False)])
async def test_persistent(
    redis_url: str, namespace: str, persistent: bool | None, cleared: bool
) -> None:
    backend = RedisBackend(redis_url, namespace=namespace, persistent=persistent)
    limiter = Limiter("legacy:persistent", rate="2/min", backend=backend)
    async with backend:
        assert [(await limiter.decide("client")).allowed for _ in range(3)] == [True, True, False]
    async with backend:
        assert (await limiter.decide("client")).allowed is cleared
        await backend.clear()


@pytest.mark.parametrize("keyword", ["url_kwargs", "lock_type", "identifier"])
def test_1x_only_keywords_are_refused(redis_url: str, keyword: str) -> None:
    with pytest.raises(LegacyError, match=rf"RedisBackend\({keyword}=\.\.\.\) is traffik 1\.x: "):
        RedisBackend(redis_url, namespace="legacy", **{keyword: {}})  # type: ignore[arg-type]

"""traffik 1.x's keywords of the memcached backend, on a real server: ``persistent=False``
clears the namespace when the lifespan ends (only when asked); 1.x-only keywords are
refused naming the 2.x way."""

from __future__ import annotations

import pytest

from traffik import Limiter
from traffik._legacy_keywords import LegacyError
from traffik.backends.memcached import MemcachedBackend


@pytest.mark.parametrize(("persistent", "cleared"), [(False, True), (None, False), (True, False)])
async def test_persistent(
    memcached_url: str, namespace: str, persistent: bool | None, cleared: bool
) -> None:
    backend = MemcachedBackend(memcached_url, namespace=namespace, persistent=persistent)
    limiter = Limiter("legacy:persistent", rate="2/min", backend=backend)
    async with backend:
        assert [(await limiter.decide("client")).allowed for _ in range(3)] == [True, True, False]
    async with backend:
        assert (await limiter.decide("client")).allowed is cleared
        await backend.clear()


@pytest.mark.parametrize("keyword", ["track_keys", "pool_minsize", "lock_contention_threshold"])
def test_1x_only_keywords_are_refused(memcached_url: str, keyword: str) -> None:
    with pytest.raises(
        LegacyError, match=rf"MemcachedBackend\({keyword}=\.\.\.\) is traffik 1\.x: "
    ):
        MemcachedBackend(memcached_url, namespace="legacy", **{keyword: 1})  # type: ignore[arg-type]

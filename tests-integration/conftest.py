"""Backends for the cross-package suites, one parameter per kind.

`backend_kind` runs a test once per backend that exists; `make_backend` builds one of that
kind on a clock the test controls. Backends added by later packages join by adding their
kind to `BACKEND_KINDS` and a branch to `make_backend`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hypothesis import HealthCheck, settings

from traffik import ManualClock, ThrottleBackend
from traffik.backends.inmemory import InMemoryBackend

BACKEND_KINDS = ["memory", "redis", "memcached"]

# Property suites run the same examples every time (CI stays deterministic) and stay fast
# on every backend: network backends take fewer, shorter programs.
_PROPERTY_SETTINGS = settings(
    derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "traffik-conformance", _PROPERTY_SETTINGS, max_examples=60, stateful_step_count=40
)
settings.register_profile(
    "traffik-conformance-network", _PROPERTY_SETTINGS, max_examples=25, stateful_step_count=25
)

BackendMaker = Callable[[ManualClock], Awaitable[ThrottleBackend]]


@pytest.fixture(params=BACKEND_KINDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def make_backend(
    backend_kind: str, request: pytest.FixtureRequest, namespace: str
) -> AsyncIterator[BackendMaker]:
    """A factory of backends of ``backend_kind`` on a given clock; all closed afterwards."""
    made: list[ThrottleBackend] = []
    # Servers start only for the kinds that need them.
    redis_url = str(request.getfixturevalue("redis_url")) if backend_kind == "redis" else ""
    memcached_url = (
        str(request.getfixturevalue("memcached_url")) if backend_kind == "memcached" else ""
    )

    async def make(clock: ManualClock) -> ThrottleBackend:
        if backend_kind == "memory":
            backend: ThrottleBackend = InMemoryBackend(namespace, clock=clock)
        elif backend_kind == "redis":
            from traffik.backends.redis import RedisBackend

            # Each backend made is separate, as in-memory ones are: its own namespace.
            # A budget CPU starvation of redis-server on a 2-core CI box cannot trip: these
            # suites test decisions; the budget is tested with paused servers elsewhere.
            backend = RedisBackend(
                redis_url, namespace=f"{namespace}-{len(made)}", clock=clock, timeout=5.0
            )
        elif backend_kind == "memcached":
            from traffik.backends.memcached import MemcachedBackend

            backend = MemcachedBackend(
                url=memcached_url, namespace=f"{namespace}-{len(made)}", clock=clock, timeout=5.0
            )
        else:  # pragma: no cover - a kind listed without a branch here
            raise AssertionError(f"unknown backend kind {backend_kind!r}")
        await backend.initialize()
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()

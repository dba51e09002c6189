"""The backend kinds the cross-package suites run on, and how to build each one.

A backend added by a later package joins by adding its kind to `BACKEND_KINDS` and a
branch to `build_backend`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from traffik import ManualClock, ThrottleBackend
from traffik.backends.inmemory import InMemoryBackend

__all__ = ["BACKEND_KINDS", "BackendMaker", "build_backend", "server_url"]

BACKEND_KINDS = ["memory", "redis", "memcached"]

BackendMaker = Callable[[ManualClock], Awaitable[ThrottleBackend]]


def build_backend(kind: str, clock: ManualClock, namespace: str, url: str = "") -> ThrottleBackend:
    """A backend of ``kind`` on ``clock``, in ``namespace``; ``url`` names its server."""
    if kind == "memory":
        return InMemoryBackend(namespace, clock=clock)
    if kind == "redis":
        from traffik.backends.redis import RedisBackend

        return RedisBackend(url, namespace=namespace, clock=clock)  # the shipped defaults
    if kind == "memcached":
        from traffik.backends.memcached import MemcachedBackend

        return MemcachedBackend(url=url, namespace=namespace, clock=clock)
    raise AssertionError(f"unknown backend kind {kind!r}")  # a kind listed without a branch


def server_url(kind: str, request: pytest.FixtureRequest) -> str:
    """The URL of the session's server for ``kind`` (started on first use); "" for memory."""
    if kind == "redis":
        return str(request.getfixturevalue("redis_url"))
    if kind == "memcached":
        return str(request.getfixturevalue("memcached_url"))
    return ""

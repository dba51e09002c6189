"""Private servers for the network sections, started and stopped by the suite itself.

They come from the root ``conftest.py``'s `start_server` (the helper the tests use: a free
loopback port, no persistence). ``TRAFFIK_REDIS_URL`` / ``TRAFFIK_MEMCACHED_URL`` name a
running server to use instead; ``TRAFFIK_REDIS_CLUSTER_URL``, a node of a running Redis
Cluster (otherwise a private one of 3 primaries is formed, as the tests' fixture does).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

__all__ = ["cluster_url", "server_url"]

_ROOT = Path(__file__).resolve().parent.parent
_ENVIRONMENT = {"redis": "TRAFFIK_REDIS_URL", "memcached": "TRAFFIK_MEMCACHED_URL"}


def _root_conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_traffik_root_conftest", _ROOT / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    return module


@contextmanager
def server_url(kind: str) -> Iterator[str]:
    """The URL of a ``kind`` ("redis" or "memcached") server for the block's duration."""
    url = os.environ.get(_ENVIRONMENT[kind])
    if url:
        yield url
        return
    server = _root_conftest().start_server(kind)
    try:
        yield str(server.url)
    finally:
        server.stop()


@contextmanager
def cluster_url() -> Iterator[str]:
    """The URL of a node of a 3-primary Redis Cluster for the block's duration."""
    url = os.environ.get("TRAFFIK_REDIS_CLUSTER_URL")
    if url:
        yield url
        return
    cluster = _root_conftest().start_redis_cluster(3)
    try:
        yield str(cluster.url)
    finally:
        cluster.stop()

"""traffik 1.x's memcached import paths (issue 17), as the 1.x documentation writes them."""

from __future__ import annotations

import importlib

import pytest

from traffik.backends import memcached


def test_the_aiomcache_backend_is_the_memcached_backend() -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.backends.memcached.aiomcache import MemcachedBackend
    assert [str(record.message) for record in caught] == [
        "traffik.backends.memcached.aiomcache.MemcachedBackend is the traffik 1.x spelling: "
        "use `from traffik.backends.memcached import MemcachedBackend`"
    ]
    assert caught[0].filename == __file__
    assert MemcachedBackend is memcached.MemcachedBackend


def test_the_emcache_backend_says_what_to_use() -> None:
    with pytest.raises(
        ImportError, match=r"from traffik\.backends\.memcached import MemcachedBackend"
    ):
        importlib.import_module("traffik.backends.memcached.emcache")


def test_other_names_stay_attribute_errors() -> None:
    aiomcache = importlib.import_module("traffik.backends.memcached.aiomcache")
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        aiomcache.Nope  # noqa: B018

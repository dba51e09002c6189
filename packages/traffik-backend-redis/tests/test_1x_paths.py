"""traffik 1.x's Redis import paths (issue 17), written as the 1.x documentation writes them."""

from __future__ import annotations

import importlib

import pytest

from traffik.backends import redis


def test_the_aioredis_backend_is_the_redis_backend() -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.backends.redis.aioredis import RedisBackend
    assert [str(record.message) for record in caught] == [
        "traffik.backends.redis.aioredis.RedisBackend is the traffik 1.x spelling: "
        "use `from traffik.backends.redis import RedisBackend`"
    ]
    assert caught[0].filename == __file__
    assert RedisBackend is redis.RedisBackend


def test_the_coredis_backend_says_what_to_use() -> None:
    with pytest.raises(ImportError, match=r"from traffik\.backends\.redis import RedisBackend"):
        importlib.import_module("traffik.backends.redis.coredis")


def test_other_names_stay_attribute_errors() -> None:
    aioredis = importlib.import_module("traffik.backends.redis.aioredis")
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        aioredis.Nope  # noqa: B018

"""Memcached keys are valid and distinct whatever the identifier, namespace or path."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traffik import Limiter, Rate
from traffik.backends.memcached.keys import (
    MAX_KEY_BYTES,
    escape,
    generation_key,
    storage_key,
)
from traffik.keys import hash_tag
from traffik.strategies import FixedWindow

if TYPE_CHECKING:
    from conftest import BackendFactory, RawMemcached

# What memcached's text protocol accepts, stated independently of our escaping: 1 to 250
# bytes, none of them whitespace, a control character or outside ASCII.
VALID_KEY = re.compile(rb"[\x21-\x7e]{1,250}")

AWKWARD_IDENTITIES = [
    "10.0.0.1",
    "2001:db8::1",
    "user with spaces",
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "nul\x00byte",
    "del\x7fchar",
    "c1\x85control",
    "nbsp\xa0space",
    "line\u2028separator",
    "日本語のユーザー",
    "emoji 🚦🚦",
    "lone \ud800 surrogate",
    "percent %41 sign",
    "hash # sign",
    "{braces}",
    "",
    "x" * 10_000,
    "é" * 300,
]


def _key(identity: str, namespace: str = "app", generation: str = "0a1b2c3d4e5f") -> bytes:
    return storage_key(namespace, generation, f"api:{{{identity}}}:GET:/items:fixed_window")


@pytest.mark.parametrize("identity", AWKWARD_IDENTITIES)
def test_every_key_is_valid_for_memcached(identity: str) -> None:
    key = _key(identity)
    assert VALID_KEY.fullmatch(key), key
    assert len(key) <= MAX_KEY_BYTES


def test_awkward_identities_map_to_distinct_keys() -> None:
    keys = {_key(identity) for identity in AWKWARD_IDENTITIES}
    assert len(keys) == len(AWKWARD_IDENTITIES)


def test_short_keys_stay_readable_and_long_ones_keep_a_readable_prefix() -> None:
    assert _key("10.0.0.1") == b"app:0a1b2c3d4e5f:api:{10.0.0.1}:GET:/items:fixed_window"
    assert _key("user with spaces").startswith(b"app:0a1b2c3d4e5f:api:{user%20with%20spaces}")
    long_key = _key("x" * 10_000)
    assert len(long_key) == MAX_KEY_BYTES
    assert long_key.startswith(b"app:0a1b2c3d4e5f:api:{xxxx")
    assert re.fullmatch(rb"[^#]+#[0-9a-f]{64}", long_key)


def test_escaping_cannot_be_forged() -> None:
    # The escaped form of one identity, used as another identity, must not collide.
    assert _key("a b") != _key("a%20b")
    assert escape("a b") == "a%20b"
    assert escape("a%20b") == "a%2520b"
    # A hashed key's shape cannot be produced by an unhashed one: '#' is always escaped.
    hashed = _key("y" * 400)
    assert _key(hashed.decode()) != hashed
    assert b"#" not in _key("#" * 10)


def test_keys_at_the_length_boundary_stay_distinct() -> None:
    base = "app:0a1b2c3d4e5f:"
    exactly = "k" * (MAX_KEY_BYTES - len(base))
    assert storage_key("app", "0a1b2c3d4e5f", exactly) == (base + exactly).encode()
    one_more = storage_key("app", "0a1b2c3d4e5f", exactly + "k")
    assert len(one_more) == MAX_KEY_BYTES
    assert one_more != (base + exactly).encode()
    # Two long keys differing only in their last character.
    assert _key("z" * 1000 + "1") != _key("z" * 1000 + "2")


def test_namespaces_cannot_borrow_each_others_keys() -> None:
    # "a:1" at generation "1" vs "a" at generation "1" with a key starting "1:".
    assert storage_key("a:1", "1", "x") != storage_key("a", "1", "1:x")
    assert storage_key("my app", "1", "x").startswith(b"my%20app:")
    assert generation_key("app") == b"app:generation"
    assert generation_key("app") not in {storage_key("app", "generation", "")}
    assert VALID_KEY.fullmatch(generation_key("ns " * 200))


@given(st.text(), st.text())
def test_distinct_inputs_give_distinct_valid_keys(first: str, second: str) -> None:
    one, two = _key(first), _key(second)
    assert VALID_KEY.fullmatch(one)
    assert VALID_KEY.fullmatch(two)
    assert (one == two) == (first == second)


@given(st.text(min_size=1), st.text(min_size=1))
def test_distinct_namespaces_give_distinct_keys(first: str, second: str) -> None:
    one = storage_key(first, "0a1b2c3d4e5f", "k")
    two = storage_key(second, "0a1b2c3d4e5f", "k")
    assert (one == two) == (first == second)


async def test_awkward_identities_are_limited_separately_on_a_real_server(
    backends: BackendFactory, raw: RawMemcached
) -> None:
    backend = await backends()
    limiter = Limiter("keys", rate="2/min", backend=backend, on_error="raise")
    for identity in AWKWARD_IDENTITIES:
        allowed = [(await limiter.decide(identity)).allowed for _ in range(3)]
        assert allowed == [True, True, False], identity
    # Each one's state really is in memcached, under its own key.
    stored = {
        await backend.storage_key(
            f"keys:{hash_tag(i)}:fixed_window", FixedWindow(), Rate.parse("2/min")
        )
        for i in AWKWARD_IDENTITIES
    }
    assert len(stored) == len(AWKWARD_IDENTITIES)
    assert all(raw.get(key) is not None for key in stored)

"""Storage keys: every (namespace, uid, identity, suffix, strategy) has a key of its own."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traffik import ConfigurationError, InMemoryBackend, Limiter, ManualClock
from traffik.keys import (
    MAX_IDENTITY_CHARS,
    hash_tag,
    identity_tag,
    storage_prefix,
    throttle_key,
    validate_key_part,
)

# Few characters, the awkward ones among them: forged escapes ("%7B", "%3A") and
# separators come up often, which is where a collision would be.
_AWKWARD = st.sampled_from(
    [":", "{", "}", "%", "#", "2", "3", "5", "7", "A", "B", "D", "E", "a", "\ud800", "\udfff",
     "\x00", "\n", "é", "/"]
)  # fmt: skip
texts = st.text(_AWKWARD, max_size=8) | st.text(st.characters(exclude_categories=()))
# A uid or namespace is any non-empty text without braces or lone surrogates.
names = st.text(_AWKWARD.filter(lambda c: c not in "{}\ud800\udfff"), min_size=1, max_size=8)


def _stored_key(namespace: str, uid: str, identity: str, suffix: str, strategy: str) -> str:
    return storage_prefix(namespace) + throttle_key(uid, identity, suffix, strategy)


@given(st.tuples(names, names, texts, texts, names), st.tuples(names, names, texts, texts, names))
def test_different_tuples_never_share_a_key(
    first: tuple[str, str, str, str, str], second: tuple[str, str, str, str, str]
) -> None:
    assert (_stored_key(*first) == _stored_key(*second)) == (first == second)


@given(st.tuples(names, names, texts, texts, names), st.integers(0, 3), st.integers(1, 4))
def test_moving_text_across_a_boundary_changes_the_key(
    parts: tuple[str, str, str, str, str], boundary: int, size: int
) -> None:
    # Where a collision would come from: the same characters, cut at another place.
    moved = list(parts)
    left, right = moved[boundary], moved[boundary + 1]
    moved[boundary], moved[boundary + 1] = left[:-size], left[-size:] + right
    if moved[0] and moved[1] and moved[4] and not set("{}\ud800\udfff") & set(moved[0] + moved[1]):
        assert (_stored_key(*moved) == _stored_key(*parts)) == (tuple(moved) == parts)


@given(names, names, texts, texts, names)
def test_every_key_encodes_and_hashes_on_the_identity(
    namespace: str, uid: str, identity: str, suffix: str, strategy: str
) -> None:
    key = _stored_key(namespace, uid, identity, suffix, strategy)
    key.encode("utf-8")  # no lone surrogate left: every store can take it
    # Redis Cluster hashes the text inside the first braces: the client's tag, whole.
    start = key.index("{")
    assert key[start + 1 : key.index("}", start)] == identity_tag(identity)


def test_common_keys_keep_their_readable_form() -> None:
    assert throttle_key("api", "10.0.0.1", ":GET:/items/{id}", "fixed_window") == (
        "api:{10.0.0.1}:GET:/items/{id}:fixed_window"
    )
    assert throttle_key("a:b", "user:é", "", "gcra") == "a:b:{user:é}:gcra"
    assert storage_prefix("app") == "app:"


@pytest.mark.parametrize(
    ("namespace", "uid"),
    [("app:x", "y"), ("app", "x:y"), ("app%3Ax", "y"), ("app", "%3Ax:y")],
)
def test_namespace_and_uid_cannot_borrow_each_others_keys(namespace: str, uid: str) -> None:
    keys = {
        _stored_key(other_namespace, other_uid, "c", "", "fixed_window")
        for other_namespace, other_uid in [("app:x", "y"), ("app", "x:y"), ("app%3Ax", "y")]
    }
    assert len(keys) == 3
    assert _stored_key(namespace, uid, "c", "", "fixed_window").startswith(
        storage_prefix(namespace)
    )


def test_a_namespace_prefix_matches_no_neighbour() -> None:
    prefix = storage_prefix("app")
    for neighbour in ("app:x", "app-other", "appx", "ap", "app%"):
        assert not storage_prefix(neighbour).startswith(prefix), neighbour


def test_a_strategy_name_with_a_colon_cannot_pose_as_part_of_the_route() -> None:
    assert throttle_key("u", "c", ":GET:/a", "b:x") != throttle_key("u", "c", ":GET:/a:b", "x")


def test_lone_surrogates_are_escaped_distinctly() -> None:
    assert hash_tag("x\ud800") == "{x%ED%A0%80}"
    assert hash_tag("x%ED%A0%80") == "{x%25ED%25A0%2580}"
    assert hash_tag("\udfff") != hash_tag("\ud800")


def test_long_identities_are_stored_as_their_digest() -> None:
    long = "x" * (MAX_IDENTITY_CHARS + 1)
    tag = identity_tag(long)
    assert tag == "%#" + hashlib.sha256(long.encode()).hexdigest()
    assert identity_tag("x" * MAX_IDENTITY_CHARS) == "x" * MAX_IDENTITY_CHARS
    assert identity_tag(long + "y") != tag
    # No escaped identity has the digest's form: its '%' is always followed by hex digits.
    assert identity_tag(tag) != tag
    assert len(throttle_key("u", "é" * 10_000, "", "s")) < 100


def test_key_parts_are_checked_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="lone surrogate"):
        validate_key_part("ns\ud800", "Backend namespace")
    with pytest.raises(ConfigurationError, match="braces"):
        Limiter("a{b}", rate="1/s")
    with pytest.raises(ConfigurationError, match="lone surrogate"):
        InMemoryBackend("app\udc80")


@pytest.mark.parametrize(
    "identity",
    ["x\ud800", "\udfff", "nul\x00", "tab\t\x1b[31m", "x" * 10_000, "", "{", "%7B", "日本"],
)
async def test_any_str_is_an_identity_in_memory(identity: str) -> None:
    limiter = Limiter("any", rate="1/min", backend=InMemoryBackend(clock=ManualClock(0.0)))
    assert (await limiter.decide(identity)).allowed
    assert not (await limiter.decide(identity)).allowed
    assert (await limiter.decide(identity + "!")).allowed

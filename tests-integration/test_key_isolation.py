"""Keys on every backend, with real servers: any ``str`` is an identity (distinct identities
never share a budget, equal ones always do), namespaces and uids never borrow each other's
keys, and ``clear()`` deletes exactly its own namespace."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis
from backend_kinds import build_backend, server_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traffik import Limiter, ManualClock, ThrottleBackend

NOW = 1_700_000_010.0  # 10 s into a minute: no test straddles a window by chance

# Awkward characters often (separators, escapes, surrogates, control characters), any
# character sometimes, and now and then an identity far longer than a key should be.
_AWKWARD = st.sampled_from([*"{}%:#7BDA\x00\n\x7f é", "\ud800", "\udfff", "🚦"])
identities = (
    st.text(_AWKWARD, max_size=10)
    | st.text(st.characters(exclude_categories=()), max_size=20)
    | st.builds(lambda c, n: c * n, _AWKWARD, st.integers(200, 10_000))
)
_uids = itertools.count()


@pytest.fixture
async def backend(
    backend_kind: str, request: pytest.FixtureRequest, namespace: str
) -> AsyncIterator[ThrottleBackend]:
    made = build_backend(
        backend_kind, ManualClock(NOW), namespace, server_url(backend_kind, request)
    )
    await made.initialize()
    yield made
    await made.close()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(first=identities, second=identities)
async def test_distinct_identities_never_share_a_key_equal_ones_always_do(
    backend: ThrottleBackend, first: str, second: str
) -> None:
    limiter = Limiter(f"identity-{next(_uids)}", rate="1/min", backend=backend, on_error="raise")
    assert (await limiter.decide(first)).allowed
    assert not (await limiter.decide(first)).allowed  # equal: the same key, however written
    assert (await limiter.decide(second)).allowed == (first != second)


@pytest.mark.parametrize(
    "identity", ["x\ud800", "\udfff\ud800", "nul\x00byte", "\x1b[31mred", "z" * 10_240, ""]
)
async def test_any_str_is_limited_on_every_backend(backend: ThrottleBackend, identity: str) -> None:
    limiter = Limiter("any-str", rate="2/min", backend=backend, on_error="allow")
    # on_error="allow" as shipped: an identity a store cannot take would be admitted 5 times.
    assert [(await limiter.decide(identity)).allowed for _ in range(5)] == [True, True] + [
        False
    ] * 3


NEIGHBOURS = (":x", "-other", "x", ":", "%3Ax")


async def test_namespaces_and_uids_never_borrow_keys_and_clear_is_exact(
    backend_kind: str, request: pytest.FixtureRequest, namespace: str
) -> None:
    url = server_url(backend_kind, request)
    clock = ManualClock(NOW)
    backends = {
        suffix: build_backend(backend_kind, clock, namespace + suffix, url)
        for suffix in ("", *NEIGHBOURS)
    }
    for made in backends.values():
        await made.initialize()
    raw = redis.Redis.from_url(url) if backend_kind == "redis" else None
    foreign = [namespace, f"{namespace}x:1", f"{namespace}-other", f"other:{namespace}:1"]
    try:
        if raw is not None:
            for key in foreign:
                await raw.set(key, b"not traffik's")

        def limiter(suffix: str, uid: str) -> Limiter:
            return Limiter(uid, rate="1/min", backend=backends[suffix], on_error="raise")

        # "<ns>:x" + uid "y" and "<ns>" + uid "x:y": once one key, now two budgets.
        pairs = [("", "x:y"), ("", ":x:y"), ("", "y")] + [(s, "y") for s in NEIGHBOURS]
        for suffix, uid in pairs:
            assert (await limiter(suffix, uid).decide("client")).allowed, (suffix, uid)
        for suffix, uid in pairs:
            assert not (await limiter(suffix, uid).decide("client")).allowed, (suffix, uid)

        await backends[""].clear()
        for suffix, uid in pairs:
            # The cleared namespace starts afresh; every neighbour keeps its state.
            expected = suffix == ""
            assert (await limiter(suffix, uid).decide("client")).allowed == expected, (suffix, uid)
        if raw is not None:
            assert [await raw.get(key) for key in foreign] == [b"not traffik's"] * len(foreign)
    finally:
        if raw is not None:
            await raw.delete(*foreign)
            await raw.aclose()
        for made in backends.values():
            await made.close()

"""TTLs: whole seconds rounded up, never 0, and more than 30 days stored as absolute times."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from traffik import ConfigurationError, Limiter, ManualClock, Rate
from traffik.backends.memcached.expiry import (
    LATEST_EXPTIME,
    MAX_RELATIVE_EXPTIME,
    SKEW_ALLOWANCE_SECONDS,
    expiry_seconds,
    exptime,
)
from traffik.strategies import FixedWindow, TokenBucket

if TYPE_CHECKING:
    from conftest import BackendFactory, RawMemcached

DAY = 86_400
FORTY_DAYS_MS = 40 * DAY * 1000


SLACK = 1 + SKEW_ALLOWANCE_SECONDS  # memcached's clock tick, and skew between hosts


@pytest.mark.parametrize(
    ("ttl_ms", "seconds"),
    [(1, 1), (999, 1), (1000, 1), (1001, 2), (59_500, 60), (0, 1), (-5, 1)],
)
def test_ttls_round_up_with_slack_and_are_never_zero(ttl_ms: int, seconds: int) -> None:
    assert expiry_seconds(ttl_ms) == seconds + SLACK
    assert exptime(ttl_ms, None) == seconds + SLACK


def test_up_to_30_days_is_relative_and_beyond_is_absolute() -> None:
    last_relative_ms = (MAX_RELATIVE_EXPTIME - SLACK) * 1000
    assert exptime(last_relative_ms, None) == MAX_RELATIVE_EXPTIME
    server_now = 1_800_000_000
    assert exptime(last_relative_ms + 1, server_now) == server_now + MAX_RELATIVE_EXPTIME + 1
    assert exptime(FORTY_DAYS_MS, server_now) == server_now + 40 * DAY + SLACK
    with pytest.raises(ValueError, match="server's time"):
        exptime(FORTY_DAYS_MS, None)


@pytest.mark.parametrize("days_left", [35, 29, 31])
async def test_long_ttls_are_really_stored_with_the_right_expiry(
    backends: BackendFactory, raw: RawMemcached, clock: ManualClock, days_left: int
) -> None:
    # "1/40d": the fixed window's state is kept until the window ends, `days_left` from now.
    window_start = clock() - clock() % (40 * DAY)
    clock.set(window_start + (40 - days_left) * DAY)
    backend = await backends()
    rate = Rate.parse("1/40d")
    assert (await backend.apply("long", FixedWindow(), rate, 1, {})).allowed
    ttl = raw.ttl(await backend.storage_key("long", FixedWindow(), rate))
    assert ttl is not None, "a TTL over 30 days sent as relative is read as 1970: gone at once"
    expected = days_left * DAY + SLACK
    assert expected - 2 <= ttl <= expected + 1
    assert not (await backend.apply("long", FixedWindow(), rate, 1, {})).allowed


async def test_a_one_millisecond_ttl_is_stored_for_seconds_not_forever(
    backends: BackendFactory, raw: RawMemcached, clock: ManualClock
) -> None:
    clock.set(clock() - clock() % 1 + 0.999)  # 1 ms before a second ends
    backend = await backends()
    rate = Rate.parse("5/s")
    assert (await backend.apply("short", FixedWindow(), rate, 1, {})).allowed
    ttl = raw.ttl(await backend.storage_key("short", FixedWindow(), rate))
    assert ttl is not None
    assert 1 <= ttl <= 1 + SLACK  # never 0 (memcached: "never expires"), never -1


async def test_a_state_past_its_ttl_reads_as_absent_even_while_memcached_keeps_it(
    backends: BackendFactory, raw: RawMemcached, clock: ManualClock
) -> None:
    backend = await backends()
    bucket, rate = TokenBucket(), Rate.parse("2/10s")
    for _ in range(2):
        assert (await backend.apply("bucket", bucket, rate, 1, {})).allowed
    assert not (await backend.peek("bucket", bucket, rate, 1, {})).allowed
    clock.advance(10.0)  # full again: the state's TTL has passed on the backend's clock
    assert raw.get(await backend.storage_key("bucket")) is not None  # memcached keeps it
    decision = await backend.peek("bucket", bucket, rate, 1, {})
    assert decision.allowed
    assert decision.remaining == 1


async def test_a_period_memcached_cannot_keep_is_refused_the_first_time_loudly(
    backends: BackendFactory, raw: RawMemcached
) -> None:
    # "1/5000d": the state must outlive 2038, past which memcached keeps nothing (an
    # absolute expiry beyond 2**31 - 1 is stored already expired: the next hit would pass).
    backend = await backends()
    rate = Rate.parse("1/5000d")
    for _ in range(2):  # every time, never an admission
        with pytest.raises(ConfigurationError, match=r"1/5000d.*FixedWindow.*2038"):
            await backend.apply("forever", FixedWindow(), rate, 1, {})
    assert raw.get(await backend.storage_key("forever")) is None  # nothing was written
    # Inside memcached's horizon, a long period is kept and decided as usual.
    assert (await backend.apply("long", FixedWindow(), Rate.parse("1/1000d"), 1, {})).allowed
    assert not (await backend.apply("long", FixedWindow(), Rate.parse("1/1000d"), 1, {})).allowed


async def test_a_limiter_memcached_cannot_keep_raises_with_the_default_on_error(
    backends: BackendFactory,
) -> None:
    # on_error="allow" (the default) decides outages only: the refusal reaches the caller
    # every time, and nothing is admitted.
    limiter = Limiter("forever", rate="1/5000d", backend=await backends())
    for _ in range(3):
        with pytest.raises(ConfigurationError, match="1/5000d"):
            await limiter.decide("client")


async def test_a_state_that_must_outlive_memcached_is_refused_not_written(
    backends: BackendFactory, raw: RawMemcached
) -> None:
    # A bucket of a million tokens refilling one a day: spending 5,000 at once leaves a
    # state to keep for 5,000 days, past 2038. The hit raises; nothing is consumed.
    backend = await backends()
    bucket, rate = TokenBucket(burst_size=1_000_000), Rate.parse("1/d")
    with pytest.raises(ConfigurationError, match="2038"):
        await backend.apply("deep", bucket, rate, 5_000, {})
    assert raw.get(await backend.storage_key("deep")) is None
    assert (await backend.peek("deep", bucket, rate, 1, {})).remaining == 999_999  # full


def test_an_expiry_past_2038_is_refused() -> None:
    server_now = LATEST_EXPTIME - 10 * DAY
    assert exptime(9 * DAY * 1000, server_now) <= LATEST_EXPTIME
    with pytest.raises(ConfigurationError, match="2038"):
        exptime(11 * DAY * 1000 + 40 * DAY * 1000, server_now)

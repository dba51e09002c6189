"""TTLs: whole seconds rounded up, never 0, and more than 30 days stored as absolute times."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from traffik import ManualClock, Rate
from traffik.backends.memcached.expiry import (
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
    ttl = raw.ttl(await backend.storage_key("long"))
    assert ttl is not None, "a TTL over 30 days sent as relative is read as 1970: gone at once"
    expected = days_left * DAY + SLACK
    assert expected - 2 <= ttl <= expected + 1
    assert not (await backend.apply("long", FixedWindow(), rate, 1, {})).allowed


async def test_a_one_millisecond_ttl_is_stored_for_seconds_not_forever(
    backends: BackendFactory, raw: RawMemcached, clock: ManualClock
) -> None:
    clock.set(clock() - clock() % 1 + 0.999)  # 1 ms before a second ends
    backend = await backends()
    assert (await backend.apply("short", FixedWindow(), Rate.parse("5/s"), 1, {})).allowed
    ttl = raw.ttl(await backend.storage_key("short"))
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

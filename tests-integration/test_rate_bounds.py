"""Any rate the grammar accepts is decided exactly on every backend, or refused when built.

Hypothesis draws rate strings from the whole grammar — limits up to 10**18, periods up to
thousands of years — and a strategy (with its naive oracle, from the conformance kit).
Either building a throttle with them raises `ConfigurationError` naming the rate and the
strategy, or a program of hits (costs in shares of the limit, clock moves in shares of
the period) gets exactly the oracle's decisions. Memcached may also refuse a rate the
first time it sees it (it keeps nothing past 2038): loudly, never by admitting.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from backend_kinds import BACKEND_KINDS, build_backend, server_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traffik import ConfigurationError, Limiter, ManualClock, Rate
from traffik.strategies.base import LATEST_MS
from traffik.testing.cases import CASES, Case

START_MS = 1_800_000_000_000
UNITS = ["ms", "s", "m", "h", "d"]
SHARES = [1, 1, 2, 3, 7, 10_000]  # a cost of 1, or the limit divided by the share (a cost of
# 0 never reaches a backend: the throttle answers it)

# Rates worth meeting every time: ten million a month, a prime limit over a month (no
# lower terms), a 5,000-day period (past memcached's 2038), 2**52 a day, 10**11 days.
NOTABLE = ["10000000/30d", "9999991/30d", "1/5000d", "4503599627370496/d", "10/100000000000d"]
rate_texts = st.one_of(
    st.sampled_from(NOTABLE),
    st.builds(
        lambda limit, multiplier, unit: f"{limit}/{multiplier}{unit}",
        st.one_of(st.integers(1, 1_000), st.integers(1, 10**18)),
        st.one_of(st.just(""), st.integers(1, 1_000).map(str), st.integers(1, 10**15).map(str)),
        st.sampled_from(UNITS),
    ),
)
programs = st.lists(
    st.tuples(st.sampled_from(SHARES), st.sampled_from([0, 0, 1, 3, 10, 50, 100, 250])),
    min_size=1,
    max_size=12,
)

_keys = itertools.count()


@pytest.mark.parametrize("kind", BACKEND_KINDS)
def test_any_rate_is_decided_exactly_or_refused_at_construction(
    kind: str, request: pytest.FixtureRequest, namespace: str
) -> None:
    url = server_url(kind, request)
    loop = asyncio.new_event_loop()
    clock = ManualClock(START_MS / 1000)
    backend = build_backend(kind, clock, namespace, url)
    loop.run_until_complete(backend.initialize())
    outcomes = {"refused": 0, "decided": 0, "refused by memcached": 0}

    @settings(
        max_examples=60 if kind != "memory" else 300,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(text=rate_texts, case=st.sampled_from(CASES), program=programs, data=st.data())
    def check(text: str, case: Case, program: list[tuple[int, int]], data: Any) -> None:
        rate = Rate.parse(text)  # the grammar accepts it
        uid = f"bounds{next(_keys)}"
        try:
            limiter = Limiter(
                uid, rate=text, strategy=case.strategy, backend=backend, on_error="raise"
            )
        except ConfigurationError as exc:
            refusal = str(exc)
        else:
            refusal = ""
        if refusal:
            assert str(rate) in refusal
            assert type(case.strategy).__name__ in refusal
            outcomes["refused"] += 1
            return
        oracle = case.oracle(rate)
        clock.set(START_MS / 1000)
        for share, percent in program:
            cost = share if share < 2 else max(1, rate.limit // share)
            params = data.draw(case.params)
            now = round(clock() * 1000)
            try:
                decision = loop.run_until_complete(
                    limiter.decide(f"c{uid}", cost=cost, params=params)
                )
            except ConfigurationError as exc:  # memcached's own bound, on first use
                refusal = str(exc)
            if refusal:
                assert kind == "memcached"
                assert "2038" in refusal
                outcomes["refused by memcached"] += 1
                return
            assert decision == oracle.hit(now, cost, params), (text, case.id, now, cost)
            later = now + rate.period_ms * percent // 100
            if later + 3 * rate.period_ms < LATEST_MS:  # the years the bounds leave room for
                clock.set(later / 1000)
        outcomes["decided"] += 1

    try:
        check()
    finally:
        loop.run_until_complete(backend.close())
        pending = asyncio.all_tasks(loop)  # (a watchdog's watcher about to stop, say)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending))
        loop.close()
    print(f"\n{kind}: {outcomes}")
    assert outcomes["refused"] > 0
    assert outcomes["decided"] > 0
    assert kind != "memcached" or outcomes["refused by memcached"] > 0

from __future__ import annotations

import random

import pytest

from traffik import ConfigurationError
from traffik.resilience import (
    ConstantBackoff,
    ExponentialBackoff,
    Jitter,
    LinearBackoff,
    LogarithmicBackoff,
)


def test_shapes() -> None:
    assert [ConstantBackoff(initial=0.1).delay(n) for n in (1, 2, 5)] == [0.1, 0.1, 0.1]
    assert [LinearBackoff(initial=0.1, increment=0.2).delay(n) for n in (1, 2, 3)] == pytest.approx(
        [0.1, 0.3, 0.5]
    )
    assert [ExponentialBackoff(initial=0.1).delay(n) for n in (1, 2, 3, 4)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8]
    )
    assert [LogarithmicBackoff(initial=0.1).delay(n) for n in (1, 2, 4)] == pytest.approx(
        [0.1, 0.2, 0.3]
    )


def test_max_delay_caps_every_shape() -> None:
    assert ExponentialBackoff(initial=0.1, max_delay=0.5).delay(10) == 0.5
    assert ExponentialBackoff(initial=1.0, max_delay=None).delay(10_000) > 1e18
    assert LinearBackoff(initial=0.1, increment=1.0, max_delay=0.3).delay(5) == 0.3


@pytest.mark.parametrize("jitter", [Jitter.FULL, Jitter.EQUAL])
def test_jitter_stays_in_range_and_repeats_with_a_seed(jitter: Jitter) -> None:
    def delays(seed: int) -> list[float]:
        backoff = ExponentialBackoff(
            initial=0.1, max_delay=None, jitter=jitter, rng=random.Random(seed)
        )
        return [backoff.delay(n) for n in range(1, 50)]

    assert delays(7) == delays(7)
    assert delays(7) != delays(8)
    low = 0.5 if jitter is Jitter.EQUAL else 0.0
    for attempt, delay in enumerate(delays(7), start=1):
        full = 0.1 * 2 ** (attempt - 1)
        assert low * full <= delay <= full


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: ConstantBackoff(initial=-1), "-1"),
        (lambda: ExponentialBackoff(multiplier=0.5), "0.5"),
        (lambda: LogarithmicBackoff(base=1), "base"),
        (lambda: LinearBackoff(increment=float("nan")), "nan"),
        (lambda: ConstantBackoff(jitter="full"), "'full'"),  # type: ignore[arg-type]
        (lambda: ConstantBackoff().delay(0), "attempt"),
    ],
)
def test_bad_settings_are_named(build: object, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        build()  # type: ignore[operator]
    assert fragment in str(info.value)

"""traffik 1.x's tier and priority in the identity (`traffik.strategies._markers`)."""

from __future__ import annotations

import logging

import pytest

from traffik import Limiter, ManualClock, Priority, PriorityQueue, TieredRate
from traffik.backends.inmemory import InMemoryBackend
from traffik.exceptions import ConfigurationError
from traffik.strategies._markers import split_marked

NOW = 1_800_000_010.0


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        ("tier:premium:user:42", ("user:42", "premium")),
        ("user:42:tier:premium", ("user:42", "premium")),
        ("user:42:tier:premium:eu", ("user:42:eu", "premium")),
        ("tier:premium", ("tier:premium", "premium")),  # only the segment: kept whole
        ("frontier:5", None),  # not a segment of its own
        ("user:tier:", None),  # an empty value names nothing
        ("user:42", None),
    ],
)
def test_the_marked_segment_is_read_and_taken_out_of_the_identity(
    identity: str, expected: tuple[str, str] | None
) -> None:
    assert split_marked(identity, "tier:") == expected


def test_markers_are_checked_and_end_in_a_colon_as_in_1x() -> None:
    assert TieredRate(marker="level").marker == "level:"
    assert TieredRate().marker == "tier:"
    assert PriorityQueue().marker == "priority:"
    assert TieredRate(marker=None).from_identity("tier:premium:u") is None
    with pytest.raises(ConfigurationError, match="marker must be a non-empty string"):
        TieredRate(marker=":")
    with pytest.raises(ConfigurationError, match="marker must be a non-empty string"):
        PriorityQueue(marker=3)  # type: ignore[arg-type]


def limiter(strategy: object, rate: str = "2/hour", **kwargs: object) -> Limiter:
    backend = InMemoryBackend("markers", clock=ManualClock(NOW))
    return Limiter("api", rate, strategy=strategy, backend=backend, **kwargs)  # type: ignore[arg-type]


async def test_the_identity_form_decides_as_the_params_form() -> None:
    marked = limiter(TieredRate())
    decision = await marked.decide("tier:premium:user:1")
    assert (decision.limit, decision.remaining) == (10, 9)
    # One key per client: the same client named through params shares the budget.
    shared = await marked.decide("user:1", params={"tier": "premium"})
    assert (shared.limit, shared.remaining) == (10, 8)
    stat = await marked.stat("tier:premium:user:1")
    assert stat is not None
    assert "tier:" not in stat.key


async def test_params_win_over_the_identity() -> None:
    marked = limiter(TieredRate())
    decision = await marked.decide("tier:premium:user:1", params={"tier": "enterprise"})
    assert decision.limit == 20


async def test_a_params_function_is_merged_with_the_identity() -> None:
    async def region(key: str) -> dict[str, object]:
        return {"region": "eu"}

    marked = limiter(TieredRate(), params=region)
    assert (await marked.decide("tier:enterprise:user:1")).limit == 20


async def test_unknown_names_get_the_default_and_a_warning_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tiers = limiter(TieredRate())
    priorities = limiter(PriorityQueue(), rate="2/min")
    with caplog.at_level(logging.WARNING, logger="traffik"):
        for _ in range(3):
            assert (await tiers.decide("tier:platinum-x1:user:1")).limit == 2
            await priorities.decide("priority:9:user:1")
    said = [record.getMessage() for record in caplog.records]
    assert len([m for m in said if "'platinum-x1' is not one of" in m]) == 1
    assert len([m for m in said if "PriorityQueue priority: '9'" in m]) == 1


async def test_priorities_in_the_identity_share_one_budget_per_client() -> None:
    queue = limiter(PriorityQueue(), rate="2/min")
    assert (await queue.decide("priority:1:user:1")).allowed
    assert (await queue.decide("priority:1:user:1")).allowed
    assert not (await queue.decide("priority:1:user:1")).allowed
    assert (await queue.decide("priority:critical:user:1")).allowed  # names too
    assert (await queue.decide(f"priority:{int(Priority.CRITICAL)}:user:1")).allowed
    assert not (await queue.decide("priority:4:user:1")).allowed

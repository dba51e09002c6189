from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from traffik import Decision, InMemoryBackend, ManualClock, Rate
from traffik.backends.base import Hit
from traffik.strategies.base import Params, Strategy


class BrokenBackend(InMemoryBackend):
    """A backend whose store is down."""

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        raise ConnectionError("store unreachable")

    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        raise ConnectionError("store unreachable")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000.0)  # 40 s into a minute


@pytest.fixture
def backend(clock: ManualClock) -> InMemoryBackend:
    return InMemoryBackend(namespace="metrics", clock=clock)


@pytest.fixture
def broken() -> BrokenBackend:
    return BrokenBackend(namespace="broken")

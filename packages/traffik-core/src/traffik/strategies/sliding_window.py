"""traffik 1.x's ``traffik.strategies.sliding_window``, kept as an alias (`traffik._aliases`)."""

from typing import TYPE_CHECKING

from traffik._aliases import Moved, forward

if TYPE_CHECKING:
    from traffik.strategies import SlidingWindowCounter as SlidingWindowCounter
    from traffik.strategies import SlidingWindowLog as SlidingWindowLog

    SlidingWindowCounterStrategy = SlidingWindowCounter
    SlidingWindowLogStrategy = SlidingWindowLog

forward(
    __name__,
    globals(),
    {
        name: Moved("traffik.strategies", name=name.removesuffix("Strategy"))
        for name in (
            "SlidingWindowLog",
            "SlidingWindowLogStrategy",
            "SlidingWindowCounter",
            "SlidingWindowCounterStrategy",
        )
    },
)

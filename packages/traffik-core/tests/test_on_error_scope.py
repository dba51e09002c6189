"""``on_error`` decides outages and the user's own failing functions, nothing else.

Each side of the rule: a store failure (`BackendError`, or the OSError / TimeoutError of
a backend that does not translate them) and a user's identifier / rate / cost / params
function raising at run time go to ``on_error``; a strategy's error, a
`ConfigurationError` met while deciding, or a bug in a backend propagate, whatever
``on_error`` says, and admit nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from traffik import (
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    Decision,
    ErrorContext,
    InMemoryBackend,
    Limiter,
    ManualClock,
    hit_all,
)
from traffik.error_policy import FailureWarnings
from traffik.strategies import FixedWindow

POLICIES: list[Any] = ["allow", "throttle"]


async def _let_through(context: ErrorContext) -> float:
    return 0.0


class FailingBackend(InMemoryBackend):
    """An in-memory backend whose every apply, apply_many and peek raise ``error``."""

    def __init__(self, error: Exception, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    async def apply(self, *args: Any) -> Decision:
        raise self.error

    async def apply_many(self, *args: Any) -> list[Decision]:
        raise self.error

    async def peek(self, *args: Any) -> Decision:
        raise self.error


def FailingStrategy(error: Exception) -> FixedWindow:
    """A strategy (a user's, say) whose decision raises ``error``."""

    class Failing(FixedWindow):
        def decide(self, *args: Any) -> Any:
            raise error

    return Failing()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000.0)


# -- outages: on_error decides ----------------------------------------------------------

STORE_ERRORS = [
    BackendError("down"),
    BackendTimeoutError("silent"),
    ConnectionError("refused"),  # an OSError from a backend that does not translate it
    TimeoutError("slow"),
    asyncio.TimeoutError(),
]


@pytest.mark.parametrize("error", STORE_ERRORS, ids=lambda e: type(e).__name__)
async def test_a_store_failure_is_decided_by_on_error(error: Exception) -> None:
    allowing = Limiter("a", rate="1/min", backend=FailingBackend(error), on_error="allow")
    refusing = Limiter("t", rate="1/min", backend=FailingBackend(error), on_error="throttle")
    assert (await allowing.decide("k")).allowed
    assert (await allowing.peek("k")).allowed
    assert not (await refusing.decide("k")).allowed


@pytest.mark.parametrize("function", ["identifier", "rate", "cost", "params"])
async def test_a_users_function_raising_at_run_time_is_decided_by_on_error(
    function: str, clock: ManualClock
) -> None:
    async def broken(connection: Any) -> Any:
        raise ValueError("user code failed")

    backend = InMemoryBackend(clock=clock)
    policies: list[tuple[Any, bool]] = [("allow", True), ("throttle", False)]
    for policy, allowed in policies:
        throttle_kwargs: dict[str, Any] = {"rate": "1/min", function: broken}
        if function == "rate":
            throttle_kwargs["rate"] = broken
        limiter = Limiter(f"u-{policy}", backend=backend, on_error=policy, **throttle_kwargs)
        assert [(await limiter.decide("k")).allowed for _ in range(3)] == [allowed] * 3


# -- not outages: they raise, whatever on_error says -------------------------------------


@pytest.mark.parametrize("policy", [*POLICIES, _let_through], ids=["allow", "throttle", "handler"])
@pytest.mark.parametrize(
    "error", [RuntimeError("bug"), ConfigurationError("too large"), KeyError("state")]
)
async def test_a_strategys_error_raises_and_admits_nothing(
    policy: Any, error: Exception, clock: ManualClock
) -> None:
    limiter = Limiter(
        "s",
        rate="2/min",
        strategy=FailingStrategy(error),
        backend=InMemoryBackend(clock=clock),
        on_error=policy,
    )
    for _ in range(3):
        with pytest.raises(type(error)):
            await limiter.decide("k")
    with pytest.raises(type(error)):
        await limiter.peek("k")


@pytest.mark.parametrize("policy", [*POLICIES, _let_through], ids=["allow", "throttle", "handler"])
async def test_a_bug_in_a_backend_raises_and_admits_nothing(policy: Any) -> None:
    limiter = Limiter(
        "b", rate="2/min", backend=FailingBackend(AttributeError("bug")), on_error=policy
    )
    with pytest.raises(AttributeError, match="bug"):
        await limiter.decide("k")
    with pytest.raises(AttributeError, match="bug"):
        await limiter.peek("k")


async def test_a_strategys_error_is_never_handed_to_an_on_error_handler(
    clock: ManualClock,
) -> None:
    handled: list[BaseException] = []

    async def handler(context: ErrorContext) -> float:
        handled.append(context.exception)
        return 0.0

    limiter = Limiter(
        "h",
        rate="2/min",
        strategy=FailingStrategy(RuntimeError("bug")),
        backend=InMemoryBackend(clock=clock),
        on_error=handler,
    )
    with pytest.raises(RuntimeError):
        await limiter.decide("k")
    assert handled == []


async def test_several_limits_raise_on_a_strategys_error(clock: ManualClock) -> None:
    backend = InMemoryBackend(clock=clock)
    good = Limiter("good", rate="5/min", backend=backend)
    bad = Limiter(
        "bad", rate="5/min", strategy=FailingStrategy(RuntimeError("bug")), backend=backend
    )
    with pytest.raises(RuntimeError, match="bug"):
        await hit_all([(good, "k"), (bad, "k")])
    # All-or-nothing: the good limit was not consumed by the failed step.
    assert await good.peek("k") == await good.peek("untouched")


async def test_several_limits_decide_a_store_failure_by_on_error() -> None:
    backend = FailingBackend(BackendError("down"))
    first = Limiter("one", rate="5/min", backend=backend, on_error="allow")
    second = Limiter("two", rate="5/min", backend=backend, on_error="throttle")
    decisions = await hit_all([(first, "k"), (second, "k")])
    assert [decision.allowed for decision in decisions] == [True, False]


# -- failing open is said where operators look -------------------------------------------


def test_failure_warnings_carry_the_count_since_the_last_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    warnings = FailureWarnings(30.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="traffik"):
        for second in (0.0, 1.0, 2.0, 29.9):
            now[0] = second
            warnings.warn("api", BackendError("down"), "allow")
        now[0] = 30.0
        warnings.warn("api", BackendError("down"), "allow")
        now[0] = 60.0
        warnings.warn("api", BackendError("down"), "allow")
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert "on_error='allow' applies" in messages[0]
    assert "since the last" not in messages[0]
    assert messages[1].endswith("(3 similar failures since the last warning)")
    assert "since the last" not in messages[2]  # none in between


async def test_an_outage_under_allow_logs_one_warning_not_one_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = Limiter("api", rate="1/min", backend=FailingBackend(BackendError("down")))
    with caplog.at_level(logging.WARNING, logger="traffik"):
        assert all([(await limiter.decide("k")).allowed for _ in range(50)])
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "'api' could not decide (BackendError: down); on_error='allow'" in warning.getMessage()

"""The user's functions are checked when given (`traffik.callbacks`): ``(connection)`` and
the traffik 1.x ``(connection, context)`` work at request time, any other signature is
refused at construction, and a function that raises at run time goes to ``on_error``."""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from traffik import (
    ConfigurationError,
    Decision,
    ErrorContext,
    InMemoryBackend,
    Limiter,
    ManualClock,
    Rate,
)
from traffik.callbacks import EMPTY_CONTEXT, arguments_taken, connection_function
from traffik.error_policy import MillisecondErrorHandler, ThrottleExceptionInfo
from traffik.strategies import Params, Strategy


class BrokenBackend(InMemoryBackend):
    """A backend whose store is down."""

    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        raise ConnectionError("store unreachable")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_000.0)  # 40 s into a minute


@pytest.fixture
def backend(clock: ManualClock) -> InMemoryBackend:
    return InMemoryBackend(clock=clock)


async def allowed(limiter: Limiter, key: str, hits: int) -> list[bool]:
    return [(await limiter.decide(key)).allowed for _ in range(hits)]


# -- rate functions: the 1.x way, exactly as its documentation writes them -----------------


async def test_rate_function_written_the_1x_way(backend: InMemoryBackend) -> None:
    async def rate(
        connection: str,
        context: typing.Optional[typing.Dict[str, typing.Any]],  # noqa: UP006, UP045
    ) -> Rate:
        if connection.startswith("premium:"):
            return Rate.parse("3/min")
        return Rate.parse("1/min")

    limiter = Limiter("rate-1x", rate=rate, backend=backend)
    assert await allowed(limiter, "premium:ada", 4) == [True, True, True, False]
    assert await allowed(limiter, "free:bob", 2) == [True, False]


async def test_cost_function_written_the_1x_way(backend: InMemoryBackend) -> None:
    async def cost(
        connection: str,
        context: typing.Optional[typing.Dict[str, typing.Any]],  # noqa: UP006, UP045
    ) -> int:
        return 2 if connection.endswith(":bulk") else 1

    limiter = Limiter("cost-1x", rate="4/min", cost=cost, backend=backend)
    assert await allowed(limiter, "a:bulk", 3) == [True, True, False]
    assert await allowed(limiter, "b", 5) == [True, True, True, True, False]


# -- every kind, both forms -----------------------------------------------------------------

KINDS = ("rate", "cost", "params", "identifier")


def limiter_with(kind: str, function: Callable[..., Any], backend: InMemoryBackend) -> Limiter:
    """A limiter of 2 per minute (one unit a hit) whose ``kind`` is ``function``; each
    function kind returns what the fixed setting would be."""
    settings: dict[str, Any] = {"rate": "2/min"}
    settings[kind] = function
    return Limiter(f"kind-{kind}", backend=backend, **settings)


def answer(kind: str, connection: str) -> Any:
    return {"rate": "2/min", "cost": 1, "params": {}, "identifier": connection}[kind]


@pytest.mark.parametrize("kind", KINDS)
async def test_both_forms_limit(kind: str, backend: InMemoryBackend) -> None:
    seen: list[tuple[Any, ...]] = []

    async def of_connection(connection: str) -> Any:
        seen.append((connection,))
        return answer(kind, connection)

    async def of_connection_and_context(connection: str, context: Mapping[str, Any]) -> Any:
        seen.append((connection, context))
        return answer(kind, connection)

    for function in (of_connection, of_connection_and_context):
        limiter = limiter_with(kind, function, backend)
        key = f"{kind}:{function.__name__}"
        assert await allowed(limiter, key, 3) == [True, True, False]
        await backend.clear()
    assert seen[0] == (f"{kind}:of_connection",)
    assert seen[-1] == (f"{kind}:of_connection_and_context", EMPTY_CONTEXT)


@pytest.mark.parametrize("kind", KINDS)
async def test_sync_functions_and_optional_context(kind: str, backend: InMemoryBackend) -> None:
    contexts: list[Any] = []

    def sync(connection: str, context: Any = None) -> Any:  # 1.x: "context=None"
        contexts.append(context)
        return answer(kind, connection)

    limiter = limiter_with(kind, sync, backend)
    assert await allowed(limiter, "k", 3) == [True, True, False]
    assert contexts[0] is EMPTY_CONTEXT  # a function that can take the context gets it


@pytest.mark.parametrize("kind", KINDS)
async def test_star_args_get_both(kind: str, backend: InMemoryBackend) -> None:
    calls: list[tuple[Any, ...]] = []

    async def anything(*args: Any) -> Any:
        calls.append(args)
        return answer(kind, args[0])

    limiter = limiter_with(kind, anything, backend)
    assert await allowed(limiter, "k", 3) == [True, True, False]
    assert calls[0] == ("k", EMPTY_CONTEXT)


async def test_partial_is_checked_like_a_function(backend: InMemoryBackend) -> None:
    async def rate_for(tier: str, connection: str) -> str:
        return {"free": "1/min", "paid": "2/min"}[tier]

    limiter = Limiter("partial", rate=functools.partial(rate_for, "paid"), backend=backend)
    assert await allowed(limiter, "k", 3) == [True, True, False]
    with pytest.raises(ConfigurationError, match="rate function"):  # nothing left to take
        Limiter("partial-none", rate=functools.partial(rate_for, "paid", "k"), backend=backend)


class Opaque:
    """A callable whose signature cannot be read."""

    __signature__ = "unreadable"  # inspect.signature raises (TypeError; ValueError on 3.12+)

    def __call__(self, connection: str) -> int:
        return 2


async def test_an_unreadable_signature_gets_the_connection(backend: InMemoryBackend) -> None:
    with pytest.raises((TypeError, ValueError)):
        inspect.signature(Opaque())
    limiter = Limiter("opaque", rate="5/min", cost=Opaque(), backend=backend)  # type: ignore[arg-type]
    assert await allowed(limiter, "k", 3) == [True, True, False]


# -- refused at construction ----------------------------------------------------------------


async def no_arguments() -> str:
    return "x"


async def three(connection: str, context: Any, extra: Any) -> str:
    return "x"


async def keyword_only(connection: str, *, tier: str) -> str:
    return "x"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("function", "shown"),
    [
        (lambda: "x", r"<lambda>\(\)"),
        (no_arguments, r"no_arguments\(\)"),
        (three, r"three\(connection: 'str', context: 'Any', extra: 'Any'\)"),
        (keyword_only, r"keyword_only\(connection: 'str', \*, tier: 'str'\)"),
    ],
)
def test_a_wrong_signature_is_refused_showing_the_forms(
    kind: str, function: Callable[..., Any], shown: str, backend: InMemoryBackend
) -> None:
    with pytest.raises(ConfigurationError) as info:
        limiter_with(kind, function, backend)
    message = str(info.value)
    assert f"The {kind} function of throttle 'kind-{kind}'" in message or (
        kind == "identifier" and "The identifier of throttle 'kind-identifier'" in message
    )
    assert f"async def {kind}(connection)" in message
    assert f"async def {kind}(connection, context)  (traffik 1.x)" in message
    assert re.search(shown, message), message


def test_arguments_taken_prefers_the_most_it_can_take() -> None:
    forms = ("f(connection)",)

    def one(a: Any) -> None: ...
    def two(a: Any, b: Any = None) -> None: ...
    def required_two(a: Any, b: Any) -> None: ...

    assert arguments_taken(one, (1, 2), "f", forms) == 1
    assert arguments_taken(two, (1, 2), "f", forms) == 2
    assert arguments_taken(required_two, (1, 2), "f", forms) == 2
    assert arguments_taken(max, (1, 2), "f", forms) == 1  # no signature: the connection only
    with pytest.raises(ConfigurationError, match="f must take one of"):
        arguments_taken(required_two, (1,), "f", forms)
    with pytest.raises(ConfigurationError, match="got 3"):
        arguments_taken(3, (1,), "f", forms)


def test_an_async_function_of_the_connection_is_called_as_it_is() -> None:
    async def identify(connection: str) -> str:
        return connection

    owner = Limiter("same", rate="1/min")
    assert connection_function(identify, owner, "it", "identifier") is identify


# -- run-time errors still go to on_error ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_1x_function_raising_goes_to_on_error(kind: str, backend: InMemoryBackend) -> None:
    async def broken(connection: str, context: Mapping[str, Any]) -> Any:
        raise RuntimeError(f"{kind} lookup failed")

    seen: list[BaseException] = []

    async def handler(context: ErrorContext) -> float:
        seen.append(context.exception)
        return 5.0

    settings: dict[str, Any] = {"rate": "2/min", kind: broken}
    limiter = Limiter(f"raising-{kind}", backend=backend, on_error=handler, **settings)
    decision = await limiter.decide("k")
    assert not decision.allowed
    assert decision.retry_after == 5.0
    assert [str(exc) for exc in seen] == [f"{kind} lookup failed"]


# -- on_error: the 2.x handler in seconds, the 1.x handler in milliseconds ------------------


async def test_a_1x_on_error_handler_waits_milliseconds() -> None:
    infos: list[ThrottleExceptionInfo] = []

    async def my_handler(connection: Any, exc_info: ThrottleExceptionInfo) -> float:
        infos.append(exc_info)
        return 1000  # 1.x: "throttle for 1 second"

    limiter = Limiter("ms", rate="5/min", backend=BrokenBackend(), on_error=my_handler)
    assert isinstance(limiter.on_error, MillisecondErrorHandler)
    decision = await limiter.decide("k")
    assert not decision.allowed
    assert decision.retry_after == 1.0  # one second, not 1000
    [info] = infos
    assert isinstance(info["exception"], ConnectionError)
    assert info["connection"] == "k"
    assert info["cost"] == 1
    assert info["rate"] == Rate.parse("5/min")
    assert info["throttle"] is limiter
    assert info["backend"] is not None
    assert info["context"] == {}
    assert "throttle" in repr(limiter.on_error) or "my_handler" in repr(limiter.on_error)


async def test_a_1x_on_error_handler_returning_0_lets_through() -> None:
    async def fail_open(connection: Any, exc_info: Mapping[str, Any]) -> int:
        return 0

    limiter = Limiter("ms-open", rate="5/min", backend=BrokenBackend(), on_error=fail_open)
    assert (await limiter.decide("k")).allowed


async def test_a_1x_on_error_handler_on_the_backend() -> None:
    async def one_second(connection: Any, exc_info: Mapping[str, Any]) -> float:
        return 1500.0

    backend = BrokenBackend(on_error=one_second)
    limiter = Limiter("ms-backend", rate="5/min", backend=backend)
    decision = await limiter.decide("k")
    assert (decision.allowed, decision.retry_after) == (False, 1.5)


async def test_a_2x_on_error_handler_waits_seconds() -> None:
    async def handler(context: ErrorContext) -> float:
        return 2.0

    limiter = Limiter("s", rate="5/min", backend=BrokenBackend(), on_error=handler)
    assert limiter.on_error is handler
    assert (await limiter.decide("k")).retry_after == 2.0


@pytest.mark.parametrize(
    "handler",
    [lambda: 0, three, keyword_only],
    ids=["no-arguments", "three", "keyword-only"],
)
def test_an_on_error_handler_of_another_form_is_refused(handler: Callable[..., Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        Limiter("bad-on-error", rate="5/min", on_error=handler)
    message = str(info.value)
    assert "async def on_error(context: ErrorContext) -> float | Decision  (seconds)" in message
    assert "async def on_error(connection, exc_info) -> float  (traffik 1.x: milliseconds)" in (
        message
    )
    with pytest.raises(ConfigurationError, match="on_error must take"):
        InMemoryBackend(on_error=handler)

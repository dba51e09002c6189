"""The backend of the current context (`traffik.backends.current`) and dynamic_backend."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from traffik import Limiter, ManualClock
from traffik.backends.base import APP_STATE_ATTRIBUTE, get_default_backend
from traffik.backends.current import current_backend
from traffik.backends.inmemory import InMemoryBackend
from traffik.exceptions import ConfigurationError

NOW = 1_800_000_010.0


def backend(name: str) -> InMemoryBackend:
    return InMemoryBackend(name, clock=ManualClock(NOW))


async def test_async_with_sets_the_backend_of_the_context_innermost_first() -> None:
    outer, inner = backend("outer"), backend("inner")
    assert current_backend() is None
    async with outer:
        assert current_backend() is outer
        async with inner:
            assert current_backend() is inner
            async with outer:  # entering a running backend again nests too
                assert current_backend() is outer
            assert current_backend() is inner
        assert current_backend() is outer
    assert current_backend() is None


async def test_each_task_has_its_own_context_and_tasks_started_inside_inherit_it() -> None:
    app_backend, a, b = backend("app"), backend("a"), backend("b")
    seen: dict[str, list[object]] = {"a": [], "b": []}
    gate = asyncio.Event()

    async def request(name: str, tenant: InMemoryBackend) -> None:
        async with tenant:
            seen[name].append(current_backend())
            await gate.wait()  # both requests are inside their contexts at once
            seen[name].append(await asyncio.create_task(_current()))
        seen[name].append(current_backend())

    async with app_backend:
        tasks = [asyncio.create_task(request("a", a)), asyncio.create_task(request("b", b))]
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(*tasks)
        assert seen == {"a": [a, a, app_backend], "b": [b, b, app_backend]}
        # Tenant backends entered per request never became the process default.
        assert get_default_backend() is app_backend
    assert get_default_backend() is None


async def _current() -> object:
    return current_backend()


async def test_a_dynamic_throttle_follows_the_context_and_a_plain_one_ignores_it() -> None:
    app_backend, tenant = backend("app"), backend("tenant")
    dynamic = Limiter("dyn", "2/min", dynamic_backend=True)
    plain = Limiter("plain", "2/min")
    assert dynamic.backend is None
    assert dynamic.dynamic_backend
    # As a lifespan runs them: the tenant's backend started first, the app's last (the
    # process default); a request enters the tenant's, already running, around its work.
    async with tenant, app_backend:
        assert get_default_backend() is app_backend
        async with tenant:
            assert (await dynamic.decide("k")).allowed
            assert (await plain.decide("k")).allowed
        assert len(tenant) == 1  # the dynamic throttle's key only
        assert len(app_backend) == 1  # the plain throttle's key only
        # Outside any tenant context the dynamic throttle falls back to the default.
        assert (await dynamic.decide("k")).allowed
        assert len(app_backend) == 2


async def test_dynamic_backend_refuses_an_explicit_backend_and_non_booleans() -> None:
    with pytest.raises(ConfigurationError, match=r"dynamic_backend=True .* no backend="):
        Limiter("x", "1/s", backend=backend("b"), dynamic_backend=True)
    with pytest.raises(ConfigurationError, match="dynamic_backend must be True or False"):
        Limiter("x", "1/s", dynamic_backend="yes")  # type: ignore[arg-type]


async def test_the_1x_call_form_records_on_the_app_and_may_stay_open() -> None:
    b = backend("b")
    app = SimpleNamespace(state=SimpleNamespace())
    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    b.close = close  # type: ignore[method-assign]
    async with b(app, close_on_exit=False, persistent=True) as entered:
        assert entered is b
        assert getattr(app.state, APP_STATE_ATTRIBUTE) is b
        assert current_backend() is b
        assert get_default_backend() is b
    assert not hasattr(app.state, APP_STATE_ATTRIBUTE)
    assert current_backend() is None
    assert get_default_backend() is None
    assert closed == []  # close_on_exit=False
    async with b():
        pass
    assert closed == [True]  # close_on_exit defaults to True, as in 1.x


async def test_the_1x_call_form_clears_on_exit_only_when_persistent_false_is_asked() -> None:
    b = backend("b")
    limiter = Limiter("api", "5/min", dynamic_backend=True)
    async with b():
        await limiter.decide("k")
    async with b(persistent=True):
        await limiter.decide("k")
    assert len(b) == 1  # left out or True: nothing deleted
    async with b(close_on_exit=False, persistent=False):
        assert (await limiter.decide("k")).remaining == 2
    assert len(b) == 0  # asked for: the namespace is cleared, as 1.x did
    with pytest.raises(ConfigurationError, match="persistent must be True or False"):
        b(persistent="no")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="close_on_exit must be True or False"):
        b(close_on_exit="no")  # type: ignore[arg-type]


async def test_interleaved_starts_and_stops_leave_no_stale_default() -> None:
    first, second = backend("first"), backend("second")
    step = asyncio.Event()

    async def hold(b: InMemoryBackend, wait: asyncio.Event | None) -> None:
        async with b:
            if wait is not None:
                await wait.wait()

    one = asyncio.create_task(hold(first, step))
    await asyncio.sleep(0)
    two = asyncio.create_task(hold(second, None))
    await two  # `second` started after `first` and stopped before it
    assert get_default_backend() is first
    step.set()
    await one
    assert get_default_backend() is None

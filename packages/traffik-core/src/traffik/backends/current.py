"""The backend of the current context: per-request (per-tenant) backends.

``async with backend:`` makes ``backend`` the backend of the code it runs, and of the
tasks that code starts (a context variable: each request, each task has its own). A
throttle built with ``dynamic_backend=True`` asks `current_backend` on every hit, so a
middleware or a dependency routes a request's limits to a backend of its choosing —
one Redis per tenant, say::

    async with tenant_backend:  # or tenant_backend(close_on_exit=False), the 1.x form
        return await call_next(request)

Throttles without ``dynamic_backend`` ignore the context: they use their own backend,
else the application's, else the process default (`traffik.backends.base`), as in
traffik 1.x, where such a throttle kept the backend it found first.

``backend(app=None, *, close_on_exit=True, persistent=None)`` is traffik 1.x's spelling
of the same context, kept with its meaning: ``app`` also records the backend as that
application's (as its lifespan does), ``close_on_exit=False`` leaves the backend open when
the context ends, and ``persistent=False`` — asked for, never by default — clears the
backend's namespace when the context ends, as 1.x did (never do that around requests:
every request would start every client afresh). Left out (None) or True, nothing is
deleted: traffik 2 never deletes counters unless asked.
"""

from __future__ import annotations

from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Final

from traffik.exceptions import ConfigurationError

if TYPE_CHECKING:
    from traffik.backends.base import ThrottleBackend

__all__ = ["BackendContext", "current_backend"]

# The backends entered in this context, innermost last: a tuple, so that a task started
# inside sees a snapshot and one request's exit never touches another's.
_ENTERED: Final[ContextVar[tuple[ThrottleBackend, ...]]] = ContextVar(
    "traffik_entered_backends", default=()
)


def current_backend() -> ThrottleBackend | None:
    """The backend of the innermost ``async with backend:`` around this code, if any."""
    entered = _ENTERED.get()
    return entered[-1] if entered else None


def enter_context(backend: ThrottleBackend) -> None:
    _ENTERED.set((*_ENTERED.get(), backend))


def leave_context(backend: ThrottleBackend) -> None:
    """Forget the innermost entry of ``backend`` (contexts of one task nest)."""
    entered = _ENTERED.get()
    for index in range(len(entered) - 1, -1, -1):
        if entered[index] is backend:
            _ENTERED.set(entered[:index] + entered[index + 1 :])
            return


class BackendContext:
    """``backend(app, close_on_exit=..., persistent=...)``: traffik 1.x's context."""

    __slots__ = ("_recorded", "app", "backend", "close_on_exit", "persistent")

    def __init__(
        self,
        backend: ThrottleBackend,
        app: object = None,
        *,
        close_on_exit: bool = True,
        persistent: bool | None = None,
    ) -> None:
        if not isinstance(close_on_exit, bool):
            raise ConfigurationError(f"close_on_exit must be True or False, got {close_on_exit!r}")
        if persistent is not None and not isinstance(persistent, bool):
            raise ConfigurationError(f"persistent must be True or False, got {persistent!r}")
        self.backend = backend
        self.app = app
        self.close_on_exit = close_on_exit
        #: False: clear the namespace when the context ends (asked for explicitly).
        self.persistent = persistent
        self._recorded = False

    async def __aenter__(self) -> ThrottleBackend:
        backend = self.backend
        await backend.__aenter__()
        state = getattr(self.app, "state", None)
        if state is not None:
            from traffik.backends.base import APP_STATE_ATTRIBUTE

            setattr(state, APP_STATE_ATTRIBUTE, backend)
            self._recorded = True
        return backend

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        backend = self.backend
        if self._recorded:
            from traffik.backends.base import APP_STATE_ATTRIBUTE

            self._recorded = False
            state = getattr(self.app, "state", None)
            if getattr(state, APP_STATE_ATTRIBUTE, None) is backend:
                delattr(state, APP_STATE_ATTRIBUTE)
        try:
            if self.persistent is False:
                await backend.clear()
        finally:
            await backend._leave(close=self.close_on_exit)

    def __repr__(self) -> str:
        return f"BackendContext({self.backend!r}, close_on_exit={self.close_on_exit})"

"""The backend protocol: apply strategy decisions atomically, for many processes at once.

A backend owns one job. For one key, it reads the stored state, runs the strategy's pure
decision and stores the result, with no other decision on that key in between. For
several keys (one request meeting several limits) it does the same all-or-nothing: when
any limit refuses, none of the others is consumed.

Subclasses implement `apply`, `apply_many`, `peek`, `refund`, `delete` and `clear`, plus
`initialize` / `close` when they hold connections. Everything else — lifecycle, the
lifespan for FastAPI and Starlette, the process default — lives here.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from traffik.error_policy import OnError, validate_on_error
from traffik.keys import validate_key_part

if TYPE_CHECKING:
    from traffik.decision import Decision
    from traffik.rates import Rate
    from traffik.strategies.base import Params, Strategy

__all__ = [
    "APP_STATE_ATTRIBUTE",
    "Hit",
    "ThrottleBackend",
    "get_default_backend",
    "set_default_backend",
]

APP_STATE_ATTRIBUTE = "traffik_backend"
"""The attribute of ``app.state`` where a backend's lifespan records itself."""


class Hit(NamedTuple):
    """One limit to apply: what `ThrottleBackend.apply_many` takes, one per limit."""

    key: str
    strategy: Strategy[Any]
    rate: Rate
    cost: int
    params: Params


class ThrottleBackend(ABC):
    """Base class of every backend.

    ``namespace`` prefixes every key the backend stores, so several applications (or
    environments) can share one store. ``on_error`` is the default for throttles that use
    this backend and set none of their own.
    """

    #: Whether decisions are shared between processes (False for the in-memory backend).
    distributed: bool = False

    def __init__(self, namespace: str, *, on_error: OnError = "allow") -> None:
        self.namespace = validate_key_part(namespace, "Backend namespace")
        validated = validate_on_error(on_error, allow_none=False)
        assert validated is not None
        self.on_error: OnError = validated
        self._entered = 0
        self._previous_default: list[ThrottleBackend | None] = []

    # -- decisions -------------------------------------------------------------------

    @abstractmethod
    async def apply(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        """Decide one request against one limit and store the outcome, atomically."""

    @abstractmethod
    async def apply_many(self, hits: Sequence[Hit]) -> list[Decision]:
        """Decide several limits for one request, all-or-nothing.

        When every decision allows, all are stored. When any refuses, no allowed one is
        stored (the request consumed nothing). Decisions come back in the order given.
        """

    @abstractmethod
    async def peek(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> Decision:
        """Decide as `apply` would, storing nothing."""

    @abstractmethod
    async def refund(
        self, key: str, strategy: Strategy[Any], rate: Rate, cost: int, params: Params
    ) -> None:
        """Give ``cost`` back to one key, atomically (see `Strategy.refund`)."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Forget one key's state (a client starts afresh)."""

    @abstractmethod
    async def clear(self) -> None:
        """Delete every key in this backend's namespace. Never called implicitly."""

    # -- lifecycle -------------------------------------------------------------------

    async def initialize(self) -> None:  # noqa: B027 - a hook; most backends need nothing
        """Open connections. Called on entering the backend; safe to call twice."""

    async def close(self) -> None:  # noqa: B027 - a hook; most backends need nothing
        """Release connections. Never deletes stored state."""

    async def ready(self) -> bool:
        """Whether the store answers. In-process backends are always ready."""
        return True

    async def __aenter__(self) -> ThrottleBackend:
        if self._entered == 0:
            await self.initialize()
        self._entered += 1
        self._previous_default.append(get_default_backend())
        set_default_backend(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        set_default_backend(self._previous_default.pop())
        self._entered -= 1
        if self._entered == 0:
            await self.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Run this backend for the life of an application.

        ``FastAPI(lifespan=backend.lifespan)``, ``Starlette(lifespan=backend.lifespan)`` or,
        inside a lifespan of your own, ``async with backend.lifespan(app): ...``. The backend
        is recorded on ``app.state`` (requests find it there) and as the process default.
        Shared counters survive shutdown.
        """
        state = getattr(app, "state", None)
        async with self:
            if state is not None:
                setattr(state, APP_STATE_ATTRIBUTE, self)
            try:
                yield
            finally:
                if state is not None and getattr(state, APP_STATE_ATTRIBUTE, None) is self:
                    delattr(state, APP_STATE_ATTRIBUTE)

    def __bool__(self) -> bool:
        # A backend that defines __len__ must not turn falsy when it holds no keys.
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(namespace={self.namespace!r})"


# The backend that throttles without one of their own fall back to. Set by a running
# lifespan (or `async with backend:`); the lifespan also records itself on the app, which
# is where requests look first.
_default_backend: ThrottleBackend | None = None


def get_default_backend() -> ThrottleBackend | None:
    return _default_backend


def set_default_backend(backend: ThrottleBackend | None) -> None:
    global _default_backend
    _default_backend = backend

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
import functools
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from traffik._aliases import Gone, forward
from traffik._legacy_keywords import refuse_backend_keywords
from traffik.backends.current import BackendContext, enter_context, leave_context
from traffik.error_policy import ErrorPolicy, OnError, validate_on_error
from traffik.exceptions import ConfigurationError
from traffik.keys import validate_key_part
from traffik.refusals import RefusalCache

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


_B = TypeVar("_B", bound="ThrottleBackend")


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

    ``persistent`` is traffik 1.x's keyword: ``persistent=False`` clears the namespace when
    the backend's lifespan (its outermost ``async with``) ends, as 1.x did by default. By
    default (None) nothing is ever cleared implicitly: shared counters survive restarts.
    """

    #: Whether decisions are shared between processes (False for the in-memory backend).
    distributed: bool = False

    #: The refusal cache the throttles using this backend go through by default: set
    #: while `cache_refusals` is on, None otherwise (see `traffik.refusals`).
    refusal_cache: RefusalCache | None = None
    _refusals: RefusalCache | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Whatever gives units back or drops state makes remembered refusals of those keys
        # wrong: every backend's own methods forget them (see `traffik.refusals`).
        for name, wrap in (
            ("refund", _forgetting_key),
            ("delete", _forgetting_key),
            ("apply_many", _forgetting_hits),
            ("clear", _forgetting_all),
        ):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "__forgets_refusals__", False):
                setattr(cls, name, wrap(method))

    def __new__(cls: type[_B], *args: Any, **kwargs: Any) -> _B:
        # traffik 1.x keywords this backend does not take: refused with what to do instead,
        # rather than Python's "unexpected keyword argument".
        refuse_backend_keywords(cls, kwargs)
        return super().__new__(cls)

    def __init__(
        self, namespace: str, *, on_error: OnError = "allow", persistent: bool | None = None
    ) -> None:
        self.namespace = validate_key_part(namespace, "Backend namespace")
        if persistent is not None and not isinstance(persistent, bool):
            raise ConfigurationError(f"persistent must be True, False or None, got {persistent!r}")
        #: traffik 1.x's ``persistent``: False clears the namespace when the backend's
        #: outermost context (its lifespan) exits. None or True (the default): never.
        self.persistent = persistent
        validated = validate_on_error(on_error, allow_none=False)
        assert validated is not None
        self.on_error: ErrorPolicy = validated
        self._entered = 0

    # -- refusals served locally -------------------------------------------------------

    @property
    def cache_refusals(self) -> bool:
        """Whether throttles using this backend answer lasting refusals locally, without a
        round trip, until their retry time (off by default; see `traffik.refusals`). A
        throttle's own ``cache_refusals`` overrides it."""
        return self.refusal_cache is not None

    @cache_refusals.setter
    def cache_refusals(self, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise ConfigurationError(f"cache_refusals must be True or False, got {enabled!r}")
        self.refusal_cache = self.refusals() if enabled else None

    def refusals(self) -> RefusalCache:
        """This backend's refusal cache (made on first use), whether or not it is the
        default of its throttles."""
        cache = self._refusals
        if cache is None:
            cache = self._refusals = RefusalCache(self)
        return cache

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
            _started.append(self)  # the process default while it runs
        self._entered += 1
        enter_context(self)  # the backend of this context (`traffik.backends.current`)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._leave(close=True)

    async def _leave(self, *, close: bool) -> None:
        leave_context(self)
        self._entered -= 1
        if self._entered == 0:
            _forget_started(self)
            try:
                if self.persistent is False:  # asked for, as in traffik 1.x
                    await self.clear()
            finally:
                if close:
                    await self.close()

    def __call__(
        self, app: object = None, *, close_on_exit: bool = True, persistent: bool | None = None
    ) -> BackendContext:
        """traffik 1.x's ``async with backend(app, close_on_exit=False, persistent=True):``
        — ``async with backend:`` that also records the backend as ``app``'s, with
        ``close_on_exit=False`` leaves it open, and with ``persistent=False`` (asked for,
        never the default) clears its namespace at the end (`traffik.backends.current`);
        ``persistent=None`` follows the backend's own ``persistent``."""
        return BackendContext(self, app, close_on_exit=close_on_exit, persistent=persistent)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Run this backend for the life of an application.

        ``FastAPI(lifespan=backend.lifespan)``, ``Starlette(lifespan=backend.lifespan)`` or,
        inside a lifespan of your own, ``async with backend.lifespan(app): ...``. The backend
        is recorded on ``app.state`` (requests find it there) and as the process default.
        Shared counters survive shutdown (unless ``persistent=False``, traffik 1.x's).
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


_Method = TypeVar("_Method", bound=Callable[..., Awaitable[Any]])


def _forgetting_key(method: _Method) -> _Method:
    """``refund`` / ``delete``, forgetting the key's remembered refusal before and after."""

    @functools.wraps(method)
    async def forgetting(self: ThrottleBackend, key: str, *args: Any, **kwargs: Any) -> Any:
        cache = self._refusals
        if cache is None:
            return await method(self, key, *args, **kwargs)
        cache.forget(key)
        try:
            return await method(self, key, *args, **kwargs)
        finally:
            cache.forget(key)  # a refusal remembered meanwhile was decided before it

    forgetting.__forgets_refusals__ = True  # type: ignore[attr-defined]
    return forgetting  # type: ignore[return-value]


def _forgetting_hits(method: _Method) -> _Method:
    """``apply_many``, forgetting what was remembered of its keys (they were decided)."""

    @functools.wraps(method)
    async def forgetting(self: ThrottleBackend, hits: Sequence[Hit], *args: Any) -> Any:
        cache = self._refusals
        if cache is None:
            return await method(self, hits, *args)
        try:
            return await method(self, hits, *args)
        finally:
            cache.forget_keys([hit.key for hit in hits])

    forgetting.__forgets_refusals__ = True  # type: ignore[attr-defined]
    return forgetting  # type: ignore[return-value]


def _forgetting_all(method: _Method) -> _Method:
    """``clear``, forgetting every remembered refusal."""

    @functools.wraps(method)
    async def forgetting(self: ThrottleBackend, *args: Any, **kwargs: Any) -> Any:
        cache = self._refusals
        if cache is not None:
            cache.forget_all()
        try:
            return await method(self, *args, **kwargs)
        finally:
            if cache is not None:
                cache.forget_all()

    forgetting.__forgets_refusals__ = True  # type: ignore[attr-defined]
    return forgetting  # type: ignore[return-value]


# The backend that throttles without one of their own (and without dynamic_backend) fall
# back to: the latest backend started (entered first, by a lifespan or `async with
# backend:`) and still running, unless `set_default_backend` named one. Entering a
# backend already running (a request routed to a tenant's backend) leaves it alone: the
# default is process-wide, and requests run concurrently. A lifespan also records its
# backend on the app, which is where requests look first.
_started: list[ThrottleBackend] = []


def _forget_started(backend: ThrottleBackend) -> None:
    for index in range(len(_started) - 1, -1, -1):
        if _started[index] is backend:
            del _started[index]
            return


def get_default_backend() -> ThrottleBackend | None:
    return _started[-1] if _started else None


def set_default_backend(backend: ThrottleBackend | None) -> None:
    """Make ``backend`` the process default (None: no default), until another starts."""
    _started[:] = [] if backend is None else [backend]


# traffik 1.x's names that 2.x does not have (`traffik._aliases`): each says what to use.
forward(
    __name__,
    globals(),
    {
        "connection_throttled": Gone(
            "the default refusal handler is traffik.fastapi.raise_throttled(connection, "
            "decision, throttle, context), the wait in decision.retry_after (seconds)"
        ),
        "default_identifier": Gone(
            "the default identity is the client address; behind proxies, name them: "
            "identifier=traffik.remote_address(['10.0.0.0/8'])"
        ),
        "get_throttle_backend": Gone(
            "a throttle finds its backend itself (its own, else the app's, else the "
            "default); get_default_backend() returns the process default"
        ),
        "build_key": Gone(
            "a throttle builds its keys itself; (await throttle.stat(connection)).key shows one"
        ),
    },
    alias_module=False,
)

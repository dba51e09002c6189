"""The traffik 1.x methods of a throttle: those kept with their 1.x meaning, and those
refused with what to do instead (`traffik._legacy_keywords`).

1.x's ``disable()`` / ``enable()`` and ``update_*`` were coroutines; in traffik 2
switching is synchronous, and `Switched` (what they return) may be awaited, so 1.x's
``await throttle.disable()`` works as well as a plain call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, Final, NoReturn

from traffik._legacy_keywords import check_min_wait_period, refused_method
from traffik.backends.base import ThrottleBackend, get_default_backend
from traffik.exceptions import ConfigurationError
from traffik.identities import ExemptedType

__all__ = ["FOUND", "SWITCHED", "LegacyThrottleMethods", "Switched"]


class Switched:
    """Done already; awaiting it (traffik 1.x's ``await throttle.disable()``) gives
    ``result``: None for a throttle, True for a registry's uid (1.x: "found")."""

    __slots__ = ("result",)

    def __init__(self, result: bool | None) -> None:
        self.result = result

    def __await__(self) -> Generator[None, None, bool | None]:
        yield from ()
        return self.result

    def __repr__(self) -> str:
        return f"Switched({self.result!r})"


SWITCHED: Final = Switched(None)
"""What a throttle's `disable` / `enable` return."""
FOUND: Final = Switched(True)
"""What a registry's `disable` / `enable` return: awaited, True (1.x: the uid was found)."""


class LegacyThrottleMethods:
    """traffik 1.x's throttle methods (a base of `Throttle`)."""

    if TYPE_CHECKING:  # what `Throttle` gives its bases
        uid: str
        backend: ThrottleBackend | None
        min_wait_period: float | None
        identifier: Callable[[Any], Awaitable[str | ExemptedType]]

        def _backend_for(self, connection: Any) -> ThrottleBackend: ...

    # -- kept, with their 1.x meaning ----------------------------------------------------

    def get_backend(self, connection: Any = None) -> ThrottleBackend:
        """The backend this throttle uses (for ``connection``, when given): its own, else
        the application's, else the running default. traffik 1.x's name."""
        if connection is not None:
            return self._backend_for(connection)
        backend = self.backend if self.backend is not None else get_default_backend()
        if backend is None:
            raise ConfigurationError(
                f"Throttle {self.uid!r} has no backend: pass backend=..., or run one with "
                "FastAPI(lifespan=backend.lifespan) or 'async with backend:'"
            )
        return backend

    async def get_connection_id(
        self, connection: Any, backend: Any = None, context: Any = None
    ) -> str | ExemptedType:
        """The client's identity for ``connection`` (or `EXEMPTED`), as 1.x returned it;
        ``backend`` and ``context`` (1.x) are not needed."""
        return await self.identifier(connection)

    async def update_min_wait_period(self, min_wait_period: float | None) -> None:
        """Set ``min_wait_period`` (milliseconds, or None to remove the floor), as in 1.x."""
        self.min_wait_period = check_min_wait_period(min_wait_period, self.uid)

    async def update_backend(self, backend: ThrottleBackend) -> None:
        """Use ``backend`` from the next decision on, as in 1.x."""
        if not isinstance(backend, ThrottleBackend):
            raise ConfigurationError(f"backend must be a ThrottleBackend, got {backend!r}")
        self.backend = backend

    # -- refused, naming the 2.x way -----------------------------------------------------

    async def update_rate(self, rate: object) -> NoReturn:
        raise refused_method(type(self).__name__, "update_rate")

    async def update_cost(self, cost: object) -> NoReturn:
        raise refused_method(type(self).__name__, "update_cost")

    async def update_strategy(self, strategy: object) -> NoReturn:
        raise refused_method(type(self).__name__, "update_strategy")

    async def update_identifier(self, identifier: object) -> NoReturn:
        raise refused_method(type(self).__name__, "update_identifier")

    async def update_headers(self, headers: object) -> NoReturn:
        raise refused_method(type(self).__name__, "update_headers")

    async def update_error_handler(self, handler: object) -> NoReturn:
        raise refused_method(type(self).__name__, "update_error_handler")

    async def update_handle_throttled(self, handle_throttled: object) -> NoReturn:
        raise refused_method(type(self).__name__, "update_handle_throttled")

    def get_scoped_key(self, connection: object, context: object = None) -> NoReturn:
        raise refused_method(type(self).__name__, "get_scoped_key")

    def get_namespaced_key(
        self, connection: object, connection_id: object, context: object = None
    ) -> NoReturn:
        raise refused_method(type(self).__name__, "get_namespaced_key")

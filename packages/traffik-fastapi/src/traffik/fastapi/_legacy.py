"""traffik 1.x's methods of HTTP and WebSocket throttles, kept with their 1.x meaning
(the core's are in `traffik._legacy_methods`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from starlette.middleware import Middleware

from traffik._legacy_keywords import refuse_legacy

if TYPE_CHECKING:
    from traffik.fastapi.connection_throttle import ConnectionThrottle
    from traffik.fastapi.registry import ThrottleRegistry
    from traffik.fastapi.rules import PathPattern, Predicate, Rule

__all__ = ["LegacyConnectionMethods"]


class LegacyConnectionMethods:
    """traffik 1.x's methods of a connection throttle (a base of `ConnectionThrottle`)."""

    if TYPE_CHECKING:  # what `ConnectionThrottle` gives its bases
        registry: ThrottleRegistry

    def add_rules(self, target_uid: str, /, *rules: Rule) -> None:
        """Add rules to the throttles of ``target_uid`` in this throttle's registry (1.x)."""
        self.registry.add_rules(target_uid, *rules)

    def as_middleware(
        self,
        *,
        backend: object = None,
        exception_handler_getter: object = None,
        context: Mapping[str, Any] | None = None,
        path: PathPattern | None = None,
        methods: Iterable[str] | None = None,
        predicate: Predicate | None = None,
        cost: int | None = None,
        skip_handler: bool | None = None,
    ) -> Middleware:
        """This throttle as a `ThrottleMiddleware` of one `MiddlewareThrottle`, for
        ``Starlette(middleware=[throttle.as_middleware(path="/api/")])`` (1.x)."""
        from traffik.fastapi.middleware import MiddlewareThrottle, ThrottleMiddleware

        if backend is not None:
            raise refuse_legacy(f"{type(self).__name__}.as_middleware", "middleware_backend")
        if exception_handler_getter is not None:
            raise refuse_legacy(f"{type(self).__name__}.as_middleware", "exception_handler_getter")
        entry = MiddlewareThrottle(
            cast("ConnectionThrottle", self),
            path,
            methods=methods,
            predicate=predicate,
            cost=cost,
            context=context,
            skip_handler=skip_handler,
        )
        return Middleware(ThrottleMiddleware, middleware_throttles=[entry])

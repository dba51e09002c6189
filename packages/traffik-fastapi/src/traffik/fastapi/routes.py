"""What the router matched: the route's template, and the throttles the route declares.

A route declares throttles through FastAPI dependencies (``Depends(throttle)`` anywhere in
its dependency tree: route, router and sub-dependencies, including those `throttled`
adds) or through the `throttled` decorator on a Starlette endpoint. They are found once
per route and cached, so gathering them costs a dictionary lookup per request.

FastAPI 0.12x+ keeps an included router's routes as they were declared and describes
the included version (with the include's prefix and dependencies) in an "effective route
context" in the scope; when one is there, it is what the request really ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.types import Scope

if TYPE_CHECKING:
    from traffik.fastapi.connection_throttle import ConnectionThrottle

__all__ = ["THROTTLES_ATTRIBUTE", "RouteInfo", "route_info", "route_template", "route_throttles"]

THROTTLES_ATTRIBUTE = "__traffik_throttles__"
"""Set by `throttled` on the endpoints it wraps: the throttles it applies."""


class RouteInfo:
    """What is known of one route (or effective route context), found once.

    :ivar template: the route's path template (without the ``root_path``), if any.
    :ivar throttles: every throttle the route declares (dependency overrides aside).
    """

    __slots__ = ("route", "source", "template", "throttles")

    def __init__(self, source: Any, route: Any) -> None:
        self.source = source
        self.route = route
        template = getattr(source, "path", None)
        self.template: str | None = template if isinstance(template, str) and template else None
        self.throttles = _discover(source, route)

    def declared(self) -> tuple[ConnectionThrottle, ...]:
        """The throttles the route declares, except those the application overrides."""
        throttles = self.throttles
        if throttles:
            provider = getattr(self.route, "dependency_overrides_provider", None)
            overrides = getattr(provider, "dependency_overrides", None)
            if overrides:
                throttles = tuple(throttle for throttle in throttles if throttle not in overrides)
        return throttles


# id(route or effective context) -> what is known of it. Bounded by the number of routes;
# the entry keeps its object alive, so that the id cannot be reused by another.
_route_cache: dict[int, RouteInfo] = {}
_MAX_CACHED_ROUTES = 10_000


def _info(scope: Scope, route: Any) -> RouteInfo:
    source = route
    fastapi_scope = scope.get("fastapi")
    if fastapi_scope:
        # FastAPI's effective route context for an included route, when there is one.
        context = fastapi_scope.get("effective_route_context")
        if context is not None and getattr(context, "original_route", None) is route:
            source = context
    info = _route_cache.get(id(source))
    if info is None or info.source is not source:
        info = RouteInfo(source, route)
        if len(_route_cache) >= _MAX_CACHED_ROUTES:
            _route_cache.clear()  # routes made on the fly; found again when next used
        _route_cache[id(source)] = info
    return info


def route_info(scope: Scope) -> RouteInfo | None:
    """What is known of the route the router matched, or None if none matched."""
    route = scope.get("route")
    return None if route is None else _info(scope, route)


def route_template(scope: Scope) -> str | None:
    """The matched route's path template (``/items/{item_id}``), or None if none matched."""
    route = scope.get("route")
    if route is None:
        return None
    template = _info(scope, route).template
    if template is None:
        return None
    root_path = scope.get("root_path")
    return root_path + template if root_path else template


def route_throttles(scope: Scope) -> tuple[ConnectionThrottle, ...]:
    """The throttles the matched route declares, except those holding a slot until the
    request ends (a concurrency limit is decided by its own call, which releases it)."""
    route = scope.get("route")
    if route is None:
        return ()
    return _info(scope, route).declared()


def _discover(source: Any, route: Any) -> tuple[ConnectionThrottle, ...]:
    from traffik.fastapi.connection_throttle import ConnectionThrottle

    found: dict[int, ConnectionThrottle] = {}

    def visit(dependant: Any) -> None:
        for sub in getattr(dependant, "dependencies", ()):
            call = getattr(sub, "call", None)
            if isinstance(call, ConnectionThrottle) and not call.holds:
                found.setdefault(id(call), call)
            visit(sub)

    visit(getattr(source, "dependant", None))
    endpoint = getattr(source, "endpoint", None) or getattr(route, "endpoint", None)
    for throttle in getattr(endpoint, THROTTLES_ATTRIBUTE, ()):
        if not throttle.holds:
            found.setdefault(id(throttle), throttle)
    return tuple(found.values())

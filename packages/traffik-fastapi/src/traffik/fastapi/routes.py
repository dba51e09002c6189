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
    from traffik.fastapi.throttle import BaseHTTPThrottle

__all__ = ["THROTTLES_ATTRIBUTE", "route_template", "route_throttles"]

THROTTLES_ATTRIBUTE = "__traffik_throttles__"
"""Set by `throttled` on the endpoints it wraps: the throttles it applies."""

# id(route or effective context) -> (that object, its throttles). Bounded by the number
# of routes; the object is kept so that its id cannot be reused by another.
_route_cache: dict[int, tuple[object, tuple[BaseHTTPThrottle, ...]]] = {}
_MAX_CACHED_ROUTES = 10_000


def _effective(scope: Scope, route: Any) -> Any:
    """The effective route context FastAPI ran for an included route, else the route."""
    fastapi_scope = scope.get("fastapi")
    if fastapi_scope:
        context = fastapi_scope.get("effective_route_context")
        if context is not None and getattr(context, "original_route", None) is route:
            return context
    return route


def route_template(scope: Scope) -> str | None:
    """The matched route's path template (``/items/{item_id}``), or None if none matched."""
    route = scope.get("route")
    if route is None:
        return None
    template = getattr(_effective(scope, route), "path", None)
    if not isinstance(template, str) or not template:
        return None
    root_path = scope.get("root_path")
    return root_path + template if root_path else template


def route_throttles(scope: Scope) -> tuple[BaseHTTPThrottle, ...]:
    """The throttles the matched route declares, except those holding a slot until the
    request ends (a concurrency limit is decided by its own call, which releases it)."""
    route = scope.get("route")
    if route is None:
        return ()
    source = _effective(scope, route)
    cached = _route_cache.get(id(source))
    if cached is None or cached[0] is not source:
        cached = (source, _discover(source, route))
        if len(_route_cache) >= _MAX_CACHED_ROUTES:
            _route_cache.clear()  # routes made on the fly; found again when next used
        _route_cache[id(source)] = cached
    throttles = cached[1]
    if throttles:
        provider = getattr(route, "dependency_overrides_provider", None)
        overrides = getattr(provider, "dependency_overrides", None)
        if overrides:
            throttles = tuple(throttle for throttle in throttles if throttle not in overrides)
    return throttles


def _discover(source: Any, route: Any) -> tuple[BaseHTTPThrottle, ...]:
    from traffik.fastapi.throttle import BaseHTTPThrottle

    found: dict[int, BaseHTTPThrottle] = {}

    def visit(dependant: Any) -> None:
        for sub in getattr(dependant, "dependencies", ()):
            call = getattr(sub, "call", None)
            if isinstance(call, BaseHTTPThrottle) and not call.holds:
                found.setdefault(id(call), call)
            visit(sub)

    visit(getattr(source, "dependant", None))
    endpoint = getattr(source, "endpoint", None) or getattr(route, "endpoint", None)
    for throttle in getattr(endpoint, THROTTLES_ATTRIBUTE, ()):
        if not throttle.holds:
            found.setdefault(id(throttle), throttle)
    return tuple(found.values())

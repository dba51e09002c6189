"""When a throttle applies: `Rule` (it applies only to matching requests) and `Bypass`
(matching requests skip it).

A rule matches a request when its path pattern, its methods and its predicate all match;
a part left out matches everything. Path patterns are compiled once, at construction:

* a ``re.Pattern``: a regular expression, matched at the start of the path;
* a string containing ``*``: a glob over whole segments, matched against the whole path:
  ``*`` is one segment (``/users/*/posts``), ``**`` any number of them (``/api/**``);
* any other string: a regular expression matched at the start of the path, so
  ``"/api/"`` is a prefix (as in traffik 1.x).

The path is the one the application routes on: ``scope["path"]`` without the
``root_path`` the application is mounted under.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from starlette.requests import HTTPConnection
from starlette.types import Scope

from traffik.callbacks import EMPTY_CONTEXT, arguments_taken
from traffik.exceptions import ConfigurationError
from traffik.fastapi.methods import HTTP_METHODS

__all__ = [
    "HTTP_METHODS",
    "Bypass",
    "PathPattern",
    "Predicate",
    "Rule",
    "compile_path",
    "route_path",
]

Predicate = (
    Callable[[HTTPConnection], Awaitable[bool] | bool]
    | Callable[[HTTPConnection, Mapping[str, Any]], Awaitable[bool] | bool]
)
"""``(connection) -> bool`` or, as in traffik 1.x, ``(connection, context) -> bool``;
sync or async. ``context`` is the throttle's context (a `MiddlewareThrottle`'s, in the
middleware)."""

_PREDICATE_FORMS: Final = (
    "async def predicate(connection) -> bool",
    "async def predicate(connection, context) -> bool  (traffik 1.x)",
)

PathPattern = str | re.Pattern[str]


def compile_path(pattern: PathPattern) -> re.Pattern[str]:
    """Compile a path pattern (see the module docstring); ConfigurationError if it cannot."""
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str) or not pattern:
        raise ConfigurationError(f"A path pattern must be a non-empty string, got {pattern!r}")
    if "*" in pattern:
        parts = []
        for index, piece in enumerate(pattern.split("**")):
            if index:
                parts.append(".*")
            parts.append("[^/]*".join(re.escape(segment) for segment in piece.split("*")))
        return re.compile("".join(parts) + r"\Z")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigurationError(f"Path pattern {pattern!r} does not compile: {exc}") from None


def compile_methods(methods: Iterable[str] | None) -> frozenset[str] | None:
    if methods is None:
        return None
    if isinstance(methods, str):
        methods = (methods,)
    compiled = set()
    for method in methods:
        name = method.upper() if isinstance(method, str) else method
        if name not in HTTP_METHODS:
            raise ConfigurationError(
                f"Unknown HTTP method {method!r}; use any of {', '.join(sorted(HTTP_METHODS))}"
            )
        compiled.add(name)
    return frozenset(compiled)


def route_path(scope: Scope) -> str:
    """The path the application routes on: ``path`` without the ``root_path`` prefix."""
    path: str = scope["path"]
    root = scope.get("root_path")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


class Rule:
    """Apply a throttle only to requests matching ``path``, ``methods`` and ``predicate``.

    :param path: a path pattern (module docstring); None matches every path.
    :param methods: HTTP methods (any case); None matches every method.
    :param predicate: ``(connection) -> bool`` or ``(connection, context) -> bool``, sync
        or async; None matches every request. A signature fitting neither is refused.
    """

    __slots__ = ("_with_context", "methods", "path", "pattern", "predicate")

    #: Whether a match skips the throttle (`Bypass`) rather than enables it.
    bypass: bool = False

    def __init__(
        self,
        path: PathPattern | None = None,
        *,
        methods: Iterable[str] | None = None,
        predicate: Predicate | None = None,
    ) -> None:
        self.path = path
        self.pattern = None if path is None else compile_path(path)
        self.methods = compile_methods(methods)
        #: Whether the predicate takes the context after the connection (decided here).
        self._with_context = predicate is not None and (
            arguments_taken(predicate, (1, 2), "A rule's predicate", _PREDICATE_FORMS) == 2
        )
        self.predicate = predicate

    def matches_request_line(self, method: str, path: str) -> bool:
        """The cheap part of the match: method and path."""
        methods = self.methods
        if methods is not None and method not in methods:
            return False
        pattern = self.pattern
        return pattern is None or pattern.match(path) is not None

    async def matches(
        self, connection: HTTPConnection, context: Mapping[str, Any] = EMPTY_CONTEXT
    ) -> bool:
        scope = connection.scope
        if not self.matches_request_line(scope.get("method", ""), route_path(scope)):
            return False
        return await self.predicate_allows(connection, context)

    async def predicate_allows(
        self, connection: HTTPConnection, context: Mapping[str, Any] = EMPTY_CONTEXT
    ) -> bool:
        """The predicate's part of the match (True without one); ``context`` goes to a
        predicate that takes it."""
        predicate = self.predicate
        if predicate is None:
            return True
        result = (
            predicate(connection, context)  # type: ignore[call-arg]
            if self._with_context
            else predicate(connection)  # type: ignore[call-arg]
        )
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    def __repr__(self) -> str:
        methods = sorted(self.methods) if self.methods is not None else None
        return (
            f"{type(self).__name__}(path={self.path!r}, methods={methods!r}, "
            f"predicate={self.predicate!r})"
        )


class Bypass(Rule):
    """Skip a throttle for requests matching ``path``, ``methods`` and ``predicate``."""

    __slots__ = ()

    bypass = True


async def rules_allow(
    rules: tuple[Rule, ...],
    connection: HTTPConnection,
    context: Mapping[str, Any] = EMPTY_CONTEXT,
) -> bool:
    """Whether a throttle with ``rules`` applies: no `Bypass` matches and every `Rule` does.

    ``rules`` is ordered as `order_rules` leaves it, cheapest decisions first; ``context``
    (the throttle's) goes to predicates that take it.
    """
    for rule in rules:
        if await rule.matches(connection, context) == rule.bypass:
            return False
    return True


def order_rules(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    """Bypasses first, and rules without a predicate before those with one."""
    checked = []
    for rule in rules:
        if not isinstance(rule, Rule):
            raise ConfigurationError(f"rules must be Rule or Bypass instances, got {rule!r}")
        checked.append(rule)
    return tuple(sorted(checked, key=lambda rule: (not rule.bypass, rule.predicate is not None)))

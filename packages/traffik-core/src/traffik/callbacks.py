"""The user's functions, called the way they were written.

The functions a throttle calls with a connection (identifier, rate, cost, params, and
the predicates of rules) may take ``(connection)`` or, as in traffik 1.x,
``(connection, context)``. Each is inspected once, when it is given: one that cannot
take either form is refused with a `ConfigurationError` showing the forms it may have;
one that can gets a caller chosen then, so a request pays for no inspection.

* Positional parameters decide: a function gets as many of the arguments as it can
  take, so ``(connection, context=None)`` and ``(*args)`` get the context too.
* A keyword-only parameter without a default can never be given: refused.
* Sync functions are accepted; a result that is awaitable is awaited.
* A callable whose signature cannot be read (some builtins and C functions) is called
  with the connection alone. ``functools.partial`` objects have a signature, and are
  checked like functions.

``context`` is the throttle's ``context`` mapping (an empty mapping for a core
`Throttle` or `Limiter`, which have none). The context given to a single call, as in
``await throttle(request, context={...})``, reaches ``handle_throttled`` only.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Protocol, TypeVar

from traffik.exceptions import ConfigurationError

__all__ = [
    "EMPTY_CONTEXT",
    "HasContext",
    "arguments_taken",
    "connection_function",
    "describe",
    "is_async",
]

C = TypeVar("C")
T = TypeVar("T")

EMPTY_CONTEXT: Final[Mapping[str, Any]] = MappingProxyType({})
"""The context of a throttle that has none."""

_POSITIONAL: Final = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class HasContext(Protocol):
    """What holds the ``context`` a 1.x-style function receives: the throttle."""

    @property
    def context(self) -> Mapping[str, Any]: ...


def describe(function: object) -> str:
    """``name(signature)`` of ``function`` for messages, as far as it can be read."""
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", None)
    if name is None:
        name = repr(function)
    try:
        return f"{name}{inspect.signature(function)}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(name)


def arguments_taken(
    function: object, counts: Sequence[int], what: str, forms: Sequence[str]
) -> int:
    """How many positional arguments to call ``function`` with: the largest of ``counts``
    it can take (``counts[0]`` when its signature cannot be read).

    :param what: names the function in the error, e.g. ``"the rate function of 'api'"``.
    :param forms: the accepted forms, shown in the error.
    :raises ConfigurationError: when it can take none of ``counts``.
    """
    if not callable(function):
        raise _refusal(function, what, forms)
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin or C function: nothing to read
        return counts[0]
    required = 0
    most = 0
    unbounded = False
    for parameter in signature.parameters.values():
        kind = parameter.kind
        if kind in _POSITIONAL:
            most += 1
            if parameter.default is parameter.empty:
                required += 1
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            unbounded = True
        elif kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is parameter.empty:
            raise _refusal(function, what, forms)  # we never pass keywords
    fitting = [n for n in counts if required <= n and (unbounded or n <= most)]
    if not fitting:
        raise _refusal(function, what, forms)
    return max(fitting)


def is_async(function: object) -> bool:
    """Whether calling ``function`` surely returns an awaitable (an ``async def``, a
    partial of one, or an object whose ``__call__`` is one)."""
    if inspect.iscoroutinefunction(function):
        return True
    # An instance's __call__ is looked up on its class, as a call looks it up.
    call = inspect.getattr_static(type(function), "__call__", None)
    return call is not None and inspect.iscoroutinefunction(call)


def connection_function(
    function: Callable[..., Any], owner: HasContext, what: str, name: str
) -> Callable[[C], Awaitable[T]]:
    """An async function of the connection calling ``function`` as it was written:
    ``function(connection)`` or ``function(connection, owner.context)``.

    ``function`` itself when it is an ``async def`` of the connection, so the common
    case costs nothing. ``owner.context`` is read at each call (a subclass may set it
    after this runs).

    :param what: names the function in errors (``"The rate function of throttle 'api'"``).
    :param name: the parameter's name in the forms shown (``"rate"``).
    """
    forms = (
        f"async def {name}(connection)",
        f"async def {name}(connection, context)  (traffik 1.x)",
    )
    count = arguments_taken(function, (1, 2), what, forms)
    if is_async(function):
        if count == 1:
            return function

        def with_context(connection: C) -> Awaitable[T]:
            result: Awaitable[T] = function(connection, owner.context)
            return result

        return with_context

    # Maybe sync: await the result only when it is awaitable.
    async def awaited(connection: C) -> T:
        result = function(connection) if count == 1 else function(connection, owner.context)
        if inspect.isawaitable(result):
            result = await result
        return result  # type: ignore[no-any-return]

    return awaited


def _refusal(function: object, what: str, forms: Sequence[str]) -> ConfigurationError:
    shown = describe(function) if callable(function) else repr(function)
    expected = "\n    ".join(forms)
    return ConfigurationError(f"{what} must take one of:\n    {expected}\ngot {shown}")

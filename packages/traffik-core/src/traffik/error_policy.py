"""What a throttle does when deciding fails (``on_error``).

* ``"allow"`` (the default): let the request through; the API stays up.
* ``"throttle"``: refuse it, asking the client to retry after a second.
* ``"raise"``: raise `BackendError` (or the original `TraffikError`).
* an async handler: receives an `ErrorContext` and returns the seconds to wait
  (0 or less lets the request through) or a `Decision`.

A throttle's own setting overrides its backend's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from traffik.decision import Decision
from traffik.exceptions import ConfigurationError

if TYPE_CHECKING:
    from traffik.backends.base import ThrottleBackend
    from traffik.rates import Rate

__all__ = ["ON_ERROR_POLICIES", "ErrorContext", "ErrorHandler", "OnError", "validate_on_error"]


@dataclass(frozen=True, slots=True)
class ErrorContext:
    """Everything known about a failed check, handed to an ``on_error`` handler.

    Fields not yet known when the failure happened (say, the key when the identifier
    failed) are ``None``.
    """

    exception: BaseException
    connection: Any
    key: str | None
    cost: int | None
    rate: Rate | None
    backend: ThrottleBackend | None
    throttle: Any


ErrorHandler = Callable[[ErrorContext], Awaitable[float | Decision]]
OnError = Literal["allow", "throttle", "raise"] | ErrorHandler

ON_ERROR_POLICIES: Final = ("allow", "throttle", "raise")


def validate_on_error(value: object, *, allow_none: bool = True) -> OnError | None:
    """Return ``value`` if it is a valid ``on_error`` setting, else raise ConfigurationError."""
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        if value in ON_ERROR_POLICIES:
            return value  # type: ignore[return-value]  # narrowed by the membership test
        raise ConfigurationError(
            f"on_error must be one of {', '.join(map(repr, ON_ERROR_POLICIES))} "
            f"or an async callable, got {value!r}"
        )
    if callable(value):
        return value
    raise ConfigurationError(
        f"on_error must be one of {', '.join(map(repr, ON_ERROR_POLICIES))} "
        f"or an async callable, got {value!r}"
    )

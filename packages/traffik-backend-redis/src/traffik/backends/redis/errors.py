"""What a failed call to Redis becomes: `BackendTimeoutError`, `BackendConnectionError`
or `BackendError`, each carrying the original exception as ``.cause``."""

from __future__ import annotations

import asyncio

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from traffik.exceptions import BackendConnectionError, BackendError, BackendTimeoutError

__all__ = ["TRANSLATED", "timed_out", "translate"]

TRANSLATED = (
    BackendError,
    RedisError,
    RedisClusterException,
    OSError,
    TimeoutError,
    asyncio.TimeoutError,
)
"""The exceptions `translate` turns into backend errors (all others propagate)."""


def timed_out(
    target: str, timeout: float, cause: BaseException | None, *, waiting: bool = False
) -> BackendTimeoutError:
    """The error of a call that Redis left unanswered (``waiting``: while it waited its turn)."""
    message = f"Redis at {target} did not answer within {timeout:g}s"
    if waiting:
        message += " (a call timed out while this one waited for its turn)"
    error = BackendTimeoutError(message, cause=cause)
    error.__cause__ = cause
    return error


def translate(exc: BaseException, target: str, timeout: float) -> BackendError:
    """A backend error of its own for one caller, ``exc`` as its ``.cause`` and ``__cause__``.

    A `BackendTimeoutError` raised by the silence watchdog is copied, so that callers
    sharing one round trip never share (and mutate) one exception object.
    """
    error: BackendError
    if isinstance(exc, BackendError):
        error = type(exc)(str(exc), cause=exc.cause)
        error.__cause__ = exc.__cause__
        return error
    if isinstance(exc, (RedisTimeoutError, TimeoutError, asyncio.TimeoutError)):
        return timed_out(target, timeout, exc)
    if isinstance(exc, (RedisConnectionError, OSError)):
        error = BackendConnectionError(f"Could not reach Redis at {target}: {exc}", cause=exc)
    else:
        error = BackendError(f"Redis at {target} failed: {exc}", cause=exc)
    error.__cause__ = exc
    return error

"""Bounding how long an awaitable may take, the same way on Python 3.10 and later."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

from traffik.exceptions import BackendTimeoutError

__all__ = ["within"]

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float, what: str = "the backend") -> T:
    """Await ``awaitable``, raising `BackendTimeoutError` if it takes more than ``seconds``.

    The awaited work is cancelled when time runs out, so nothing keeps running behind a
    request that has moved on.
    """
    try:
        if sys.version_info >= (3, 11):
            async with asyncio.timeout(seconds):
                return await awaitable
        return await asyncio.wait_for(awaitable, seconds)
    except (asyncio.TimeoutError, TimeoutError) as exc:
        raise BackendTimeoutError(
            f"{what} did not answer within {seconds * 1000:.0f} ms", cause=exc
        ) from exc

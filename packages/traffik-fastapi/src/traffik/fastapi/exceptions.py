"""The HTTP 429 exception."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from starlette.exceptions import HTTPException

from traffik.decision import Decision
from traffik.exceptions import TraffikError

__all__ = ["ConnectionThrottled", "retry_after_header", "retry_after_seconds"]


def retry_after_seconds(wait: float) -> int | None:
    """What a refused client is told to wait, in whole seconds: ``wait`` rounded up, and
    at least 1 whatever was decided (0, a negative or NaN wait from an ``on_error``
    handler included: "retry at once" invites the retry storm a limit exists to stop).

    None when waiting cannot help (an infinite wait): a client must not be told a time.
    """
    if wait == math.inf:
        return None
    if not wait > 1:  # also NaN
        return 1
    return math.ceil(wait) if wait < 1e15 else 10**15


def retry_after_header(wait: float) -> str | None:
    """``Retry-After`` for a refusal: `retry_after_seconds` as text (None: no header)."""
    seconds = retry_after_seconds(wait)
    return None if seconds is None else str(seconds)


class ConnectionThrottled(HTTPException, TraffikError):
    """Raised when a connection is over its limit: HTTP 429 with ``Retry-After``.

    ``wait_period`` is the wait in seconds (as decided, not rounded); ``violated_policies``
    the uids of the throttles that refused. FastAPI renders it as JSON
    ``{"detail": ...}``; on plain Starlette register
    `traffik.fastapi.throttled_exception_handler` for the same body, or
    `traffik.fastapi.throttled_problem_handler` for ``application/problem+json``.
    """

    def __init__(
        self,
        wait_period: float,
        *,
        status_code: int = 429,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
        decision: Decision | None = None,
        violated_policies: Sequence[str] = (),
    ) -> None:
        retry_after = retry_after_header(wait_period)
        if detail is None:
            if retry_after is None:
                detail = "Too many requests. This request exceeds the limit and cannot succeed."
            else:
                unit = "second" if retry_after == "1" else "seconds"
                detail = f"Too many requests. Retry in {retry_after} {unit}."
        all_headers = dict(headers or {})
        if retry_after is not None and not any(
            name.lower() == "retry-after" for name in all_headers
        ):
            all_headers["Retry-After"] = retry_after
        super().__init__(status_code=status_code, detail=detail, headers=all_headers)
        self.wait_period = wait_period
        self.decision = decision
        self.violated_policies = list(violated_policies)

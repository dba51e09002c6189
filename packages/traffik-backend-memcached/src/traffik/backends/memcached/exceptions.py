"""Errors of the memcached backend (all `traffik.exceptions.BackendError`)."""

from __future__ import annotations

from traffik.exceptions import BackendError

__all__ = ["ContentionError"]


class ContentionError(BackendError):
    """A key changed under every compare-and-swap attempt, ``attempts`` times in a row.

    Raised when the retries (``max_retries``) run out. Like any backend error, a throttle
    routes it through its ``on_error`` policy.
    """

    def __init__(self, key: bytes, attempts: int) -> None:
        super().__init__(
            f"memcached key {key.decode('ascii', 'replace')!r} changed under each of "
            f"{attempts} compare-and-swap attempts (max_retries={attempts - 1} ran out); "
            "raise max_retries or spread the load over more keys"
        )
        self.key = key
        self.attempts = attempts

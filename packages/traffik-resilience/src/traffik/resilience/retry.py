"""Retrying a failed store call: how many times, after how long, for which errors."""

from __future__ import annotations

from dataclasses import dataclass, field

from traffik.exceptions import BackendError, ConfigurationError
from traffik.resilience.backoff import Backoff, ExponentialBackoff

__all__ = ["DEFAULT_RETRY_ON", "Retry"]

DEFAULT_RETRY_ON: tuple[type[BaseException], ...] = (
    BackendError,
    ConnectionError,
    OSError,
    TimeoutError,
)
"""Errors worth retrying: the store failed or did not answer. Bugs are not retried."""


@dataclass(frozen=True)
class Retry:
    """Retry a failed call up to ``max_retries`` times, waiting ``backoff.delay(n)`` before retry n.

    Retries run inside the check's time budget (the backend's ``timeout``): when the budget
    runs out, the pending retry is abandoned with it.
    """

    max_retries: int = 2
    backoff: Backoff = field(
        default_factory=lambda: ExponentialBackoff(initial=0.005, max_delay=0.05)
    )
    retry_on: tuple[type[BaseException], ...] = DEFAULT_RETRY_ON

    def __post_init__(self) -> None:
        retries = self.max_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigurationError(f"max_retries must be a whole number >= 0, got {retries!r}")
        if not callable(getattr(self.backoff, "delay", None)):
            raise ConfigurationError(
                f"backoff must have a delay(attempt) method, got {self.backoff!r}"
            )
        if not all(
            isinstance(kind, type) and issubclass(kind, BaseException) for kind in self.retry_on
        ):
            raise ConfigurationError(f"retry_on must be exception types, got {self.retry_on!r}")

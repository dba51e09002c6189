"""Every error Traffik raises derives from `TraffikError`.

::

    TraffikError
    ├── ConfigurationError (also ValueError)   bad input, raised at construction
    ├── BackendError (.cause)                   the store failed
    │   ├── BackendConnectionError              ... could not be reached
    │   └── BackendTimeoutError (also TimeoutError)  ... did not answer in time
    ├── RateLimitExceeded (.decision, .retry_after)  a request was over its limit
    └── QuotaError                              misuse of a quota context
        ├── QuotaAppliedError                   ... already consumed
        └── QuotaCancelledError                 ... already cancelled
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from traffik._aliases import Gone, Moved, forward

if TYPE_CHECKING:
    from traffik.decision import Decision
    from traffik.fastapi import ConnectionThrottled as ConnectionThrottled

__all__ = [
    "BackendConnectionError",
    "BackendError",
    "BackendTimeoutError",
    "ConfigurationError",
    "QuotaAppliedError",
    "QuotaCancelledError",
    "QuotaError",
    "RateLimitExceeded",
    "TraffikError",
]


class TraffikError(Exception):
    """Base class of every Traffik error."""


class ConfigurationError(TraffikError, ValueError):
    """Invalid configuration; raised as soon as it can be known, naming the bad value."""


class BackendError(TraffikError):
    """A backend operation failed. ``cause`` is the underlying exception, if any."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class BackendConnectionError(BackendError):
    """The backend's store could not be reached."""


class BackendTimeoutError(BackendError, TimeoutError):
    """The backend's store did not answer within the time budget."""


class RateLimitExceeded(TraffikError):
    """A request was refused by a limit. ``retry_after`` is in seconds (may be infinite)."""

    def __init__(self, decision: Decision, message: str | None = None) -> None:
        self.decision = decision
        self.retry_after = decision.retry_after
        super().__init__(message or f"Rate limit exceeded; retry after {decision.retry_after:.3f}s")


class QuotaError(TraffikError):
    """A quota context (`traffik.quota_context`) was used in a way it cannot be."""


class QuotaAppliedError(QuotaError):
    """The quota context was already consumed (applied, or merged into its parent)."""


class QuotaCancelledError(QuotaError):
    """The quota context was cancelled."""


# traffik 1.x's names (`traffik._aliases`): a kept one warns, the others say what to use.
_NO_LOCKS = Gone("traffik 2 takes no locks: each backend applies a decision atomically")
forward(
    __name__,
    globals(),
    {
        "TraffikException": Moved(__name__, name="TraffikError"),
        "ConnectionThrottled": Moved("traffik.fastapi", extra="fastapi"),
        "LockError": _NO_LOCKS,
        "LockAcquisitionError": _NO_LOCKS,
        "LockReleaseError": _NO_LOCKS,
        "LockTimeoutError": _NO_LOCKS,
        "LockPoolError": _NO_LOCKS,
    },
    alias_module=False,
)

if TYPE_CHECKING:
    TraffikException = TraffikError

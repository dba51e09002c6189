"""Traffik resilience: circuit breakers, retries with backoff, and backend failover."""

from traffik.resilience._version import __version__
from traffik.resilience.backoff import (
    Backoff,
    ConstantBackoff,
    ExponentialBackoff,
    Jitter,
    LinearBackoff,
    LogarithmicBackoff,
)
from traffik.resilience.breaker import CircuitBreaker, CircuitOpenError, CircuitState
from traffik.resilience.failover import DEFAULT_TIMEOUT, FailoverBackend, ResilientBackend
from traffik.resilience.retry import DEFAULT_RETRY_ON, Retry

__all__ = [
    "DEFAULT_RETRY_ON",
    "DEFAULT_TIMEOUT",
    "Backoff",
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "ConstantBackoff",
    "ExponentialBackoff",
    "FailoverBackend",
    "Jitter",
    "LinearBackoff",
    "LogarithmicBackoff",
    "ResilientBackend",
    "Retry",
    "__version__",
]

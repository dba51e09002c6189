"""traffik 1.x's ``traffik.error_handlers``, kept as an alias (see `traffik._aliases`).

1.x built failover and retries as ``on_error`` handlers; traffik 2 builds them into the
backend (`traffik.resilience.FailoverBackend`, `ResilientBackend` with a `Retry`), so
``on_error`` applies only once the fallback has failed too. Those 1.x names raise an
ImportError that says so; the circuit breaker is kept.
"""

from typing import TYPE_CHECKING

from traffik._aliases import Gone, Moved, forward

if TYPE_CHECKING:
    from traffik.resilience import CircuitBreaker as CircuitBreaker
    from traffik.resilience import CircuitState as CircuitState

_FALLBACK = Gone(
    "failover is a backend: backend=FailoverBackend(primary, fallback, "
    "breaker=CircuitBreaker(...), retry=Retry(...)) from traffik.resilience "
    "(pip install 'traffik[resilience]')"
)

forward(
    __name__,
    globals(),
    {
        "CircuitBreaker": Moved("traffik.resilience", extra="resilience"),
        "CircuitState": Moved("traffik.resilience", extra="resilience"),
        "failover": _FALLBACK,
        "fallback": _FALLBACK,
        "backend_fallback": _FALLBACK,
        "circuit_breaker_fallback": _FALLBACK,
        "retry": Gone(
            "retries are part of the backend: backend=ResilientBackend(primary, "
            "retry=Retry(max_retries=..., backoff=ExponentialBackoff(...))) from "
            "traffik.resilience (pip install 'traffik[resilience]')"
        ),
    },
)

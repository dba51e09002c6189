"""traffik 1.x's ``traffik.types`` (``traffik.typing`` in 1.2), kept as an alias.

The sentinel and ``Rate`` are kept; 1.x's callable types took milliseconds and lock
settings, which traffik 2 does not have, so those raise an ImportError naming the 2.x
type (see `traffik._aliases`).
"""

from typing import TYPE_CHECKING

from traffik._aliases import Gone, Moved, forward

if TYPE_CHECKING:
    from traffik import EXEMPTED as EXEMPTED
    from traffik import Rate as Rate

_NO_LOCKS = Gone(
    "traffik 2 takes no locks: each backend applies a decision atomically (one script on "
    "Redis, compare-and-swap on memcached)"
)
_CONNECTION = Gone(
    "use starlette.requests.HTTPConnection, or traffik.throttle.Throttle's type parameter"
)

LEGACY_NAMES: dict[str, Moved | Gone] = {
    "EXEMPTED": Moved("traffik"),
    "Rate": Moved("traffik"),
    "UNLIMITED": Gone("an unlimited rate is Rate() (from traffik import Rate)"),
    "StrategyStat": Gone(
        "throttle.stat(connection) returns a traffik.ThrottleStat (key, rate, strategy, "
        "limit, remaining, reset_after, retry_after), times in seconds, not wait_ms"
    ),
    "WaitPeriod": Gone("waits are float seconds, not milliseconds (Decision.retry_after)"),
    "ConnectionIdentifier": Gone(
        "an identifier is typed traffik.fastapi.HTTPIdentifier: async (connection) -> str "
        "or EXEMPTED"
    ),
    "ConnectionThrottledHandler": Gone(
        "a refusal handler taking a Decision is typed traffik.fastapi.ThrottledHandler: "
        "(connection, decision, throttle, context), the wait in decision.retry_after (seconds)"
    ),
    "ThrottleErrorHandler": Gone(
        "an on_error handler is typed traffik.ErrorHandler: async (ErrorContext) -> a "
        "wait in seconds or a traffik.Decision"
    ),
    "ExceptionHandler": Gone("use Starlette's exception handlers (app.add_exception_handler)"),
    "Dependency": Gone("a throttle is itself the dependency: Depends(throttle)"),
    "Stringable": Gone("keys and identifiers are str"),
    "Matchable": Gone("a rule's path is typed traffik.fastapi.rules.PathPattern"),
    "TrustedProxy": Gone("proxies are named as strings: traffik.remote_address(['10.0.0.0/8'])"),
    "Network": Gone("proxies are named as strings: traffik.remote_address(['10.0.0.0/8'])"),
    "HTTPConnectionT": _CONNECTION,
    "HTTPConnectionTcon": _CONNECTION,
    "LockConfig": _NO_LOCKS,
    "AsyncLock": _NO_LOCKS,
}

forward(__name__, globals(), LEGACY_NAMES)

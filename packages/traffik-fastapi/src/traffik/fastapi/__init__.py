"""Traffik for Starlette and FastAPI.

* Throttles: `HTTPThrottle` (alias `RequestThrottle`), `ConcurrencyLimit`.
* Ways in: ``Depends(throttle)``, `throttled`, `ThrottleMiddleware` + `MiddlewareThrottle`,
  ``await throttle.hit(request)`` / ``await throttle(request)``; ``Depends(throttle.decision)``
  for the `Decision`.
* When they apply: `Rule`, `Bypass`, `ThrottleRegistry` / `GLOBAL_REGISTRY`.
* Who a client is: `remote_address` (trusted proxies), `header_identifier`,
  `user_identifier`.
* What clients see: `ConnectionThrottled` (429), rate-limit headers
  (`set_default_headers`), custom headers (`Header`, `Headers`, `DEFAULT_HEADERS_ALWAYS`,
  `DEFAULT_HEADERS_THROTTLED`), `throttled_exception_handler`, `throttled_problem_handler`.
* What happened: `is_throttled`, `get_wait` (ms) / `get_retry_after` (s), `get_decision`.
* For other kinds of connection throttle (traffik-websocket): `ConnectionThrottle`,
  `enforce` / `decide_recorded` (decide and record a connection's throttles),
  `RequestLedger` at ``scope[LEDGER_KEY]``.
"""

from traffik.fastapi._version import __version__
from traffik.fastapi.concurrency import ConcurrencyLimit
from traffik.fastapi.connection_throttle import ConnectionThrottle
from traffik.fastapi.custom_headers import (
    DEFAULT_HEADERS_ALWAYS,
    DEFAULT_HEADERS_THROTTLED,
    Header,
    Headers,
    HeaderStat,
)
from traffik.fastapi.decorators import throttled
from traffik.fastapi.enforcement import decide_recorded, enforce
from traffik.fastapi.exceptions import (
    ConnectionThrottled,
    retry_after_header,
    retry_after_seconds,
)
from traffik.fastapi.handlers import (
    QUOTA_EXCEEDED,
    raise_throttled,
    resolve_refusal_handler,
    throttled_exception_handler,
    throttled_problem_handler,
    throttled_response,
)
from traffik.fastapi.headers import (
    HEADER_NAMES,
    HeaderSpec,
    default_headers,
    set_default_headers,
)
from traffik.fastapi.identifiers import HTTPIdentifier, header_identifier, user_identifier
from traffik.fastapi.ledger import (
    LEDGER_KEY,
    RequestLedger,
    get_decision,
    get_retry_after,
    get_wait,
    is_throttled,
)
from traffik.fastapi.middleware import MiddlewareThrottle, ThrottleMiddleware
from traffik.fastapi.proxies import (
    ProxyHeader,
    TrustedProxies,
    get_remote_address,
    remote_address,
)
from traffik.fastapi.registry import GLOBAL_REGISTRY, ThrottleRegistry
from traffik.fastapi.rules import Bypass, Rule
from traffik.fastapi.throttle import (
    BaseHTTPThrottle,
    HTTPThrottle,
    RequestThrottle,
    ThrottledHandler,
)

__all__ = [
    "DEFAULT_HEADERS_ALWAYS",
    "DEFAULT_HEADERS_THROTTLED",
    "GLOBAL_REGISTRY",
    "HEADER_NAMES",
    "LEDGER_KEY",
    "QUOTA_EXCEEDED",
    "BaseHTTPThrottle",
    "Bypass",
    "ConcurrencyLimit",
    "ConnectionThrottle",
    "ConnectionThrottled",
    "HTTPIdentifier",
    "HTTPThrottle",
    "Header",
    "HeaderSpec",
    "HeaderStat",
    "Headers",
    "MiddlewareThrottle",
    "ProxyHeader",
    "RequestLedger",
    "RequestThrottle",
    "Rule",
    "ThrottleMiddleware",
    "ThrottleRegistry",
    "ThrottledHandler",
    "TrustedProxies",
    "__version__",
    "decide_recorded",
    "default_headers",
    "enforce",
    "get_decision",
    "get_remote_address",
    "get_retry_after",
    "get_wait",
    "header_identifier",
    "is_throttled",
    "raise_throttled",
    "remote_address",
    "resolve_refusal_handler",
    "retry_after_header",
    "retry_after_seconds",
    "set_default_headers",
    "throttled",
    "throttled_exception_handler",
    "throttled_problem_handler",
    "throttled_response",
    "user_identifier",
]

"""Traffik for Starlette and FastAPI: `HTTPThrottle` and the HTTP plumbing."""

from traffik.fastapi._version import __version__
from traffik.fastapi.exceptions import ConnectionThrottled, retry_after_header
from traffik.fastapi.handlers import throttled_exception_handler
from traffik.fastapi.proxies import (
    ProxyHeader,
    TrustedProxies,
    get_remote_address,
    remote_address,
)
from traffik.fastapi.throttle import HTTPThrottle, RequestThrottle, raise_throttled

__all__ = [
    "ConnectionThrottled",
    "HTTPThrottle",
    "ProxyHeader",
    "RequestThrottle",
    "TrustedProxies",
    "__version__",
    "get_remote_address",
    "raise_throttled",
    "remote_address",
    "retry_after_header",
    "throttled_exception_handler",
]

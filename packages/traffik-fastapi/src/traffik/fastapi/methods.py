"""HTTP methods as keys name them: a registered method by its name, any other as one.

A server hands the application whatever token the client sent as the method (uvicorn's h11
parser accepts any token), and a key per method would let a client open a fresh budget,
a fresh backend key and a fresh cache entry with every method it invents. So the methods
of RFC 9110 and PATCH (RFC 5789) keep keys of their own, and every other method — ``PURGE``,
WebDAV's ``PROPFIND``, ``get`` in lower case (methods are case-sensitive), ``X-ANYTHING`` —
shares one, `OTHER_METHOD`: all of one client's invented methods on a route draw from one
budget. They are still limited: leaving them out would let a client pass a middleware
limit by choosing its method.
"""

from __future__ import annotations

from typing import Final, overload

__all__ = ["HTTP_METHODS", "OTHER_METHOD", "key_method"]

HTTP_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
"""The registered methods that keep a key of their own (and that rules may name)."""

OTHER_METHOD: Final = "OTHER"
"""What every other method is called in keys."""


@overload
def key_method(method: str) -> str: ...
@overload
def key_method(method: None) -> None: ...
def key_method(method: str | None) -> str | None:
    """``method`` as keys name it: itself when registered, else `OTHER_METHOD`; no method
    (None or empty: a WebSocket scope) stays as it is."""
    if not method or method in HTTP_METHODS:
        return method
    return OTHER_METHOD

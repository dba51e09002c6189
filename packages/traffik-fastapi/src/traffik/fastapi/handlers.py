"""Rendering `ConnectionThrottled` as JSON on plain Starlette (FastAPI does it already)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from traffik.fastapi.exceptions import ConnectionThrottled

__all__ = ["throttled_exception_handler"]


async def throttled_exception_handler(request: Request, exc: Exception) -> Response:
    """``Starlette(exception_handlers={ConnectionThrottled: throttled_exception_handler})``."""
    assert isinstance(exc, ConnectionThrottled)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

"""Identifier results with a special meaning."""

from __future__ import annotations

from typing import Any, Final, final

__all__ = ["ANONYMOUS_IDENTIFIER", "EXEMPTED", "ExemptedType"]


@final
class ExemptedType:
    """The type of `EXEMPTED`: an identifier returning it bypasses limiting entirely."""

    _instance: ExemptedType | None = None

    def __new__(cls) -> ExemptedType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "EXEMPTED"

    def __reduce__(self) -> tuple[Any, ...]:
        return (ExemptedType, ())


EXEMPTED: Final = ExemptedType()
"""Return this from an identifier to let a request through without touching any backend."""

ANONYMOUS_IDENTIFIER: Final = "__anonymous__"
"""The identifier used when a connection has no client address."""

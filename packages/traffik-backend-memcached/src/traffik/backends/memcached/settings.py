"""The backend's settings, checked at construction: where memcached is, and numbers.

Every mistake fails with `ConfigurationError`, naming the value (a URL with its user
information hidden).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import aiomcache

from traffik.backends.memcached.connection import parse_address, parse_servers
from traffik.exceptions import ConfigurationError
from traffik.redaction import safe_repr

__all__ = ["addresses", "check_number"]


def addresses(
    url: str | None,
    servers: Sequence[str] | None,
    host: str | None,
    port: int | None,
    client: aiomcache.Client | None,
) -> list[tuple[str, int]]:
    """Where memcached is, from whichever of the ways to say it was used (only one)."""
    if servers is not None:
        if url is not None or host is not None or port is not None or client is not None:
            raise ConfigurationError(
                f"Give memcached either servers= ({safe_repr(servers)}) or "
                "url=/host=/port=/client=, not both"
            )
        return parse_servers(servers)
    if client is not None:
        if not isinstance(client, aiomcache.Client):
            raise ConfigurationError(f"client must be an aiomcache.Client, got {safe_repr(client)}")
        if url is not None or host is not None or port is not None:
            raise ConfigurationError("Give memcached either client= or url=/host=, not both")
        return [("<client>", 0)]
    return [parse_address(url, host, port)]


def check_number(
    name: str, value: object, *, minimum: float, whole: bool, inclusive: bool = True
) -> None:
    kinds = (int,) if whole else (int, float)
    ok = (
        not isinstance(value, bool)
        and isinstance(value, kinds)
        and math.isfinite(value)
        and (value >= minimum if inclusive else value > minimum)
    )
    if not ok:
        bound = f">= {minimum}" if inclusive else f"> {minimum}"
        kind = "a whole number" if whole else "a number"
        raise ConfigurationError(f"{name} must be {kind} {bound}, got {value!r}")

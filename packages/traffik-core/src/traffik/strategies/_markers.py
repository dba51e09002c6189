"""traffik 1.x's tier and priority written in the identity: ``"tier:premium:user:42"``.

In 1.x, `TieredRate` and `PriorityQueue` found the request's tier (priority) in the key,
after a marker (``"tier:"``, ``"priority:"``): identifiers returned
``f"tier:{user.tier}:user:{user.id}"``. traffik 2 takes them from ``params``; so that a
1.x configuration keeps its meaning, a throttle whose strategy has a ``marker`` reads the
identity too (`traffik.resolution`), when ``params`` name none:

* the marker counts at the start of the identity or after a ``:`` (a segment of its own:
  ``"frontier:5"`` names no tier); the value runs to the next ``:`` or the end;
* the value goes into ``params`` (``{"tier": "premium"}``), and the segment leaves the
  identity that keys the client (``"user:42"``), so one client has one budget whatever
  its tier or priority, exactly as with ``params`` — which is what lets a CRITICAL request
  pass where LOW ones are refused. An identity that is only the segment keeps it whole.

A value naming no configured tier or priority is decided with the default one, the least
privilege, as in 1.x; but never silently: a warning names it, once per name (bounded).
"""

from __future__ import annotations

from typing import Final

from traffik._logging import logger
from traffik.exceptions import ConfigurationError

__all__ = ["checked_marker", "split_marked", "warn_unknown"]

_MAX_WARNED: Final = 256
_warned: set[tuple[str, str]] = set()


def checked_marker(marker: object, what: str) -> str | None:
    """``marker`` ending in ``:`` (added, as 1.x did); None turns reading off."""
    if marker is None:
        return None
    if not isinstance(marker, str) or not marker.strip(":"):
        raise ConfigurationError(
            f"{what} marker must be a non-empty string such as 'tier:' (or None), got {marker!r}"
        )
    return marker if marker.endswith(":") else marker + ":"


def split_marked(identity: str, marker: str) -> tuple[str, str] | None:
    """``(identity without the marked segment, value)``, or None when no segment is
    marked (or its value is empty)."""
    start = 0
    while True:
        found = identity.find(marker, start)
        if found == -1:
            return None
        if found == 0 or identity[found - 1] == ":":
            break
        start = found + 1
    begin = found + len(marker)
    end = identity.find(":", begin)
    value = identity[begin:] if end == -1 else identity[begin:end]
    if not value:
        return None
    # A segment ending the identity goes with the ':' before it.
    rest = identity[: max(found - 1, 0)] if end == -1 else identity[:found] + identity[end + 1 :]
    return (rest or identity), value


def warn_unknown(what: str, value: object, known: object, default: object) -> None:
    """Say (once per value) that ``value`` names nothing configured, so ``default`` decides."""
    entry = (what, repr(value))
    if entry in _warned:
        return
    if len(_warned) >= _MAX_WARNED:
        return  # enough said: names from requests must not grow this without bound
    _warned.add(entry)
    logger.warning(
        "%s: %r is not one of %s; deciding with the default %r. Configure it, or fix the "
        "identifier or params that name it.",
        what,
        value,
        known,
        default,
    )

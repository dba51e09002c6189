"""Reading proxy headers: the hops they list, as the RFCs and the proxies write them.

* A header may arrive as several field lines (HAProxy adds a line of its own after the
  client's); they mean one list, in order (RFC 9110 §5.3). ASGI keeps each line apart in
  ``scope["headers"]``, and Starlette's ``headers.get`` returns only the first: `field_lines`
  reads them all.
* ``X-Forwarded-For``: a comma-separated list of addresses, each proxy appending the one it
  received the request from; a port may follow (``192.0.2.60:4711``, ``[2001:db8::1]:4711``).
* ``Forwarded`` (RFC 7239): comma-separated elements, one per hop, of ``;``-separated
  ``name=value`` pairs; the hop's address is its ``for=`` value, quoted when it holds a
  ``:`` (``for="[2001:db8::1]:4711"``). ``unknown`` and obfuscated names (``_hidden``) are
  no address.
* ``X-Real-IP``, ``CF-Connecting-IP``, ``True-Client-IP``: one address, which the proxy
  sets (replacing whatever the client sent).

Elements are split at every comma and pairs at every semicolon, quoted or not: no address
holds either, so a legitimate header splits the same way, and a client's own elements,
however crafted, stay on its side of the hops its proxies appended (see `hop_address`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Final

from starlette.types import Scope

__all__ = [
    "IPAddress",
    "field_lines",
    "forwarded_for",
    "hop_address",
    "ip_address",
    "list_elements",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_PORT_DIGITS: Final = frozenset("0123456789")


def field_lines(scope: Scope, name: bytes) -> list[str]:
    """Every field line of the header ``name`` (lower-case) in ``scope``, in order."""
    return [
        value.decode("latin-1")
        for key, value in scope.get("headers") or ()
        if key == name or key.lower() == name
    ]


def list_elements(lines: Sequence[str]) -> list[str]:
    """The elements of a comma-separated list sent as ``lines``, empty ones left out
    (RFC 9110 §5.6.1: a recipient ignores them)."""
    return [element for line in lines for part in line.split(",") if (element := part.strip())]


def forwarded_for(element: str) -> str | None:
    """The ``for=`` value of one ``Forwarded`` element, unquoted; None when the element
    has none, has several, or does not parse."""
    found: str | None = None
    for pair in element.split(";"):
        pair = pair.strip()
        if not pair:
            continue
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            return None
        if name.strip().lower() != "for":
            continue
        if found is not None:
            return None  # a parameter occurs at most once per element (RFC 7239 §4)
        value = value.strip()
        if value.startswith('"'):
            if len(value) < 2 or not value.endswith('"') or '"' in value[1:-1] or "\\" in value:
                return None
            value = value[1:-1]
        found = value
    return found


def hop_address(text: str) -> IPAddress | None:
    """The address of one hop (``192.0.2.60``, ``192.0.2.60:4711``, ``2001:db8::1``,
    ``[2001:db8::1]:4711``), IPv4-mapped IPv6 read as IPv4; None for anything else."""
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not _is_port(rest)):
            return None
        address = ip_address(host)
        return address if address is not None and ":" in host else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if not _is_port(":" + port):
            return None
        address = ip_address(host)
        return address if address is not None and address.version == 4 else None
    return ip_address(text)


def ip_address(text: str) -> IPAddress | None:
    """``text`` as an IP address (IPv4-mapped IPv6 as IPv4), or None. A zone (``%eth0``)
    is refused: it names an interface of the sender, never a client."""
    if "%" in text:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return mapped
    return address


def _is_port(text: str) -> bool:
    """Whether ``text`` is ``:`` and a port number."""
    return 2 <= len(text) <= 6 and text[0] == ":" and set(text[1:]) <= _PORT_DIGITS

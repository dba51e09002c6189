"""Client addresses, and when proxy headers may be believed.

A proxy header is only as trustworthy as whoever set it. Headers are believed only when
the socket peer is a configured trusted proxy; then the chain of ``Forwarded`` /
``X-Forwarded-For`` hops is walked from the right, skipping trusted proxies, and the
first untrusted hop is the client. A spoofed header from anyone else changes nothing.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from typing import Final, Literal

from starlette.requests import HTTPConnection

from traffik.exceptions import ConfigurationError
from traffik.identities import ANONYMOUS_IDENTIFIER

__all__ = ["ProxyHeader", "TrustedProxies", "get_remote_address", "remote_address"]

ProxyHeader = Literal["forwarded", "x-forwarded-for", "x-real-ip"]
PROXY_HEADERS: Final[tuple[ProxyHeader, ...]] = ("forwarded", "x-forwarded-for", "x-real-ip")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

logger = logging.getLogger("traffik.fastapi")


class TrustedProxies:
    """Which peers may set proxy headers, and which headers are read.

    :param proxies: addresses or networks (``"10.0.0.0/8"``, ``"127.0.0.1"``, ``"::1"``).
    :param headers: the headers to read, in order of preference.
    """

    __slots__ = ("headers", "networks")

    def __init__(
        self,
        proxies: Iterable[str],
        *,
        headers: Sequence[ProxyHeader] = ("forwarded", "x-forwarded-for", "x-real-ip"),
    ) -> None:
        if isinstance(proxies, str):
            proxies = [proxies]
        networks: list[Network] = []
        for proxy in proxies:
            try:
                networks.append(ipaddress.ip_network(proxy, strict=False))
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(f"Invalid trusted proxy {proxy!r}: {exc}") from None
        for header in headers:
            if header not in PROXY_HEADERS:
                raise ConfigurationError(
                    f"Unknown proxy header {header!r}; use one of {', '.join(PROXY_HEADERS)}"
                )
        self.networks = tuple(networks)
        self.headers = tuple(headers)

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client_address(self, connection: HTTPConnection) -> str:
        client = connection.scope.get("client")
        peer: str | None = client[0] if client else None
        if not peer:
            _warn_anonymous()
            return ANONYMOUS_IDENTIFIER
        if not self.networks or not self.trusts(peer):
            return peer
        for header in self.headers:
            value = connection.headers.get(header)
            if not value:
                continue
            if header == "x-real-ip":
                candidate = value.strip()
                if _is_ip(candidate):
                    return candidate
                continue
            hops = _forwarded_for(value) if header == "forwarded" else _split_xff(value)
            if hops:
                return self._walk(hops)
        return peer

    def _walk(self, hops: list[str]) -> str:
        # Right to left: the rightmost hop was added by the proxy closest to us.
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop if _is_ip(hop) else ANONYMOUS_IDENTIFIER
        return hops[0]


_anonymous_warned = False


def _warn_anonymous() -> None:
    # Clients without an address share one budget; say so once, loudly enough to notice.
    global _anonymous_warned
    if not _anonymous_warned:
        _anonymous_warned = True
        logger.warning(
            "A request came without a client address (scope['client'] is empty): such "
            "requests share the %r budget. Identify clients another way (an API key, "
            "the authenticated user) if your server does not report addresses.",
            ANONYMOUS_IDENTIFIER,
        )


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _split_xff(value: str) -> list[str]:
    return [_strip_port(part.strip()) for part in value.split(",") if part.strip()]


def _forwarded_for(value: str) -> list[str]:
    """The ``for=`` values of an RFC 7239 ``Forwarded`` header, in order."""
    hops: list[str] = []
    for element in value.split(","):
        for pair in element.split(";"):
            name, _, raw = pair.strip().partition("=")
            if name.strip().lower() == "for" and raw:
                hops.append(_strip_port(raw.strip().strip('"')))
    return hops


def _strip_port(value: str) -> str:
    if value.startswith("["):  # [2001:db8::1]:4711
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:  # 192.0.2.60:4711
        return value.split(":", 1)[0]
    return value


_NO_PROXIES: Final = TrustedProxies(())


def get_remote_address(
    connection: HTTPConnection, trusted_proxies: TrustedProxies | None = None
) -> str:
    """The client's address: the socket peer, unless it is a trusted proxy."""
    return (trusted_proxies or _NO_PROXIES).client_address(connection)


def remote_address(
    trusted_proxies: Iterable[str] = (),
    *,
    headers: Sequence[ProxyHeader] = ("forwarded", "x-forwarded-for", "x-real-ip"),
) -> _RemoteAddressIdentifier:
    """An identifier by client address, believing proxy headers only from ``trusted_proxies``.

    ``HTTPThrottle("api", rate="100/min", identifier=remote_address(["10.0.0.0/8"]))``
    """
    return _RemoteAddressIdentifier(TrustedProxies(trusted_proxies, headers=headers))


class _RemoteAddressIdentifier:
    __slots__ = ("trusted_proxies",)

    def __init__(self, trusted_proxies: TrustedProxies) -> None:
        self.trusted_proxies = trusted_proxies

    async def __call__(self, connection: HTTPConnection) -> str:
        return self.trusted_proxies.client_address(connection)

    def __repr__(self) -> str:
        networks = [str(network) for network in self.trusted_proxies.networks]
        return f"remote_address({networks!r})"

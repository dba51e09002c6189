"""Client addresses, and when proxy headers may be believed.

A proxy header is only as trustworthy as whoever set it. So:

* Headers are read only when the socket peer is a trusted proxy, and only the headers
  named (``X-Forwarded-For`` by default): a header the proxy passes through untouched is
  the client's to write.
* The hops of ``X-Forwarded-For`` / ``Forwarded`` are walked from the right (each proxy
  appends the address it received the request from), past trusted proxies; the first
  untrusted hop is the client. A hop that is no address (``unknown``, garbage) ends the
  walk: the client is then the nearest trusted proxy, never anything further left, which
  the client wrote.
* ``X-Real-IP``, ``CF-Connecting-IP`` and ``True-Client-IP`` name the client directly; sent
  more than once, or holding no address, they are not believed (the peer is the client).

Addresses are normalised before they are compared or used as identities: IPv4-mapped IPv6
(``::ffff:10.0.0.1``, how a dual-stack server reports IPv4 peers) is IPv4, IPv6 is
canonical (``2001:DB8::1`` is ``2001:db8::1``), and an IPv6 client stands for its /64 by
default (``ipv6_prefix``): one host is given a whole /64 and could otherwise use a new
address for every request. Reading of the headers themselves: `traffik.fastapi.forwarding`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from typing import Final, Literal

from starlette.requests import HTTPConnection
from starlette.types import Scope

from traffik.exceptions import ConfigurationError
from traffik.fastapi.forwarding import (
    IPAddress,
    field_lines,
    forwarded_for,
    hop_address,
    ip_address,
    list_elements,
)
from traffik.identities import ANONYMOUS_IDENTIFIER

__all__ = [
    "DEFAULT_IPV6_PREFIX",
    "DEFAULT_PROXY_HEADERS",
    "PROXY_HEADERS",
    "ProxyHeader",
    "TrustedProxies",
    "address_identity",
    "get_remote_address",
    "remote_address",
]

ProxyHeader = Literal[
    "x-forwarded-for", "forwarded", "x-real-ip", "cf-connecting-ip", "true-client-ip"
]
PROXY_HEADERS: Final[tuple[ProxyHeader, ...]] = (
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "cf-connecting-ip",
    "true-client-ip",
)
"""The headers that can be named, as `TrustedProxies.headers` holds them (any case is
accepted: ``"X-Forwarded-For"``)."""

DEFAULT_PROXY_HEADERS: Final[tuple[ProxyHeader, ...]] = ("x-forwarded-for",)
"""What a trusted proxy is believed by default: the header every common proxy appends to."""

DEFAULT_IPV6_PREFIX: Final = 64
"""How many leading bits of an IPv6 address name a client (one host's usual allocation)."""

# Headers listing every hop (walked), as against those naming the client alone.
_CHAINS: Final = frozenset({"x-forwarded-for", "forwarded"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

logger = logging.getLogger("traffik.fastapi")


class TrustedProxies:
    """Which peers may set proxy headers, which headers are believed, and how addresses
    become identities.

    :param proxies: addresses or networks (``"10.0.0.0/8"``, ``"127.0.0.1"``, ``"::1"``).
    :param headers: the headers to believe, in order of preference (any case):
        ``X-Forwarded-For`` (the default), ``Forwarded``, ``X-Real-IP``,
        ``CF-Connecting-IP``, ``True-Client-IP``. Name only those your proxy sets: the
        first one present decides, and a header the proxy passes through is the client's.
    :param ipv6_prefix: the leading bits of an IPv6 address that name a client: 64 by
        default (``2001:db8:1:2::/64``); 128 keeps each address apart.
    """

    __slots__ = ("_names", "headers", "ipv6_prefix", "networks")

    def __init__(
        self,
        proxies: Iterable[str],
        *,
        headers: Sequence[str] | str = DEFAULT_PROXY_HEADERS,
        ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
    ) -> None:
        if isinstance(proxies, str):
            proxies = [proxies]
        self.networks = tuple(_trusted_network(proxy) for proxy in proxies)
        self.headers = _header_names(headers)
        self._names = tuple((name, name.encode("latin-1")) for name in self.headers)
        if isinstance(ipv6_prefix, bool) or not isinstance(ipv6_prefix, int):
            raise ConfigurationError(f"ipv6_prefix must be a whole number, got {ipv6_prefix!r}")
        if not 1 <= ipv6_prefix <= 128:
            raise ConfigurationError(f"ipv6_prefix must be from 1 to 128, got {ipv6_prefix!r}")
        self.ipv6_prefix = ipv6_prefix

    def trusts(self, address: str) -> bool:
        """Whether ``address`` is one of the trusted proxies (normalised first)."""
        ip = ip_address(address.partition("%")[0])
        return ip is not None and self._trusts(ip)

    def _trusts(self, ip: IPAddress) -> bool:
        return any(ip in network for network in self.networks)

    def client_address(self, connection: HTTPConnection) -> str:
        """The client's identity: its address (an IPv6 one by prefix), as the socket peer
        says or, when the peer is a trusted proxy, as the named headers say."""
        return self.client_of(connection.scope)

    def client_of(self, scope: Scope) -> str:
        """`client_address` from an ASGI scope."""
        client = scope.get("client")
        peer: str | None = client[0] if client else None
        if not peer:
            _warn_anonymous()
            return ANONYMOUS_IDENTIFIER
        ip = ip_address(peer.partition("%")[0])  # a link-local peer's zone is no part of it
        if ip is None:
            return peer  # not an address (a Unix socket, a test client): as the server says
        if self.networks and self._trusts(ip):
            for name, raw_name in self._names:
                elements = list_elements(field_lines(scope, raw_name))
                if elements:  # the first named header present decides
                    ip = self._from_header(name, elements, ip)
                    break
        return _identity(ip, self.ipv6_prefix)

    def _from_header(self, name: str, elements: list[str], peer: IPAddress) -> IPAddress:
        if name not in _CHAINS:
            only = hop_address(elements[0]) if len(elements) == 1 else None
            return peer if only is None else only
        nearest = peer  # the nearest hop known to be a trusted proxy
        for element in reversed(elements):
            hop = element if name == "x-forwarded-for" else forwarded_for(element)
            ip = None if hop is None else hop_address(hop)
            if ip is None:
                return nearest  # no address: believe nothing further left
            if not self._trusts(ip):
                return ip
            nearest = ip
        return nearest  # every hop is a trusted proxy: the leftmost one is the client

    def __repr__(self) -> str:
        networks = [str(network) for network in self.networks]
        return f"TrustedProxies({networks!r}, headers={self.headers!r})"


def _trusted_network(proxy: object) -> Network:
    try:
        network = ipaddress.ip_network(proxy, strict=False)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"Invalid trusted proxy {proxy!r}: {exc}") from None
    if network.prefixlen == 0:
        raise ConfigurationError(
            f"Trusted proxy {proxy!r} trusts every address, so any client could name "
            "itself in a header: name your proxies' addresses or networks"
        )
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:  # ::ffff:10.0.0.0/104: IPv4's
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def _header_names(headers: object) -> tuple[ProxyHeader, ...]:
    if isinstance(headers, str):
        headers = (headers,)
    try:
        given = list(headers)  # type: ignore[call-overload]
    except TypeError:
        raise ConfigurationError(
            f"headers must be a list of proxy header names, got {headers!r}"
        ) from None
    names: list[ProxyHeader] = []
    for header in given:
        name = header.lower() if isinstance(header, str) else None
        if name not in PROXY_HEADERS:
            raise ConfigurationError(
                f"Unknown proxy header {header!r}; name any of X-Forwarded-For, Forwarded, "
                "X-Real-IP, CF-Connecting-IP, True-Client-IP (any case)"
            )
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigurationError("headers names no proxy header; leave it out for the default")
    return tuple(names)


def address_identity(address: str, ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> str:
    """The identity of a client at ``address``: IPv4 as it is, IPv4-mapped IPv6 as IPv4,
    IPv6 canonical and cut to ``ipv6_prefix`` bits; text that is no address stays as is."""
    if ":" not in address:
        return address  # IPv4 (or a name): nothing to normalise
    ip = ip_address(address.partition("%")[0])
    return address if ip is None else _identity(ip, ipv6_prefix)


def _identity(ip: IPAddress, ipv6_prefix: int) -> str:
    if ip.version == 4 or ipv6_prefix == 128:
        return str(ip)
    shift = 128 - ipv6_prefix
    return f"{ipaddress.IPv6Address(int(ip) >> shift << shift)}/{ipv6_prefix}"


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


_NO_PROXIES: Final = TrustedProxies(())


def get_remote_address(
    connection: HTTPConnection, trusted_proxies: TrustedProxies | None = None
) -> str:
    """The client's identity: the socket peer's address, unless it is a trusted proxy."""
    return (trusted_proxies or _NO_PROXIES).client_address(connection)


def remote_address(
    trusted_proxies: Iterable[str] = (),
    *,
    headers: Sequence[str] | str = DEFAULT_PROXY_HEADERS,
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
) -> _RemoteAddressIdentifier:
    """An identifier by client address, believing proxy headers only from ``trusted_proxies``.

    ``HTTPThrottle("api", rate="100/min", identifier=remote_address(["10.0.0.0/8"]))``
    believes ``X-Forwarded-For`` from peers in 10.0.0.0/8; ``headers=["Forwarded"]`` (say)
    believes another header instead. See `TrustedProxies` for every parameter.
    """
    return _RemoteAddressIdentifier(
        TrustedProxies(trusted_proxies, headers=headers, ipv6_prefix=ipv6_prefix)
    )


class _RemoteAddressIdentifier:
    __slots__ = ("trusted_proxies",)

    def __init__(self, trusted_proxies: TrustedProxies) -> None:
        self.trusted_proxies = trusted_proxies

    async def __call__(self, connection: HTTPConnection) -> str:
        return self.trusted_proxies.client_of(connection.scope)

    def __repr__(self) -> str:
        proxies = self.trusted_proxies
        networks = [str(network) for network in proxies.networks]
        return f"remote_address({networks!r}, headers={proxies.headers!r})"

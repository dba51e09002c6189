"""Proxy headers as the RFCs and the proxies really behave: nobody picks their own identity."""

from __future__ import annotations

import random
from typing import Any

import httpx2
import pytest
from fastapi import Depends, FastAPI
from hypothesis import given
from hypothesis import strategies as st

from traffik import ConfigurationError, HTTPThrottle, InMemoryBackend, remote_address
from traffik.fastapi import TrustedProxies
from traffik.fastapi.forwarding import forwarded_for, hop_address
from traffik.fastapi.proxies import address_identity

PROXY = "10.0.0.1"
CLIENT = "198.51.100.7"
Headers = list[tuple[str, str]]


def client_of(proxies: TrustedProxies, headers: Headers, peer: str = PROXY) -> str:
    scope: dict[str, Any] = {
        "type": "http",
        "client": (peer, 50000),
        "headers": [(name.lower().encode(), value.encode("latin-1")) for name, value in headers],
    }
    return proxies.client_of(scope)


def spoof() -> str:
    return ".".join(str(random.randint(1, 254)) for _ in range(4))


async def admitted(identifier: Any, peer: str, headers_for: Any, requests: int = 50) -> int:
    """How many of ``requests`` a "5/min" route admits, each sent with ``headers_for(i)``."""
    throttle = HTTPThrottle("proxied", rate="5/min", identifier=identifier)
    app = FastAPI(lifespan=InMemoryBackend("proxies").lifespan)
    app.get("/items", dependencies=[Depends(throttle)])(ok)
    transport = httpx2.ASGITransport(app=app, client=(peer, 50000))
    count = 0
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        for index in range(requests):
            response = await client.get("/items", headers=headers_for(index))
            count += response.status_code == 200
    return count


async def ok() -> dict[str, bool]:
    return {"ok": True}


# -- the attacks of issue 15 ------------------------------------------------------------


async def test_a_client_line_before_the_proxys_own_line_is_not_believed() -> None:
    # HAProxy adds an X-Forwarded-For line of its own after the client's.
    def headers(index: int) -> Headers:
        return [("X-Forwarded-For", spoof()), ("X-Forwarded-For", CLIENT)]

    assert await admitted(remote_address(["10.0.0.0/8"]), PROXY, headers) == 5


async def test_forwarded_is_not_believed_when_the_proxy_sets_x_forwarded_for() -> None:
    # nginx sets X-Forwarded-For and passes the client's Forwarded through untouched.
    def headers(index: int) -> Headers:
        return [("Forwarded", f"for={spoof()}"), ("X-Forwarded-For", CLIENT)]

    assert await admitted(remote_address(["10.0.0.0/8"]), PROXY, headers) == 5


async def test_a_proxy_on_a_dual_stack_socket_is_trusted() -> None:
    # uvicorn reports an IPv4 peer of a dual-stack socket as ::ffff:10.0.0.1.
    def headers(index: int) -> Headers:
        return [("X-Forwarded-For", f"198.51.100.{index % 2}")]

    assert await admitted(remote_address(["10.0.0.0/8"]), "::ffff:10.0.0.1", headers, 20) == 10


async def test_one_ipv6_client_written_two_ways_is_one_client() -> None:
    def headers(index: int) -> Headers:
        return [("X-Forwarded-For", "2001:DB8::1" if index % 2 else "2001:db8::1")]

    assert await admitted(remote_address(["10.0.0.0/8"]), PROXY, headers, 20) == 5


async def test_one_host_rotating_through_its_64_is_one_client() -> None:
    def headers(index: int) -> Headers:
        return [("X-Forwarded-For", f"2001:db8:0:1:{index:x}::{index + 1:x}")]

    assert await admitted(remote_address(["10.0.0.0/8"]), PROXY, headers) == 5
    # Each address apart, when asked.
    assert await admitted(remote_address(["10.0.0.0/8"], ipv6_prefix=128), PROXY, headers) == 50


async def test_the_default_identity_normalises_the_socket_peer() -> None:
    for peer in ("::ffff:203.0.113.9", "2001:DB8:0:0:1::1"):
        assert await admitted(None, peer, lambda index: [], 10) == 5


# -- walking the hops -------------------------------------------------------------------


NETWORK = TrustedProxies(["10.0.0.0/8"])


@pytest.mark.parametrize(
    ("headers", "client"),
    [
        ([], PROXY),  # no header: the peer
        ([("X-Forwarded-For", CLIENT)], CLIENT),
        ([("X-Forwarded-For", f"6.6.6.6, {CLIENT}, 10.0.0.2")], CLIENT),  # two proxies
        ([("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", f"{CLIENT}, 10.0.0.2")], CLIENT),
        ([("X-Forwarded-For", f"{CLIENT}:4711")], CLIENT),
        ([("X-Forwarded-For", "[2001:db8::7]:4711")], "2001:db8::/64"),
        ([("X-Forwarded-For", "::ffff:198.51.100.7")], CLIENT),
        ([("X-Forwarded-For", f" {CLIENT} ,, ")], CLIENT),  # whitespace, empty elements
        ([("X-Forwarded-For", "10.0.0.3, 10.0.0.2")], "10.0.0.3"),  # all trusted: the leftmost
        # A hop that is no address ends the walk at the nearest trusted proxy.
        ([("X-Forwarded-For", f"{CLIENT}, garbage, 10.0.0.2")], "10.0.0.2"),
        ([("X-Forwarded-For", "garbage")], PROXY),
        ([("X-Forwarded-For", "unknown")], PROXY),
        ([("X-Forwarded-For", "fe80::1%eth0")], PROXY),
        ([("X-Forwarded-For", "198.51.100.7:port")], PROXY),
        ([("X-Forwarded-For", "")], PROXY),
    ],
)
def test_x_forwarded_for_is_walked_from_the_right(headers: Headers, client: str) -> None:
    assert client_of(NETWORK, headers) == client


FORWARDED = TrustedProxies(["10.0.0.0/8"], headers=["Forwarded"])


@pytest.mark.parametrize(
    ("value", "client"),
    [
        (f"for={CLIENT}", CLIENT),
        (f'for="{CLIENT}:4711";proto=https;by=10.0.0.1', CLIENT),
        ('for="[2001:db8::7]:4711"', "2001:db8::/64"),
        (f"for=6.6.6.6, for={CLIENT};proto=http, for=10.0.0.2", CLIENT),
        (f"FOR={CLIENT}", CLIENT),
        ("for=unknown", PROXY),
        ("for=_hidden", PROXY),
        ("proto=https", PROXY),  # no for=
        (f"for={CLIENT};for=6.6.6.6", PROXY),  # twice in one element
        ('for="198.51.100.7', PROXY),  # an unclosed quote
        (f'for=6.6.6.6, for="x, for={CLIENT}', CLIENT),  # a client's quote cannot swallow hops
    ],
)
def test_forwarded_is_walked_from_the_right(value: str, client: str) -> None:
    assert client_of(FORWARDED, [("Forwarded", value)]) == client


@pytest.mark.parametrize("header", ["X-Real-IP", "CF-Connecting-IP", "True-Client-IP"])
def test_headers_naming_the_client_alone(header: str) -> None:
    proxies = TrustedProxies(["10.0.0.0/8"], headers=[header])
    assert client_of(proxies, [(header, CLIENT)]) == CLIENT
    assert client_of(proxies, [(header, "10.0.0.9")]) == "10.0.0.9"
    # Sent twice (the proxy did not replace the client's), or holding no address: the peer.
    assert client_of(proxies, [(header, spoof()), (header, CLIENT)]) == PROXY
    assert client_of(proxies, [(header, f"{spoof()}, {CLIENT}")]) == PROXY
    assert client_of(proxies, [(header, "garbage")]) == PROXY
    # Not named: never read.
    assert client_of(NETWORK, [(header, CLIENT)]) == PROXY


def test_the_first_named_header_present_decides() -> None:
    both = TrustedProxies(["10.0.0.0/8"], headers=["CF-Connecting-IP", "X-Forwarded-For"])
    assert client_of(both, [("X-Forwarded-For", "6.6.6.6"), ("CF-Connecting-IP", CLIENT)]) == CLIENT
    assert client_of(both, [("X-Forwarded-For", CLIENT)]) == CLIENT
    # Present but holding no address: it decides (the peer), the next is not consulted.
    assert client_of(both, [("CF-Connecting-IP", "x"), ("X-Forwarded-For", "6.6.6.6")]) == PROXY


def test_headers_from_an_untrusted_peer_are_never_read() -> None:
    for header in ("X-Forwarded-For", "Forwarded"):
        proxies = TrustedProxies(["10.0.0.0/8"], headers=[header])
        assert client_of(proxies, [(header, f"for={CLIENT}")], peer="203.0.113.5") == "203.0.113.5"
    assert client_of(TrustedProxies([]), [("X-Forwarded-For", CLIENT)]) == PROXY


# Whatever a client writes before the hops its proxies append, it is never believed.
client_text = st.text(st.sampled_from(list(' ,;="[]:%._-fFoOrR19aA\t')), max_size=40)


@given(st.lists(client_text, max_size=4), st.booleans(), st.booleans())
def test_no_client_text_picks_the_identity(own: list[str], own_line: bool, chain: bool) -> None:
    appended = f"{CLIENT}, 10.0.0.2" if chain else CLIENT  # a chain of two proxies
    written = ", ".join(own)
    for header, proxies, hop in (
        ("X-Forwarded-For", NETWORK, appended),
        ("Forwarded", FORWARDED, ", ".join(f"for={part}" for part in appended.split(", "))),
    ):
        lines = [(header, written), (header, hop)] if own_line else [(header, f"{written}, {hop}")]
        assert client_of(proxies, lines) == CLIENT, lines


# -- addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "identity"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("2001:DB8:0000::1", "2001:db8::/64"),
        ("2001:db8:0:0:ffff::1", "2001:db8::/64"),
        ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("testclient", "testclient"),
        ("/run/app.sock", "/run/app.sock"),
    ],
)
def test_addresses_are_normalised(address: str, identity: str) -> None:
    assert address_identity(address) == identity


def test_the_ipv6_prefix_is_chosen() -> None:
    assert address_identity("2001:db8:1:2:3:4:5:6", 48) == "2001:db8:1::/48"
    assert address_identity("2001:DB8::1", 128) == "2001:db8::1"
    assert client_of(TrustedProxies([], ipv6_prefix=56), [], peer="2001:db8:0:ff12:1::1") == (
        "2001:db8:0:ff00::/56"
    )


def test_trusted_networks_match_normalised_addresses() -> None:
    mapped = TrustedProxies(["::ffff:10.0.0.0/104"])
    assert mapped.trusts("10.1.2.3")
    assert mapped.trusts("::ffff:10.1.2.3")
    assert not mapped.trusts("11.0.0.1")
    assert TrustedProxies(["10.0.0.0/8"]).trusts("::ffff:10.0.0.1")
    assert TrustedProxies(["2001:db8::/32"]).trusts("2001:DB8::1")
    assert not TrustedProxies(["10.0.0.0/8"]).trusts("not an address")


def test_hops_are_read_strictly() -> None:
    assert str(hop_address("[2001:db8::1]:80")) == "2001:db8::1"
    assert hop_address("[198.51.100.7]") is None  # brackets hold IPv6 only
    assert hop_address("2001:db8::1]") is None
    assert hop_address("[2001:db8::1]x") is None
    assert hop_address("198.51.100.7:123456") is None
    assert hop_address("0198.51.100.7") is None
    assert forwarded_for('for="a\\"b"') is None
    assert forwarded_for("=x") is None


# -- configuration ---------------------------------------------------------------------


def test_header_names_in_any_case_and_the_1x_spellings() -> None:
    assert TrustedProxies([], headers="X-Forwarded-For").headers == ("x-forwarded-for",)
    names = ["forwarded", "x-forwarded-for", "x-real-ip", "CF-Connecting-IP", "True-Client-IP"]
    assert remote_address(["10.0.0.1"], headers=names).trusted_proxies.headers == (
        "forwarded", "x-forwarded-for", "x-real-ip", "cf-connecting-ip", "true-client-ip"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"headers": ["X-Client-IP"]}, "'X-Client-IP'"),
        ({"headers": ["X_FORWARDED_FOR"]}, "'X_FORWARDED_FOR'"),
        ({"headers": []}, "no proxy header"),
        ({"headers": 3}, "3"),
        ({"ipv6_prefix": 0}, "0"),
        ({"ipv6_prefix": 129}, "129"),
        ({"ipv6_prefix": True}, "True"),
        ({"proxies": ["0.0.0.0/0"]}, "'0.0.0.0/0' trusts every address"),
        ({"proxies": ["::/0"]}, "'::/0'"),
        ({"proxies": ["10.0.0.300"]}, "'10.0.0.300'"),
    ],
)
def test_bad_configuration_fails_at_construction_naming_it(
    options: dict[str, Any], named: str
) -> None:
    proxies = options.pop("proxies", ["10.0.0.1"])
    with pytest.raises(ConfigurationError) as caught:
        remote_address(proxies, **options)
    assert named in str(caught.value)

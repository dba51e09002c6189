"""Who a client is: addresses behind trusted proxies, API keys, authenticated users."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import Depends, FastAPI
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.testclient import TestClient

from traffik import (
    ConfigurationError,
    HTTPThrottle,
    InMemoryBackend,
    MiddlewareThrottle,
    ThrottleMiddleware,
    header_identifier,
    remote_address,
    user_identifier,
)
from traffik.fastapi import HTTPIdentifier

ClientFactory = Callable[..., TestClient]


def app_with(backend: InMemoryBackend, identifier: HTTPIdentifier, **kwargs: object) -> FastAPI:
    throttle = HTTPThrottle("who", rate="1/min", identifier=identifier)
    app = FastAPI(lifespan=backend.lifespan, **kwargs)  # type: ignore[arg-type]

    @app.get("/items", dependencies=[Depends(throttle)])
    async def items() -> dict[str, bool]:
        return {"ok": True}

    return app


class TestProxies:
    def test_a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(
        self, backend: InMemoryBackend, client_for: ClientFactory
    ) -> None:
        client = client_for(app_with(backend, remote_address(["10.9.9.9"])), "203.0.113.7")
        assert client.get("/items", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 200
        for spoof in ({"X-Forwarded-For": "2.2.2.2"}, {"X-Real-IP": "3.3.3.3"},
                      {"Forwarded": "for=4.4.4.4"}):  # fmt: skip
            assert client.get("/items", headers=spoof).status_code == 429

    def test_the_default_identifier_believes_no_header(
        self, backend: InMemoryBackend, client_for: ClientFactory
    ) -> None:
        throttle = HTTPThrottle("default-id", rate="1/min")
        app = FastAPI(lifespan=backend.lifespan)
        app.get("/items", dependencies=[Depends(throttle)])(ok)
        client = client_for(app, "10.0.0.1")
        assert client.get("/items", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 200
        assert client.get("/items", headers={"X-Forwarded-For": "9.9.9.9"}).status_code == 429

    def test_a_trusted_proxy_is_believed_and_walked_right_to_left(
        self, backend: InMemoryBackend, client_for: ClientFactory
    ) -> None:
        proxy = client_for(app_with(backend, remote_address(["10.0.0.0/8"])), "10.0.0.1")
        # The client forged the leftmost entry; the proxies appended the real one.
        chain = {"X-Forwarded-For": "6.6.6.6, 198.51.100.4, 10.0.0.7"}
        assert proxy.get("/items", headers=chain).status_code == 200
        other = {"X-Forwarded-For": "7.7.7.7, 198.51.100.4, 10.0.0.7"}
        assert proxy.get("/items", headers=other).status_code == 429
        assert proxy.get("/items", headers={"X-Forwarded-For": "198.51.100.5"}).status_code == 200

    def test_forwarded_and_x_real_ip(
        self, backend: InMemoryBackend, client_for: ClientFactory
    ) -> None:
        named = remote_address(["10.0.0.1"], headers=["Forwarded", "X-Real-IP"])
        proxy = client_for(app_with(backend, named), "10.0.0.1")
        forwarded = {"Forwarded": 'for="[2001:db8::1]:4711";proto=https, for=10.0.0.1'}
        assert proxy.get("/items", headers=forwarded).status_code == 200
        assert proxy.get("/items", headers={"X-Real-IP": "2001:db8::1"}).status_code == 429
        assert (
            proxy.get("/items", headers={"X-Real-IP": "2001:db8::2"}).status_code == 429
        )  # its /64
        assert proxy.get("/items", headers={"X-Real-IP": "2001:db9::1"}).status_code == 200

    def test_only_x_forwarded_for_is_believed_by_default(
        self, backend: InMemoryBackend, client_for: ClientFactory
    ) -> None:
        proxy = client_for(app_with(backend, remote_address(["10.0.0.1"])), "10.0.0.1")
        assert proxy.get("/items", headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 200
        # The other headers are not believed: each request below is the proxy's own.
        assert proxy.get("/items", headers={"Forwarded": "for=198.51.100.2"}).status_code == 200
        for header in ("Forwarded", "X-Real-IP", "CF-Connecting-IP", "True-Client-IP"):
            value = "for=198.51.100.3" if header == "Forwarded" else "198.51.100.3"
            assert proxy.get("/items", headers={header: value}).status_code == 429, header

    def test_bad_proxy_configuration_is_named(self) -> None:
        with pytest.raises(ConfigurationError, match=r"'10\.0\.0\.300'"):
            remote_address(["10.0.0.300"])
        with pytest.raises(ConfigurationError, match="'x-client'"):
            remote_address(["10.0.0.1"], headers=["x-client"])


def test_api_keys_identify_clients_and_are_stored_hashed(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    client = client_for(app_with(backend, header_identifier("X-API-Key")))
    assert client.get("/items", headers={"x-api-key": "secret-1"}).status_code == 200
    assert client.get("/items", headers={"x-api-key": "secret-1"}).status_code == 429
    assert client.get("/items", headers={"x-api-key": "secret-2"}).status_code == 200
    # Without a key: the client's address, not one budget for everyone keyless.
    assert client.get("/items").status_code == 200
    other = client_for(app_with(backend, header_identifier("X-API-Key")), "10.0.0.2")
    assert other.get("/items").status_code == 200
    assert not any("secret" in key for key in backend._entries)
    assert repr(header_identifier("X-API-Key")) == "header_identifier('X-API-Key')"


def test_raw_header_values_when_asked(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    client = client_for(app_with(backend, header_identifier("X-Tenant", hash_values=False)))
    client.get("/items", headers={"x-tenant": "acme"})
    assert list(backend._entries) == ["who:{key:acme}:GET:/items:fixed_window"]


class TokenAuth(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        token = conn.headers.get("authorization", "")
        if not token.startswith("Bearer "):
            return None
        return AuthCredentials(["authenticated"]), SimpleUser(token.removeprefix("Bearer "))


def test_authenticated_users_identify_clients(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    app = app_with(
        backend,
        user_identifier(),
        middleware=[Middleware(AuthenticationMiddleware, backend=TokenAuth())],
    )
    alice = client_for(app, "10.0.0.1")
    assert alice.get("/items", headers={"authorization": "Bearer alice"}).status_code == 200
    # Alice from another address: still Alice.
    elsewhere = client_for(app, "10.0.0.2")
    assert elsewhere.get("/items", headers={"authorization": "Bearer alice"}).status_code == 429
    assert elsewhere.get("/items", headers={"authorization": "Bearer bob"}).status_code == 200
    # Anonymous requests fall back to the address.
    assert elsewhere.get("/items").status_code == 200
    assert sorted(backend._entries) == [
        "who:{10.0.0.2}:GET:/items:fixed_window",
        "who:{user:alice}:GET:/items:fixed_window",
        "who:{user:bob}:GET:/items:fixed_window",
    ]


def test_users_in_a_middleware_throttle(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = HTTPThrottle("mw-users", rate="1/min", identifier=user_identifier())
    app = FastAPI(
        lifespan=backend.lifespan,
        middleware=[
            # Authentication first (outermost), so the throttle sees the user.
            Middleware(AuthenticationMiddleware, backend=TokenAuth()),
            Middleware(ThrottleMiddleware, middleware_throttles=[MiddlewareThrottle(throttle)]),
        ],
    )
    app.get("/")(ok)
    client = client_for(app)
    assert client.get("/", headers={"authorization": "Bearer carol"}).status_code == 200
    assert client.get("/", headers={"authorization": "Bearer carol"}).status_code == 429
    assert client.get("/", headers={"authorization": "Bearer dave"}).status_code == 200


def test_bad_identifier_settings_are_named() -> None:
    with pytest.raises(ConfigurationError, match="'X API Key'"):
        header_identifier("X API Key")
    with pytest.raises(ConfigurationError, match="'user name'"):
        user_identifier(attribute="user name")
    with pytest.raises(ConfigurationError, match="'nope'"):
        header_identifier("X-Key", fallback="nope")  # type: ignore[arg-type]


async def ok() -> dict[str, bool]:
    return {"ok": True}

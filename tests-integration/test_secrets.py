"""Secrets stay secret: no password from a URL, ``client_kwargs`` or a client object appears
in an exception message, a repr, a log line or a metric label — valid URLs, malformed ones
(a password holding ``/ ? # @ :`` unencoded), a refused password on a real redis-server.

Every output is searched for each piece of one fixed secret."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
import redis
import redis.asyncio as aredis
from prometheus_client import CollectorRegistry, generate_latest

from traffik import ConfigurationError, Limiter
from traffik.backends.memcached import MemcachedBackend
from traffik.backends.redis import RedisBackend
from traffik.exceptions import BackendError
from traffik.metrics import PrometheusExporter

SECRET = "Zq9Secret:Pw7Kx/Kx7Token?Hh#Mm8Vault@Yy4Key"
WRONG = "Wr0ngPass:Gg5Tt/Uu6Vv?Ii#Oo2Pp@Ee3Rr"
PIECES = ("Zq9Secret", "Pw7Kx", "Kx7Token", "Mm8Vault", "Yy4Key", "Wr0ngPass", "Gg5Tt", "Uu6Vv",
          "Oo2Pp", "Ee3Rr")  # fmt: skip


class Outputs:
    """Every text a user or an operator could see, gathered to be searched."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *texts: object) -> None:
        self.texts.extend(str(text) for text in texts)

    def error(self, exc: BaseException) -> None:
        self.add(repr(exc), "".join(traceback.format_exception(exc)))

    def constructing(self, make: Callable[[], object]) -> None:
        try:
            made = make()
        except ConfigurationError as exc:
            self.error(exc)
        else:
            self.add(repr(made), repr(vars(made)))

    def leaks(self) -> list[tuple[str, str]]:
        return [(piece, text) for text in self.texts for piece in PIECES if piece in text]


@pytest.fixture
def outputs(caplog: pytest.LogCaptureFixture) -> Iterator[Outputs]:
    caplog.set_level(logging.DEBUG)
    gathered = Outputs()
    yield gathered
    gathered.add(caplog.text)
    assert gathered.leaks() == []


def test_malformed_and_refused_urls_never_show_the_password(outputs: Outputs) -> None:
    for url in (
        f"redis://:{SECRET}@cache:6379/0",
        f"redis://app:{SECRET}@cache:6379/0",
        f"redis://:{SECRET.replace('?', '').replace('#', '')}@cache:6379/0",
        f"rediss://:{quote(SECRET, safe='')}@cache:6379/0",
        f"redis://:{quote(SECRET, safe='')}@cache:6379/x",
        f"redis://:{quote(SECRET, safe='')}@cache:6379/1?socket_timeout=soon",
        f"redis://cache:6379/0?password={quote(SECRET, safe='')}",
        f"unix://:{SECRET}@/run/redis.sock",
        f"http://:{SECRET}@cache:6379",
    ):
        outputs.constructing(lambda url=url: RedisBackend(url))  # type: ignore[misc]
        outputs.constructing(lambda url=url: RedisBackend(url, cluster=True))  # type: ignore[misc]
    for url in (
        f"memcached://user:{SECRET}@cache:11211",
        f"memcached://:{SECRET}@cache",
        f"memcached://user:{quote(SECRET, safe='')}@cache:11211",
        f"memcached://cache:11211?password={SECRET}",
    ):
        outputs.constructing(lambda url=url: MemcachedBackend(url))  # type: ignore[misc]
        outputs.constructing(lambda url=url: MemcachedBackend(url, host="cache"))  # type: ignore[misc]
        outputs.constructing(lambda url=url: MemcachedBackend(host=url))  # type: ignore[misc]
    assert len(outputs.texts) > 40


def test_clients_and_client_kwargs_never_show_the_password(outputs: Outputs) -> None:
    client = aredis.Redis(host="cache", password=SECRET)
    outputs.constructing(lambda: RedisBackend(client))
    outputs.constructing(lambda: RedisBackend(client, client_kwargs={"password": SECRET}))
    outputs.constructing(lambda: RedisBackend("redis://cache", client_kwargs={"password": SECRET}))
    listed: Any = [("password", SECRET)]
    outputs.constructing(lambda: RedisBackend("redis://cache", client_kwargs=listed))
    outputs.constructing(lambda: RedisBackend(redis.Redis(host="cache", password=SECRET)))  # type: ignore[arg-type]
    outputs.constructing(lambda: RedisBackend(f"redis://:{SECRET}@cache".encode()))  # type: ignore[arg-type]
    outputs.constructing(lambda: MemcachedBackend(client=client))  # type: ignore[arg-type]


@pytest.mark.parametrize("password_in", ["url", "client_kwargs"])
async def test_a_real_server_refusing_the_password(
    password_in: str, server_factory: Callable[..., Any], outputs: Outputs
) -> None:
    server = server_factory("redis")
    port = server.port
    # Set once it answers: the fixture's readiness probe is a PING without a password.
    admin = aredis.Redis(port=port)
    await admin.config_set("requirepass", SECRET)
    await admin.aclose()
    base = f"redis://127.0.0.1:{port}/0"
    right: RedisBackend
    if password_in == "url":
        right = RedisBackend(f"redis://:{quote(SECRET, safe='')}@127.0.0.1:{port}/0")
        wrong = RedisBackend(f"redis://:{quote(WRONG, safe='')}@127.0.0.1:{port}/0")
    else:
        right = RedisBackend(base, client_kwargs={"password": SECRET})
        wrong = RedisBackend(base, client_kwargs={"password": WRONG})
    registry = CollectorRegistry()
    exporter = PrometheusExporter(registry).install()
    try:
        await right.initialize()
        limiter = Limiter("secret-test", rate="1/min", backend=right)
        assert (await limiter.decide("client")).allowed
        outputs.add(repr(right), repr(vars(right)))
        with pytest.raises(BackendError) as caught:
            await wrong.initialize()
        outputs.error(caught.value)
        for on_error in ("allow", "throttle"):
            failing = Limiter(f"failing-{on_error}", rate="1/min", backend=wrong, on_error=on_error)
            outputs.add(await failing.decide("client"), repr(failing))
        with pytest.raises(BackendError) as caught:
            await Limiter("raising", rate="1/min", backend=wrong, on_error="raise").decide("client")
        outputs.error(caught.value)
        outputs.add(generate_latest(registry).decode(), repr(wrong), repr(vars(wrong)))
    finally:
        exporter.uninstall()
        await right.close()
        await wrong.close()

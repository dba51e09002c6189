"""Real servers for the tests: redis-server and memcached on free loopback ports.

Every test run under this directory can use them. A server is started once per session
(or per test, for the fixtures that stop and pause it) and stopped afterwards. When
``TRAFFIK_REDIS_URL`` / ``TRAFFIK_MEMCACHED_URL`` are set, the shared fixtures use those
servers instead. A server that cannot be had fails the tests that need it, loudly: they
are never skipped.

A test that uses a server fixture is marked ``redis`` or ``memcached`` by that alone (see
`pytest_collection_modifyitems`), so ``-m "not redis and not memcached"`` selects tests that
need none. ``TRAFFIK_NO_SERVERS=1`` (the quick run sets it) makes starting one an error: a
test that starts a server some other way must carry the marker itself.

This file uses only the standard library and pytest, so every solo environment can load it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

_START_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(host: str, port: int, probe: bytes, expected: bytes) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(probe)
            return sock.recv(64).startswith(expected)
    except OSError:
        return False


@dataclass
class ServerProcess:
    """One server process that tests may stop, pause (SIGSTOP), resume and restart.

    It keeps its port across restarts, so clients configured with its URL reconnect.
    """

    kind: str  # "redis" or "memcached"
    port: int
    host: str = "127.0.0.1"
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="traffik-server-"))

    @property
    def url(self) -> str:
        scheme = "redis" if self.kind == "redis" else "memcached"
        return f"{scheme}://{self.host}:{self.port}"

    def command(self) -> list[str]:
        if self.kind == "redis":
            return [
                _binary("redis-server"),
                "--port", str(self.port),
                "--bind", self.host,
                "--save", "",
                "--appendonly", "no",
                "--dir", self.workdir,
                *self.extra_args,
            ]  # fmt: skip
        return [
            _binary("memcached"),
            "-l", self.host,
            "-p", str(self.port),
            "-U", "0",
            "-m", "64",
            "-c", "4096",
            *(["-u", "root"] if os.geteuid() == 0 else []),
            *self.extra_args,
        ]  # fmt: skip

    def ping(self) -> bool:
        if self.kind == "redis":
            return _answers(self.host, self.port, b"PING\r\n", b"+PONG")
        return _answers(self.host, self.port, b"version\r\n", b"VERSION")

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode() if self.process.stderr else ""
                self.stop()  # closes the pipe: a retry on another port leaks nothing
                raise RuntimeError(f"{self.kind} on port {self.port} exited: {stderr.strip()}")
            if self.ping():
                return
            time.sleep(0.02)  # waiting for a child process to listen; not a test's timing
        self.stop()
        raise RuntimeError(f"{self.kind} on port {self.port} did not answer in {_START_TIMEOUT}s")

    def stop(self) -> None:
        """Stop the server (SIGKILL: an abrupt crash, no graceful shutdown)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.resume()
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing answers.

        Returns once every thread of the server has stopped (read from /proc, where there
        is one): the signal is sent at once but takes effect later, and on a loaded host a
        server could otherwise still answer what a test sends right after pausing it.
        """
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        threads = Path(f"/proc/{self.process.pid}/task")
        deadline = time.monotonic() + 5.0
        while threads.is_dir() and time.monotonic() < deadline:
            try:
                states = [(task / "stat").read_text().rsplit(")", 1)[1].split()[0]
                          for task in threads.iterdir()]  # fmt: skip
            except (OSError, IndexError):  # a thread ended meanwhile: look again
                continue
            if all(state in ("T", "t") for state in states):
                return
            time.sleep(0.001)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL the server as it is, paused or not: what it had not answered is lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.stop()


class ServerUnavailable(RuntimeError):
    """No server of this kind can be started here: trying again would not help."""


def _binary(name: str) -> str:
    if os.environ.get("TRAFFIK_NO_SERVERS"):
        raise ServerUnavailable(
            f"This run starts no server (TRAFFIK_NO_SERVERS is set), yet a test wants {name}: "
            f"mark the test `redis` or `memcached` (tests using a server fixture are marked "
            f"by it), so that runs without servers leave it out."
        )
    path = shutil.which(name)
    if path is None:
        raise ServerUnavailable(
            f"{name} is not installed. The tests need real servers: install redis-server and "
            f"memcached (Debian/Ubuntu: apt-get install redis-server memcached), or point "
            f"TRAFFIK_REDIS_URL / TRAFFIK_MEMCACHED_URL at running ones."
        )
    return path


def start_server(kind: str, *extra_args: str) -> ServerProcess:
    """Start a private server of ``kind`` on a free port, retrying if the port was taken."""
    last_error: Exception | None = None
    for _ in range(5):
        server = ServerProcess(kind, free_port(), extra_args=extra_args)
        try:
            server.start()
        except ServerUnavailable:
            raise
        except RuntimeError as exc:
            last_error = exc
            continue
        return server
    raise RuntimeError(f"could not start {kind}: {last_error}")


def _shared_server(kind: str, env_var: str) -> Iterator[str]:
    url = os.environ.get(env_var)
    if url and os.environ.get("TRAFFIK_NO_SERVERS"):
        pytest.fail(f"This run uses no server (TRAFFIK_NO_SERVERS), yet a test wants {kind}")
    if url:
        parsed = urlparse(url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port
        probe = ServerProcess(kind, port or (6379 if kind == "redis" else 11211), host=host)
        if not probe.ping():
            pytest.fail(f"{env_var}={url} does not answer", pytrace=False)
        yield url
        return
    try:
        server = start_server(kind)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A redis:// URL of a server shared by the session (TRAFFIK_REDIS_URL if set)."""
    yield from _shared_server("redis", "TRAFFIK_REDIS_URL")


@pytest.fixture(scope="session")
def memcached_url() -> Iterator[str]:
    """A memcached:// URL of a server shared by the session (TRAFFIK_MEMCACHED_URL if set)."""
    yield from _shared_server("memcached", "TRAFFIK_MEMCACHED_URL")


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ServerProcess]]:
    """Start private servers that a test may stop, pause and restart; all stopped after it."""
    started: list[ServerProcess] = []

    def start(kind: str, *extra_args: str) -> ServerProcess:
        try:
            server = start_server(kind, *extra_args)
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# The fixtures that reach a server, and the markers a test using one gets.
SERVER_FIXTURES: dict[str, tuple[str, ...]] = {
    "redis_url": ("redis",),
    "redis_cluster": ("redis",),
    "redis_cluster_with_replicas": ("redis",),
    "redis_sentinel": ("redis",),
    "memcached_url": ("memcached",),
    "memcached_servers": ("memcached",),
    "server_factory": ("redis", "memcached"),  # starts either kind
}
# A parameter naming the backend a test runs on (tests-integration's `backend_kind`).
BACKEND_PARAMETER = "backend_kind"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the servers it uses: ``-m "not redis"`` then leaves out exactly those."""
    for item in items:
        kinds = {
            kind
            for fixture in getattr(item, "fixturenames", ())
            for kind in SERVER_FIXTURES.get(fixture, ())
        }
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get(BACKEND_PARAMETER) in (
            "redis",
            "memcached",
        ):
            kinds.add(callspec.params[BACKEND_PARAMETER])
        for kind in sorted(kinds):
            item.add_marker(kind)


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses, so tests sharing a server never see each other's keys."""
    return f"test-{uuid.uuid4().hex[:12]}"


# -- the observed run --------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _observed_run() -> Iterator[None]:
    """``TRAFFIK_OBSERVED=1`` (``hatch run test-observed``): every test runs with an observer
    installed, so every decision takes the pipeline's observed branch; the suites must pass
    the same. The observer counts events: a run that reported none observed nothing."""
    if not os.environ.get("TRAFFIK_OBSERVED"):
        yield
        return
    from traffik.observability import DecisionEvent, add_observer, remove_observer

    events = 0

    def count(event: DecisionEvent) -> None:
        nonlocal events
        events += 1

    add_observer(count)
    try:
        yield
    finally:
        remove_observer(count)
    assert events > 0, "TRAFFIK_OBSERVED is set, yet no decision was observed"


# -- Redis Cluster and Sentinel --------------------------------------------------------


@dataclass
class RedisClusterServers:
    """A Redis Cluster on loopback, every slot assigned: primaries, and replicas if asked."""

    nodes: list[ServerProcess]

    @property
    def url(self) -> str:
        """The URL of one node: enough for a cluster client to discover the rest."""
        return self.nodes[0].url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def wait_until_ok(self, timeout: float = _START_TIMEOUT) -> float:
        """Poll every running node until each reports ``cluster_state:ok``; seconds waited.

        What a failover or a resharding test waits for (a replica promoted, a slot moved),
        by asking the servers, never by sleeping a fixed time.
        """
        started = time.monotonic()
        running = [node for node in self.nodes if node.process is not None]
        while not all(_cluster_state_ok(node) for node in running):
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"the cluster did not reach cluster_state:ok in {timeout}s")
            time.sleep(0.02)  # polling the servers; not a test's timing
        return time.monotonic() - started


def _cluster_state_ok(node: ServerProcess) -> bool:
    return b"cluster_state:ok" in _ask(node, b"CLUSTER INFO\r\n")


def _ask(node: ServerProcess, request: bytes) -> bytes:
    try:
        with socket.create_connection((node.host, node.port), timeout=0.5) as sock:
            sock.sendall(request)
            return sock.recv(4096)
    except OSError:
        return b""


def _start_cluster_node(node_timeout_ms: int = 5000) -> ServerProcess:
    """A cluster-enabled redis-server; its bus port (port + 10000) must be free too."""
    for _ in range(20):
        port = free_port()
        if port + 10_000 > 65_535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        node = ServerProcess(
            "redis",
            port,
            extra_args=(
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout_ms),
            ),
        )  # fmt: skip
        try:
            node.start()
        except RuntimeError:
            continue
        return node
    raise RuntimeError("could not start a cluster-enabled redis-server on a free port")


def start_redis_cluster(
    masters: int = 3, *, replicas: int = 0, node_timeout_ms: int = 5000
) -> RedisClusterServers:
    """Start ``masters`` cluster-enabled redis-servers, ``replicas`` more per master, and
    join them with redis-cli. ``node_timeout_ms``: how long a node may be unreachable
    before the others count it failed (a replica takes over soon after)."""
    cluster = RedisClusterServers([])
    try:
        for _ in range(masters * (1 + replicas)):
            cluster.nodes.append(_start_cluster_node(node_timeout_ms))
        subprocess.run(
            [
                _binary("redis-cli"),
                "--cluster",
                "create",
                *(f"{node.host}:{node.port}" for node in cluster.nodes),
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        cluster.wait_until_ok()
        if replicas:  # every replica has synced with its primary (redis-cli does not wait)
            deadline = time.monotonic() + _START_TIMEOUT
            while not all(_replica_ready(node) for node in cluster.nodes):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the replicas did not sync in {_START_TIMEOUT}s")
                time.sleep(0.05)  # waiting for the replication links; not a test's timing
    except (RuntimeError, subprocess.SubprocessError) as exc:
        cluster.stop()
        output = getattr(exc, "stdout", b"") or b""
        raise RuntimeError(
            f"could not start a Redis Cluster: {exc} {output.decode()[-500:]}"
        ) from exc
    return cluster


def _replica_ready(node: ServerProcess) -> bool:
    """A primary, or a replica whose link to its primary is up."""
    info = _ask(node, b"INFO replication\r\n")
    return b"role:master" in info or b"master_link_status:up" in info


@pytest.fixture
def redis_cluster_with_replicas() -> Iterator[RedisClusterServers]:
    """A Redis Cluster of 3 primaries with a replica each, for one test (it may kill
    nodes and move slots). A node unreachable for 1 s counts as failed, so a replica
    takes over within a few seconds."""
    try:
        cluster = start_redis_cluster(3, replicas=1, node_timeout_ms=1000)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A real 3-master Redis Cluster shared by the session (slow to form, so made once)."""
    try:
        cluster = start_redis_cluster()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@dataclass
class SentinelProcess(ServerProcess):
    """A ``redis-server --sentinel`` watching one primary under ``service_name``."""

    primary: tuple[str, int] = ("127.0.0.1", 6379)
    service_name: str = "mymaster"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"

    def command(self) -> list[str]:
        config = os.path.join(self.workdir, "sentinel.conf")
        with open(config, "w") as file:  # sentinel rewrites its config: it must be its own
            file.write(
                f"port {self.port}\nbind {self.host}\ndir {self.workdir}\n"
                f"sentinel monitor {self.service_name} {self.primary[0]} {self.primary[1]} 1\n"
                f"sentinel down-after-milliseconds {self.service_name} 5000\n"
            )
        return [_binary("redis-server"), config, "--sentinel"]

    def ping(self) -> bool:
        return _answers(self.host, self.port, b"PING\r\n", b"+PONG")


@dataclass
class RedisSentinelServers:
    """A primary and the Sentinel that names it."""

    primary: ServerProcess
    sentinel: SentinelProcess

    @property
    def service_name(self) -> str:
        return self.sentinel.service_name

    @property
    def sentinel_address(self) -> tuple[str, int]:
        return (self.sentinel.host, self.sentinel.port)


@pytest.fixture
def redis_sentinel() -> Iterator[RedisSentinelServers]:
    """A private primary plus a Sentinel monitoring it as ``mymaster``; stopped afterwards."""
    try:
        primary = start_server("redis")
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    sentinel: SentinelProcess | None = None
    try:
        for _ in range(5):
            candidate = SentinelProcess(
                "sentinel", free_port(), primary=(primary.host, primary.port)
            )
            try:
                candidate.start()
            except RuntimeError:
                continue
            sentinel = candidate
            break
        if sentinel is None:
            pytest.fail("could not start redis-server --sentinel", pytrace=False)
        yield RedisSentinelServers(primary, sentinel)
    finally:
        if sentinel is not None:
            sentinel.stop()
        primary.stop()


# -- Several memcached servers ---------------------------------------------------------


@dataclass
class MemcachedServers:
    """Private memcached servers that one client spreads its keys over."""

    nodes: list[ServerProcess]

    @property
    def addresses(self) -> list[str]:
        """Each server as ``host:port``, the form ``MemcachedBackend(servers=...)`` takes."""
        return [f"{node.host}:{node.port}" for node in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture
def memcached_servers() -> Iterator[MemcachedServers]:
    """Three private memcached servers, which a test may stop; all stopped after it."""
    servers = MemcachedServers([])
    try:
        for _ in range(3):
            servers.nodes.append(start_server("memcached"))
    except RuntimeError as exc:
        servers.stop()
        pytest.fail(str(exc), pytrace=False)
    try:
        yield servers
    finally:
        servers.stop()

"""(i) FastAPI under a real uvicorn (uvloop, httptools), over keep-alive connections.

Each contender is an app of its own with one route (``GET /items`` -> ``{"ok": True}``),
served by uvicorn in a process of its own (``loop="uvloop"``, ``http="httptools"``, the
app's lifespan running its backend), so the server and the load generator use different
cores. The load generator is lean: a uvloop event loop in a thread of the suite's process,
8 keep-alive connections, each sending ``GET /items`` and reading the whole response
(status line, Content-Length, exactly that body) before the next; no pipelining, no HTTP
client library. A status other than 200 stops the run, and a throttled app must answer its
first request with a ``RateLimit`` header (the throttle ran). The floor is the bare route;
the rows are requests per second, one client key, headers on, a rate that never refuses.
The client's own ceiling (a raw uvloop server's fixed response) is measured in the same
rounds. Redis: a private redis-server, ``on_error="raise"`` (a failing store makes 500s,
not admitted requests: a fast, wrong figure).

``python -m benchmarks.uvicorn_row APP [REDIS_URL]`` (how the section starts its servers)
prints the port it listens on, then serves until terminated.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from fastapi import Depends, FastAPI

from benchmarks.contenders import PLENTY
from benchmarks.harness import Contender, Measure, Section, Settings, Target, compare
from benchmarks.http import noop
from benchmarks.references import hand_written_app
from benchmarks.servers import server_url
from traffik import HTTPThrottle, MiddlewareThrottle, ThrottleMiddleware
from traffik.backends.base import ThrottleBackend
from traffik.backends.inmemory import InMemoryBackend

__all__ = ["build_app", "uvicorn_section"]

REQUESTS_PER_ROUND = 3_000
CONNECTIONS = 8
MEMORY_TARGET = Target(0.90, at_least=True)
REDIS_TARGET = Target(0.75, at_least=True)
REQUEST = b"GET /items HTTP/1.1\r\nHost: bench\r\n\r\n"
FIXED_RESPONSE = (
    b'HTTP/1.1 200 OK\r\ncontent-length: 11\r\ncontent-type: application/json\r\n\r\n{"ok":true}'
)
STARTUP_SECONDS = 60.0
_ROOT = Path(__file__).resolve().parent.parent
_T = TypeVar("_T")

# app name -> (row, target, note); "bare" is the floor. Throttled apps end in -memory / -redis.
ROWS: dict[str, tuple[str, Target | None, str]] = {
    "noop": ("no-op `Depends`", None, "FastAPI's own price for a dependency"),
    "depends-memory": ("`Depends(throttle)`, memory", MEMORY_TARGET, ""),
    "middleware-memory": ("middleware throttle, memory", MEMORY_TARGET, ""),
    "depends-redis": ("`Depends(throttle)`, Redis", REDIS_TARGET, ""),
    "middleware-redis": ("middleware throttle, Redis", REDIS_TARGET, ""),
    "hand-memory": (
        "hand-written counter, memory",
        None,
        "a reference: (b)'s dict counter and five headers in one dependency",
    ),
    "hand-middleware-memory": (
        "hand-written middleware, memory",
        None,
        "a reference: (c)'s hand-written middleware, a dict counter and five headers",
    ),
    "hand-middleware-on-ours-memory": (
        "hand-written middleware, on our store and record",
        None,
        "a reference: the row above, with our `RequestLedger` and `InMemoryBackend`",
    ),
    "hand-redis": (
        "hand-written `INCR`, Redis",
        None,
        "a reference: one `INCR` per request on a redis.asyncio client, five headers",
    ),
    "ceiling": ("client ceiling", None, "a raw uvloop server, fixed response: the client's limit"),
}


def build_app(name: str, redis_url: str | None = None) -> FastAPI:
    """The app ``name`` serves (a key of `ROWS`, or "bare"), built in the server process."""
    if name.startswith("hand-"):
        return hand_written_app(name, redis_url)
    backend: ThrottleBackend | None = None
    if name.endswith("-redis"):
        from traffik.backends.redis import RedisBackend

        assert redis_url, "the Redis apps need a URL"
        namespace = f"bench-uvicorn-{uuid.uuid4().hex[:8]}"
        # The shipped time budget; "raise" makes a failing store a failed run (500s), where
        # the default "allow" would count requests let through unchecked.
        backend = RedisBackend(redis_url, namespace=namespace, on_error="raise")
    elif name.endswith("-memory"):
        backend = InMemoryBackend("bench-uvicorn", on_error="raise")
    elif name not in ("bare", "noop"):
        raise ValueError(f"no app named {name!r}")
    app = FastAPI() if backend is None else FastAPI(lifespan=backend.lifespan)
    dependencies: list[Any] = [Depends(noop)] if name == "noop" else []
    if backend is not None:
        throttle = HTTPThrottle(f"bench:{name}", rate=PLENTY, backend=backend)
        if name.startswith("depends-"):
            dependencies = [Depends(throttle)]
        else:
            middleware_throttles = [MiddlewareThrottle(throttle, "/items")]
            app.add_middleware(ThrottleMiddleware, middleware_throttles=middleware_throttles)

    @app.get("/items", dependencies=dependencies)
    async def items() -> dict[str, bool]:
        return {"ok": True}

    return app


class _FixedServer(asyncio.Protocol):
    """The ceiling's server: a fixed response to each request, no parsing beyond its end."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            self.buffer = self.buffer[end + 4 :]
            self.transport.write(FIXED_RESPONSE)


async def _serve_fixed(listener: socket.socket) -> None:
    server = await asyncio.get_running_loop().create_server(_FixedServer, sock=listener)
    await server.serve_forever()


def serve(name: str, redis_url: str | None) -> None:
    """Listen on a free loopback port, print it, and serve app ``name`` until terminated."""
    import uvicorn
    import uvloop

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    if name == "ceiling":
        uvloop.run(_serve_fixed(listener))
        return
    config = uvicorn.Config(
        build_app(name, redis_url),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=3600,  # the connections idle while the other contenders run
    )
    uvicorn.Server(config).run(sockets=[listener])


class _Connection(asyncio.Protocol):
    """One keep-alive connection: a request, its whole response, then the next request."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.left = 0
        self.done: asyncio.Future[None] | None = None
        self.head = b""  # the last response's status line and headers

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, requests: int) -> asyncio.Future[None]:
        self.left, self.done = requests, asyncio.get_running_loop().create_future()
        self.transport.write(REQUEST)
        return self.done

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.done is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            start = head.find(b"\r\ncontent-length:")
            if start < 0:
                self._fail(f"a response without Content-Length: {head!r}")
                return
            stop = head.find(b"\r\n", start + 2)
            total = end + 4 + int(head[start + 17 : stop if stop >= 0 else len(head)])
            if len(self.buffer) < total:
                return
            if not head.startswith(b"http/1.1 200 "):
                self._fail(f"{head!r} {bytes(self.buffer[end + 4 : total])!r}")
                return
            self.head = head
            del self.buffer[:total]
            self.left -= 1
            if self.left:
                self.transport.write(REQUEST)
            else:
                self.done.set_result(None)
                self.done = None

    def _fail(self, problem: str) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(AssertionError(f"GET /items: {problem}"))
        self.done = None
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError(f"the server closed a connection ({exc})"))


class _ClientLoop:
    """The load generator's event loop (uvloop's), in a thread of its own."""

    def __init__(self) -> None:
        import uvloop

        self.loop = uvloop.new_event_loop()
        self.connections: list[_Connection] = []  # closed with the loop
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-client")
        self.thread.start()

    async def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    def close(self) -> None:
        for connection in self.connections:
            self.loop.call_soon_threadsafe(connection.transport.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


async def _connect(port: int) -> list[_Connection]:
    """`CONNECTIONS` connections to ``port``, retried until the server listens (it runs its
    lifespan first); the first request on each must succeed."""
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + STARTUP_SECONDS
    connections: list[_Connection] = []
    while len(connections) < CONNECTIONS:
        try:
            _, connection = await loop.create_connection(_Connection, "127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        await connection.send(1)
        connections.append(connection)
    return connections


def _load(client: _ClientLoop, connections: list[_Connection]) -> Measure:
    """``n`` requests spread over the connections; seconds per request."""

    async def burst(n: int) -> float:
        count = len(connections)
        shares = [n // count + (index < n % count) for index in range(count)]
        started = time.perf_counter()
        await asyncio.gather(*(c.send(k) for c, k in zip(connections, shares, strict=True) if k))
        return (time.perf_counter() - started) / n

    async def measure(n: int) -> float:
        return await client.run(burst(n))

    return measure


@contextmanager
def _servers(redis_url: str) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """A server process per app, all started at once (each prints its port when it listens
    or is about to); all stopped together at the end."""
    processes: dict[str, subprocess.Popen[str]] = {}
    try:
        for name in ["bare", *ROWS]:
            command = [sys.executable, "-m", "benchmarks.uvicorn_row", name]
            if name.endswith("-redis"):
                command.append(redis_url)
            processes[name] = subprocess.Popen(
                command, cwd=_ROOT, stdout=subprocess.PIPE, text=True
            )
        yield processes
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            cast(IO[str], process.stdout).close()


async def uvicorn_section(settings: Settings) -> Section:
    section = Section(
        "i",
        "FastAPI under uvicorn (uvloop, httptools)",
        "throughput",
        f"Each app served by uvicorn in a process of its own; a uvloop client, {CONNECTIONS} "
        "keep-alive connections, one request in flight on each. Floor: the bare route. One "
        "client key, headers on; Redis: a private redis-server. Requests per second, and their "
        "ratio to the floor's (higher is better).",
    )
    missing = [name for name in ("uvloop", "httptools") if importlib.util.find_spec(name) is None]
    if missing:
        section.skipped = f"{' and '.join(missing)} not installed (the `bench` dependency group)."
        return section
    with ExitStack() as stack:
        redis_url = stack.enter_context(server_url("redis"))
        processes = stack.enter_context(_servers(redis_url))
        client = _ClientLoop()
        stack.callback(client.close)
        connections: dict[str, list[_Connection]] = {}
        for name, process in processes.items():
            port = await asyncio.to_thread(cast(IO[str], process.stdout).readline)
            if not port.strip().isdigit():
                raise RuntimeError(f"the {name!r} server did not start ({process.poll()})")
            connections[name] = await client.run(_connect(int(port)))
            client.connections += connections[name]
            throttled = name.endswith(("-memory", "-redis"))
            if throttled != (b"\r\nratelimit:" in connections[name][0].head):
                problem = "no RateLimit header" if throttled else "a RateLimit header"
                raise AssertionError(f"{name}: {problem} in {connections[name][0].head!r}")
        floor = Contender("bare route (floor)", _load(client, connections["bare"]))
        contenders = [
            Contender(row, _load(client, connections[name]), target, note)
            for name, (row, target, note) in ROWS.items()
        ]
        section.rows = await compare(
            floor,
            contenders,
            rounds=settings.rounds,
            ops=settings.ops(REQUESTS_PER_ROUND),
            kind="throughput",
        )
    # Where the floor is the bare route, a dependency also pays FastAPI's own price for
    # any dependency: the Depends rows against the no-op Depends, as (b) compares them.
    ratios = {row.name: row.ratio for row in section.rows}
    noop_ratio = ratios[ROWS["noop"][0]]
    against_noop = ", ".join(
        f"{backend} {ratios[ROWS[f'depends-{backend.lower()}'][0]] / noop_ratio:.2f}x"
        for backend in ("Memory", "Redis")
    )
    section.notes.append(
        f"`Depends(throttle)` against the no-op `Depends` (ratio of the medians): {against_noop}."
    )
    headroom = section.rows[-1].ratio  # the client ceiling over the bare app
    verdict = "not what limits the rows" if headroom >= 2 else "**maybe what limits the rows**"
    section.notes.append(
        f"The client alone goes {headroom:.1f}x as fast as the bare app: {verdict}."
    )
    return section


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)

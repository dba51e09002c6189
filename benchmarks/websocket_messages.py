"""What a message-level check costs, in process and through a real server.

Run: ``hatch run python benchmarks/websocket_messages.py``

1. In process: ``await throttle(websocket, message)`` on an accepted Starlette WebSocket,
   against ``backend.apply`` of the same hit (the floor: the decision alone), on the
   in-memory backend. Microseconds per check, and the ratio to the floor.
2. Through uvicorn and the `websockets` client on loopback: an echo endpoint with and
   without a message throttle; microseconds per round trip (send, await the echo), and
   the ratio to the unthrottled echo.

Rounds are interleaved across the contenders so drift affects all alike; medians of the
per-round means are reported. The rate never refuses during the run: every check writes.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Awaitable, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketState
from websockets.asyncio.client import connect

from traffik import FixedWindow, InMemoryBackend, Rate, WebSocketThrottle, is_throttled
from traffik.strategies import NO_PARAMS

RATE = "1000000000/hour"
ROUNDS = 15
IN_PROCESS = 2_000
THROUGH_SERVER = 300


async def median_microseconds(
    contenders: dict[str, Callable[[], Awaitable[None]]], per_round: int
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(ROUNDS):
        for name, run in contenders.items():
            start = time.perf_counter()
            for _ in range(per_round):
                await run()
            samples[name].append((time.perf_counter() - start) / per_round * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(title: str, results: dict[str, float], floor: str) -> None:
    print(title)
    for name, micros in results.items():
        print(f"  {name:<28} {micros:8.1f} µs   x{micros / results[floor]:.2f}")


async def in_process() -> None:
    backend = InMemoryBackend(namespace="bench")
    throttle = WebSocketThrottle("bench", rate=RATE, backend=backend)

    async def receive() -> dict[str, str]:
        return {"type": "websocket.connect"}

    async def send(message: object) -> None:
        return None

    scope = {
        "type": "websocket",
        "path": "/ws",
        "root_path": "",
        "client": ("203.0.113.9", 5000),
        "headers": [],
        "query_string": b"",
    }
    websocket = WebSocket(scope, receive, send)
    websocket.application_state = WebSocketState.CONNECTED  # as after accept
    rate = Rate.parse(RATE)
    key = "bench:{203.0.113.9}:/ws:fixed_window"
    strategy = FixedWindow()

    async def floor() -> None:
        await backend.apply(key, strategy, rate, 1, NO_PARAMS)

    async def check() -> None:
        await throttle(websocket, "hello")

    results = await median_microseconds(
        {"backend.apply (floor)": floor, "throttle(websocket, msg)": check}, IN_PROCESS
    )
    report("In process, in-memory backend:", results, "backend.apply (floor)")


async def through_server() -> None:
    backend = InMemoryBackend(namespace="bench-server")
    throttle = WebSocketThrottle("bench-server", rate=RATE, backend=backend)

    async def plain(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text)

    async def throttled_echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await throttle(websocket, text)
            if not is_throttled(websocket):
                await websocket.send_text(text)

    app = Starlette(routes=[WebSocketRoute("/plain", plain), WebSocketRoute("/t", throttled_echo)])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if task.done():
            task.result()  # the server failed to start: say why
        await asyncio.sleep(0.01)
    try:
        async with (
            connect(f"ws://127.0.0.1:{port}/plain") as unthrottled,
            connect(f"ws://127.0.0.1:{port}/t") as limited,
        ):

            async def echo_plain() -> None:
                await unthrottled.send("hello")
                await unthrottled.recv()

            async def echo_limited() -> None:
                await limited.send("hello")
                await limited.recv()

            results = await median_microseconds(
                {"echo (floor)": echo_plain, "echo + message check": echo_limited},
                THROUGH_SERVER,
            )
    finally:
        server.should_exit = True
        await task
    report("Through uvicorn + websockets on loopback (one round trip per message):", results,
           "echo (floor)")  # fmt: skip


async def main() -> None:
    await in_process()
    await through_server()


if __name__ == "__main__":
    asyncio.run(main())

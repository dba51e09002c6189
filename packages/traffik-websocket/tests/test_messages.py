"""Messages: JSON notices on an open socket, recovery, byte budgets, keys, shadow mode,
closing instead, several limits on one message, queueing delays."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from traffik import (
    EXEMPTED,
    Decision,
    ExemptedType,
    InMemoryBackend,
    LeakyBucketWithQueue,
    ManualClock,
    WebSocketThrottle,
    get_decision,
    get_retry_after,
    is_throttled,
    message_size,
    remote_address,
)

ClientFactory = Callable[..., TestClient]

Check = Callable[[WebSocket, str], Any]


def echo_app(check: Check, *, framework: str = "fastapi") -> FastAPI | Starlette:
    """An app that checks each text message with ``check(websocket, data)`` and echoes the
    messages it lets through; a refused message is skipped (``is_throttled``)."""

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            async for data in websocket.iter_text():
                await check(websocket, data)
                if is_throttled(websocket):
                    continue
                await websocket.send_text("echo:" + data)
        except WebSocketDisconnect:
            pass

    if framework == "fastapi":
        api = FastAPI()
        api.websocket("/ws")(endpoint)
        return api
    return Starlette(routes=[WebSocketRoute("/ws", endpoint)])


def exchange(client: TestClient, messages: list[str], path: str = "/ws") -> list[Any]:
    """Send each message on one connection and collect one reply per message: the echo
    (a string) or the notice (a dict)."""
    import json

    replies: list[Any] = []
    with client.websocket_connect(path) as websocket:
        for message in messages:
            websocket.send_text(message)
            reply = websocket.receive_text()
            replies.append(json.loads(reply) if reply.startswith("{") else reply)
    return replies


NOTICE_20 = {"type": "rate_limit", "error": "Too many messages", "retry_after": 20}


@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
def test_over_the_limit_a_message_gets_a_notice_and_the_socket_stays_open(
    framework: str, backend: InMemoryBackend, clock: ManualClock, client_for: ClientFactory
) -> None:
    throttle = WebSocketThrottle(f"messages-{framework}", rate="3/min", backend=backend)
    client = client_for(echo_app(throttle, framework=framework))

    with client.websocket_connect("/ws") as websocket:
        replies = []
        for index in range(5):
            websocket.send_text(str(index))
            replies.append(websocket.receive_json() if index >= 3 else websocket.receive_text())
        assert replies == ["echo:0", "echo:1", "echo:2", NOTICE_20, NOTICE_20]

        clock.advance(20)  # the next minute, on the same socket
        websocket.send_text("5")
        assert websocket.receive_text() == "echo:5"


def test_the_notice_rounds_the_wait_up_to_whole_seconds(
    backend: InMemoryBackend, clock: ManualClock, client_for: ClientFactory
) -> None:
    throttle = WebSocketThrottle("messages-round", rate="1/min", backend=backend)
    client = client_for(echo_app(throttle))
    clock.advance(19.001)  # 0.999 s before the next minute
    assert exchange(client, ["a", "b"]) == ["echo:a", {**NOTICE_20, "retry_after": 1}]


def test_is_throttled_and_get_retry_after_describe_the_message_just_checked(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = WebSocketThrottle("messages-wait", rate="1/min", backend=backend)
    seen: list[tuple[bool, float]] = []

    async def check(websocket: WebSocket, data: str) -> None:
        await throttle(websocket, data)
        seen.append((is_throttled(websocket), get_retry_after(websocket)))

    client = client_for(echo_app(check))
    exchange(client, ["a", "b"])
    assert seen == [(False, 0.0), (True, 20.0)]


def test_notices_carry_extra_fields_from_the_context(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = WebSocketThrottle(
        "messages-extras",
        rate="1/min",
        backend=backend,
        context={"extras": {"channel": "chat"}, "error": "Slow down"},
    )

    async def check(websocket: WebSocket, data: str) -> None:
        await throttle(websocket, data, context={"extras": {"channel": "chat", "seq": data}})

    client = client_for(echo_app(check))
    assert exchange(client, ["1", "2"]) == [
        "echo:1",
        {"type": "rate_limit", "error": "Slow down", "retry_after": 20, "channel": "chat",
         "seq": "2"},
    ]  # fmt: skip


def test_a_custom_handler_receives_the_connection_decision_throttle_and_context(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    calls: list[tuple[Decision, WebSocketThrottle, Mapping[str, Any]]] = []

    async def handler(
        websocket: WebSocket,
        decision: Decision,
        throttle: WebSocketThrottle,
        context: Mapping[str, Any],
    ) -> None:
        calls.append((decision, throttle, context))
        await websocket.send_text(f"wait {decision.retry_after:g}")

    throttle = WebSocketThrottle(
        "messages-handler", rate="1/min", backend=backend, on_throttled=handler,
        context={"room": "lobby"},
    )  # fmt: skip
    client = client_for(echo_app(throttle))
    assert exchange(client, ["a", "b"]) == ["echo:a", "wait 20"]
    [(decision, seen_throttle, context)] = calls
    assert not decision.allowed
    assert seen_throttle is throttle
    assert context == {"room": "lobby"}


def test_recovery_after_the_window_on_a_new_connection(
    backend: InMemoryBackend, clock: ManualClock, client_for: ClientFactory
) -> None:
    throttle = WebSocketThrottle("messages-recover", rate="2/min", backend=backend)
    client = client_for(echo_app(throttle))
    assert exchange(client, ["a", "b", "c"]) == ["echo:a", "echo:b", NOTICE_20]
    assert exchange(client, ["d"]) == [NOTICE_20]  # per client, across connections
    clock.advance(20)
    assert exchange(client, ["e", "f", "g"]) == [
        "echo:e",
        "echo:f",
        {**NOTICE_20, "retry_after": 60},
    ]


# -- byte budgets ---------------------------------------------------------------------


def test_a_byte_budget_counts_the_size_of_each_message(
    backend: InMemoryBackend, clock: ManualClock, client_for: ClientFactory
) -> None:
    volume = WebSocketThrottle("bytes", rate="10/min", backend=backend, cost=message_size)
    client = client_for(echo_app(volume))
    # 4 + 4 bytes pass; "été" is 5 bytes of UTF-8 and would make 13.
    assert exchange(client, ["abcd", "efgh", "été", "ij"]) == [
        "echo:abcd", "echo:efgh", NOTICE_20, "echo:ij",
    ]  # fmt: skip
    assert exchange(client, ["k"]) == [NOTICE_20]
    clock.advance(20)
    assert exchange(client, ["été"]) == ["echo:été"]


def test_a_byte_budget_with_the_cost_given_per_call(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    volume = WebSocketThrottle("bytes-call", rate="6/min", backend=backend)

    async def check(websocket: WebSocket, data: str) -> None:
        await volume(websocket, cost=len(data))

    client = client_for(echo_app(check))
    assert exchange(client, ["abc", "def", "g"]) == ["echo:abc", "echo:def", NOTICE_20]


def test_binary_messages_and_asgi_messages_are_weighed_in_bytes(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    volume = WebSocketThrottle("bytes-binary", rate="8/min", backend=backend, cost=message_size)
    api = FastAPI()

    @api.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            await volume(websocket, message)
            await websocket.send_text("refused" if is_throttled(websocket) else "ok")

    client = client_for(api)
    with client.websocket_connect("/ws") as websocket:
        websocket.send_bytes(b"\x00" * 5)
        assert websocket.receive_text() == "ok"
        websocket.send_text("xyz")
        assert websocket.receive_text() == "ok"
        websocket.send_bytes(b"\x01")
        assert websocket.receive_json() == NOTICE_20
        assert websocket.receive_text() == "refused"


def test_a_message_larger_than_the_whole_budget_is_told_waiting_cannot_help(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    volume = WebSocketThrottle("bytes-huge", rate="4/min", backend=backend, cost=message_size)
    client = client_for(echo_app(volume))
    assert exchange(client, ["abcde", "abcd"]) == [{**NOTICE_20, "retry_after": None}, "echo:abcd"]


def test_a_cost_function_of_the_connection_alone(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    async def two(websocket: WebSocket) -> int:
        return 2

    throttle = WebSocketThrottle("messages-cost", rate="4/min", backend=backend, cost=two)
    client = client_for(echo_app(throttle))
    assert exchange(client, ["a", "b", "c"]) == ["echo:a", "echo:b", NOTICE_20]


# -- keys -----------------------------------------------------------------------------


def test_clients_are_counted_apart(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    throttle = WebSocketThrottle("messages-clients", rate="2/min", backend=backend)
    app = echo_app(throttle)
    first, second = client_for(app, host="10.0.0.1"), client_for(app, host="10.0.0.2")
    assert exchange(first, ["a", "b", "c"]) == ["echo:a", "echo:b", NOTICE_20]
    assert exchange(second, ["a", "b", "c"]) == ["echo:a", "echo:b", NOTICE_20]


def test_trusted_proxies_name_the_client_as_for_http(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = WebSocketThrottle(
        "messages-proxy", rate="1/min", backend=backend, identifier=remote_address(["10.0.0.1"])
    )
    client = client_for(echo_app(throttle), host="10.0.0.1")  # the proxy

    def send_as(address: str, message: str) -> Any:
        with client.websocket_connect("/ws", headers={"x-forwarded-for": address}) as websocket:
            websocket.send_text(message)
            return websocket.receive_text()

    assert send_as("203.0.113.7", "a") == "echo:a"
    assert send_as("203.0.113.8", "b") == "echo:b"
    assert send_as("203.0.113.7", "c").startswith("{")


def test_a_budget_per_connection(backend: InMemoryBackend, client_for: ClientFactory) -> None:
    throttle = WebSocketThrottle(
        "messages-conn", rate="2/min", backend=backend, key_by="connection"
    )
    api = FastAPI()

    @api.websocket("/ws", dependencies=[Depends(throttle)])  # never limits handshakes
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        async for data in websocket.iter_text():
            await throttle(websocket, data)
            if not is_throttled(websocket):
                await websocket.send_text("echo:" + data)

    client = client_for(api)
    for _ in range(3):  # each connection, same client, has its own two messages
        assert exchange(client, ["a", "b", "c"]) == ["echo:a", "echo:b", NOTICE_20]


def test_the_identifier_runs_once_per_connection(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    calls: list[str] = []

    async def identify(websocket: WebSocket) -> str:
        calls.append(websocket.url.path)
        return "user-1"

    gate = WebSocketThrottle("identify-gate", rate="10/min", backend=backend, identifier=identify)
    messages = WebSocketThrottle("identify-msg", rate="3/min", backend=backend, identifier=identify)
    api = FastAPI()

    @api.websocket("/ws", dependencies=[Depends(gate)])
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        async for data in websocket.iter_text():
            await messages(websocket, data)
            if not is_throttled(websocket):
                await websocket.send_text("echo:" + data)

    client = client_for(api)
    replies = exchange(client, list("abcde"))
    assert replies == ["echo:a", "echo:b", "echo:c", NOTICE_20, NOTICE_20]
    assert calls == ["/ws"]  # the handshake's and five messages' checks: one call
    assert exchange(client, ["f"]) == [NOTICE_20]  # the same identity: the same budget
    assert calls == ["/ws", "/ws"]


def test_an_exempted_client_is_never_limited(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    async def staff(websocket: WebSocket) -> str | ExemptedType:
        return EXEMPTED

    throttle = WebSocketThrottle("messages-exempt", rate="1/min", backend=backend, identifier=staff)
    client = client_for(echo_app(throttle))
    assert exchange(client, ["a", "b", "c"]) == ["echo:a", "echo:b", "echo:c"]


# -- shadow mode, closing, closed sockets ---------------------------------------------------


def test_a_shadow_throttle_decides_and_records_but_never_refuses(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = WebSocketThrottle("messages-shadow", rate="1/min", backend=backend, shadow=True)
    decisions: list[Decision] = []

    async def check(websocket: WebSocket, data: str) -> None:
        await throttle(websocket, data)
        decision = get_decision(websocket, throttle)
        assert decision is not None
        decisions.append(decision)

    client = client_for(echo_app(check))
    assert exchange(client, ["a", "b", "c"]) == ["echo:a", "echo:b", "echo:c"]  # no notice
    assert [decision.allowed for decision in decisions] == [True, False, False]
    assert decisions[1].retry_after == 20.0

    throttle.shadow = False  # the same budget, now enforced
    assert exchange(client, ["d"]) == [NOTICE_20]


@pytest.mark.parametrize("code", [1008, 1013, 4429])
def test_a_throttle_may_close_the_socket_instead(
    code: int, backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = WebSocketThrottle(
        f"messages-close-{code}", rate="1/min", backend=backend, close_code=code
    )
    ended: list[int] = []
    api = FastAPI()

    @api.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            async for data in websocket.iter_text():
                await throttle(websocket, data)
                await websocket.send_text("echo:" + data)
        except WebSocketDisconnect as exc:
            ended.append(exc.code)

    client = client_for(api)
    with client.websocket_connect("/ws") as websocket:
        websocket.send_text("a")
        assert websocket.receive_text() == "echo:a"
        websocket.send_text("b")
        with pytest.raises(WebSocketDisconnect) as closed:
            websocket.receive_text()
    assert (closed.value.code, closed.value.reason) == (code, "Too many messages")
    assert ended == [code]


def test_a_refusal_on_a_socket_closed_meanwhile_raises_nothing(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = WebSocketThrottle("messages-closed", rate="1/min", backend=backend)
    outcome: list[object] = []
    api = FastAPI()

    @api.websocket("/ws")
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        data = await websocket.receive_text()
        await throttle(websocket, data)
        await websocket.close()
        try:
            await throttle(websocket, "after the close")  # refused: no notice can be sent
        except Exception as exc:  # pragma: no cover - what the test guards against
            outcome.append(exc)
        else:
            outcome.append(is_throttled(websocket))

    client = client_for(api)
    with client.websocket_connect("/ws") as websocket:
        websocket.send_text("a")
        with pytest.raises(WebSocketDisconnect) as closed:
            websocket.receive_text()
    assert closed.value.code == 1000  # our own close, not a notice
    assert outcome == [True]


# -- several limits on one message, queueing -------------------------------------------


def test_several_limits_on_one_message_are_all_or_nothing(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    count = WebSocketThrottle("multi-count", rate="2/min", backend=backend)
    volume = WebSocketThrottle("multi-bytes", rate="12/min", backend=backend, cost=message_size)
    decided: list[tuple[bool, bool]] = []
    left: list[tuple[int, int]] = []

    async def check(websocket: WebSocket, data: str) -> None:
        assert await count(websocket, data) is websocket
        assert await volume(websocket, data) is websocket
        first, second = get_decision(websocket, count), get_decision(websocket, volume)
        assert first is not None
        assert second is not None
        decided.append((first.allowed, second.allowed))
        count_stat, volume_stat = await count.stat(websocket), await volume.stat(websocket)
        assert count_stat is not None
        assert volume_stat is not None
        left.append((count_stat.remaining, volume_stat.remaining))

    client = client_for(echo_app(check))
    replies = exchange(client, ["abcdefgh", "xyzab", "xy", "w"])
    # "xyzab" is refused by the byte budget (8 + 5 > 12): the count gives its unit back.
    # "w" is refused by the count: the byte budget is not consumed. One notice each.
    assert replies == ["echo:abcdefgh", NOTICE_20, "echo:xy", NOTICE_20]
    # The byte budget was not asked about "w" (already refused): no limit applied to it.
    assert decided == [(True, True), (True, False), (True, True), (False, True)]
    assert left == [(1, 4), (1, 4), (0, 2), (0, 2)]


def test_a_queueing_strategy_delays_the_message_it_admits(
    backend: InMemoryBackend, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import traffik.fastapi.ledger

    waited: list[float] = []

    async def sleep(delay: float) -> None:  # records instead of waiting
        waited.append(delay)

    monkeypatch.setattr(traffik.fastapi.ledger, "sleep", sleep)
    throttle = WebSocketThrottle(
        "messages-queue", rate="3/min", backend=backend, strategy=LeakyBucketWithQueue()
    )
    client = client_for(echo_app(throttle))
    assert exchange(client, ["a", "b", "c"]) == ["echo:a", "echo:b", "echo:c"]
    assert waited == [20.0, 40.0]  # one slot every 20 s: the 2nd and 3rd wait their turn


def test_a_throttle_without_a_backend_uses_the_one_the_lifespan_runs(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    gate = WebSocketThrottle("lifespan-gate", rate="5/min")
    messages = WebSocketThrottle("lifespan-messages", rate="1/min")
    api = FastAPI(lifespan=backend.lifespan)

    @api.websocket("/ws", dependencies=[Depends(gate)])
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        async for data in websocket.iter_text():
            await messages(websocket, data)
            if not is_throttled(websocket):
                await websocket.send_text("echo:" + data)

    client = client_for(api)
    assert exchange(client, ["a", "b"]) == ["echo:a", NOTICE_20]
    assert len(backend) == 2  # both budgets live in the application's backend


@pytest.mark.parametrize(("key_by", "shared"), [("route", True), ("path", False)])
def test_rooms_share_a_budget_by_route_and_not_by_path(
    key_by: Any, shared: bool, backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    throttle = WebSocketThrottle(f"rooms-{key_by}", rate="1/min", backend=backend, key_by=key_by)
    api = FastAPI()

    @api.websocket("/rooms/{room}")
    async def endpoint(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        async for data in websocket.iter_text():
            await throttle(websocket, data)
            if not is_throttled(websocket):
                await websocket.send_text("echo:" + data)

    client = client_for(api)
    assert exchange(client, ["a"], path="/rooms/lobby") == ["echo:a"]
    assert exchange(client, ["b"], path="/rooms/games") == [NOTICE_20 if shared else "echo:b"]


def test_rules_decide_which_connections_are_limited(
    backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    from starlette.requests import HTTPConnection

    from traffik import Bypass

    async def is_internal(connection: HTTPConnection) -> bool:  # rules take any connection
        return connection.headers.get("x-internal") == "yes"

    throttle = WebSocketThrottle(
        "messages-rules", rate="1/min", backend=backend, rules=[Bypass(predicate=is_internal)]
    )
    client = client_for(echo_app(throttle))
    with client.websocket_connect("/ws", headers={"x-internal": "yes"}) as websocket:
        for message in "abc":
            websocket.send_text(message)
            assert websocket.receive_text() == "echo:" + message
    assert exchange(client, ["d", "e"]) == ["echo:d", NOTICE_20]


@pytest.mark.parametrize("wait", [0.0, -1.0, float("nan"), 1e-6])
def test_the_notice_never_says_to_retry_at_once(
    wait: float, backend: InMemoryBackend, client_for: ClientFactory
) -> None:
    # An on_error handler decides the refusal (the identifier fails): whatever wait it
    # names, the client is told at least one whole second.
    async def refuse(context: Any) -> Decision:
        return Decision(False, 1, 0, 0.0, wait)

    async def unidentifiable(websocket: Any) -> str:
        raise LookupError("no session store")

    throttle = WebSocketThrottle(
        "messages-down", rate="5/min", backend=backend, identifier=unidentifiable, on_error=refuse
    )
    client = client_for(echo_app(throttle))
    assert exchange(client, ["a"]) == [{**NOTICE_20, "retry_after": 1}]


def test_a_dynamic_backend_throttle_counts_each_tenants_messages_in_its_own_backend(
    clock: ManualClock, client_for: Callable[..., TestClient]
) -> None:
    tenants = {name: InMemoryBackend(namespace=name, clock=clock) for name in ("a", "b")}
    throttle = WebSocketThrottle("ws:tenants", "2/min", dynamic_backend=True)

    async def check(websocket: WebSocket, data: str) -> None:
        async with tenants[websocket.query_params["tenant"]]:  # this connection's tenant
            await throttle(websocket, data)

    client = client_for(echo_app(check))
    for name in ("a", "b"):  # the same client address, a budget per tenant
        replies = exchange(client, ["1", "2", "3"], path=f"/ws?tenant={name}")
        assert replies[:2] == ["echo:1", "echo:2"]
        assert replies[2]["type"] == "rate_limit"
        assert len(tenants[name]) == 1

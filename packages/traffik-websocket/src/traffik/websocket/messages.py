"""What throttling decided for the message being checked, and what a message weighs.

Message-level checks are recorded in a `MessageLedger` at the connection's
``scope["traffik.ledger"]`` — where `traffik.is_throttled` and `traffik.get_wait` look —
which replaces the previous message's. One message may be checked by several throttles
(a message count and a byte budget, say); their checks share one ledger, and so:

* ``is_throttled(websocket)`` tells whether *any* of them refused the message;
* a message refused by one limit consumes none of the others: what earlier checks took
  is given back, and later checks of it consume nothing and return the refusal.

A check belongs to the message of the ledger unless its throttle has already checked
that message, or it passes a different message object than the earlier checks did;
then a new message begins. So: call each throttle once per message, passing the
message (or passing nothing to all of them).

Shadow throttles are recorded too, but their refusals refuse nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection
from starlette.types import Scope

from traffik.callbacks import arguments_taken, describe
from traffik.decision import Decision
from traffik.exceptions import ConfigurationError
from traffik.fastapi import LEDGER_KEY, RequestLedger

if TYPE_CHECKING:
    from traffik.fastapi import ConnectionThrottle

__all__ = [
    "MessageCost",
    "MessageLedger",
    "current_message",
    "ledger_for_message",
    "message_size",
]


class MessageLedger(RequestLedger):
    """The checks of one message.

    :param message: the message object the checks were given (None when none was).
    """

    __slots__ = ("message",)

    def __init__(self, message: Any = None) -> None:
        super().__init__()
        self.message = message

    def takes(self, throttle: ConnectionThrottle, message: Any) -> bool:
        """Whether a check by ``throttle`` of ``message`` belongs to this message."""
        if message is not None and self.message is not None and message is not self.message:
            return False
        return all(outcome.throttle is not throttle for outcome in self.outcomes)

    @property
    def refusal(self) -> Decision | None:
        """The decision that refused this message, if one did (shadow throttles never do)."""
        for outcome in self.outcomes:
            if not outcome.decision.allowed and not outcome.throttle.shadow:
                return outcome.decision
        return None

    @property
    def throttled(self) -> bool:
        return self.refusal is not None

    @property
    def wait(self) -> float:
        return max(
            (
                outcome.decision.retry_after
                for outcome in self.outcomes
                if not outcome.decision.allowed and not outcome.throttle.shadow
            ),
            default=0.0,
        )


def ledger_for_message(scope: Scope, throttle: ConnectionThrottle, message: Any) -> MessageLedger:
    """The ledger a check of ``message`` by ``throttle`` goes in (see the module docstring)."""
    ledger = scope.get(LEDGER_KEY)
    if isinstance(ledger, MessageLedger) and ledger.takes(throttle, message):
        if ledger.message is None:
            ledger.message = message
        return ledger
    ledger = scope[LEDGER_KEY] = MessageLedger(message)
    return ledger


def current_message(scope: Scope) -> Any:
    """The message being checked on this connection (None at the handshake)."""
    ledger = scope.get(LEDGER_KEY)
    return ledger.message if isinstance(ledger, MessageLedger) else None


class MessageCost:
    """A cost that weighs the message being checked: ``cost=MessageCost(weigh)``, with
    ``async def weigh(websocket, message) -> int`` (the message is None at the handshake).

    A plain function given as ``cost=`` takes the connection alone or, as in traffik 1.x,
    the connection and the throttle's context; wrapping it here says that its second
    argument is the message instead. Calling a `MessageCost` calls the function.
    """

    __slots__ = ("function",)

    def __init__(self, function: Callable[[Any, Any], Awaitable[int] | int]) -> None:
        forms = ("async def weigh(websocket, message) -> int",)
        arguments_taken(function, (2,), "The function of a MessageCost", forms)
        self.function = function

    async def __call__(self, connection: HTTPConnection, message: Any) -> int:
        result = self.function(connection, message)
        if inspect.isawaitable(result):
            result = await result
        return result

    def __repr__(self) -> str:
        return f"MessageCost({describe(self.function)})"


async def _message_size(connection: HTTPConnection, message: Any) -> int:
    """A message's size in bytes: the cost function of byte budgets.

    ``WebSocketThrottle("uploads", rate="1000000/min", cost=message_size)`` lets each
    client send a million bytes a minute; pass each message to the check:
    ``await throttle(websocket, data)``. Counts ``bytes`` (and other buffers), ``str`` (as
    UTF-8) and ASGI ``websocket.receive`` messages; no message (the handshake) weighs 0.
    """
    if message is None:
        return 0
    if isinstance(message, str):
        return len(message) if message.isascii() else len(message.encode("utf-8"))
    if isinstance(message, bytes | bytearray):
        return len(message)
    if isinstance(message, memoryview):
        return message.nbytes
    if isinstance(message, dict) and message.get("type") == "websocket.receive":
        payload = message.get("bytes")
        return await _message_size(
            connection, payload if payload is not None else message.get("text")
        )
    raise ConfigurationError(
        f"message_size weighs str and bytes messages, got {type(message).__name__}: pass the "
        "raw message (receive_text / receive_bytes), or a cost of your own"
    )


message_size = MessageCost(_message_size)
"""A message's size in bytes: the cost of byte budgets (see `_message_size`)."""

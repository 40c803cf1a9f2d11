"""SignalR Core's JSON hub protocol, without I/O.

Every message is one JSON object followed by the record separator 0x1E. The client opens with
the handshake `{"protocol": "json", "version": 1}`; the server answers `{}` (or `{"error": ...}`)
before anything else. Message types: 1 invocation, 2 stream item, 3 completion, 4 stream
invocation, 5 cancel invocation, 6 ping, 7 close. `HubProtocol.feed(text)` turns received text
into events; a malformed message becomes a `BadMessage` event and the connection goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

RS = "\x1e"
# No message of the live timing feed comes near this; a buffer beyond it is garbage or a flood.
MAX_MESSAGE_CHARS = 16 * 1024 * 1024

INVOCATION, STREAM_ITEM, COMPLETION, STREAM_INVOCATION, CANCEL_INVOCATION, PING, CLOSE = range(1, 8)


@dataclass(frozen=True)
class HandshakeDone:
    """The server accepted the handshake."""


@dataclass(frozen=True)
class HandshakeFailed:
    error: str


@dataclass(frozen=True)
class Invocation:
    target: str
    arguments: list[Any]
    invocation_id: str | None = None


@dataclass(frozen=True)
class Completion:
    invocation_id: str
    result: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Close:
    error: str | None = None
    allow_reconnect: bool = False


@dataclass(frozen=True)
class BadMessage:
    """A message that is not valid SignalR JSON; `text` is its start, for the log."""

    reason: str
    text: str


Event = HandshakeDone | HandshakeFailed | Invocation | Completion | Ping | Close | BadMessage


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":")) + RS


class HubProtocol:
    """One connection's protocol state: the handshake, the framing and invocation ids."""

    def __init__(self, max_message_chars: int = MAX_MESSAGE_CHARS) -> None:
        self.max_message_chars = max_message_chars
        self.handshake_done = False
        self._buffer = ""
        self._discarding = False  # inside an over-long message: drop text up to its separator
        self._next_id = 0

    def handshake_request(self) -> str:
        return encode({"protocol": "json", "version": 1})

    def invoke(self, target: str, arguments: list[Any]) -> tuple[str, str]:
        """(invocation id, text) of an invocation whose completion the caller waits for."""
        self._next_id += 1
        invocation_id = str(self._next_id)
        message = {
            "type": INVOCATION,
            "invocationId": invocation_id,
            "target": target,
            "arguments": arguments,
        }
        return invocation_id, encode(message)

    def ping(self) -> str:
        return encode({"type": PING})

    def close(self) -> str:
        return encode({"type": CLOSE})

    def feed(self, text: str | bytes) -> list[Event]:
        """Events of the text received; partial messages wait for the rest."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as error:
                return [BadMessage(f"not UTF-8: {error}", repr(text[:80]))]
        events: list[Event] = []
        *complete, rest = (self._buffer + text).split(RS)
        for part in complete:
            if self._discarding:
                self._discarding = False
                continue
            if part.strip():
                events.append(self._message(part))
        if self._discarding:
            rest = ""
        elif len(rest) > self.max_message_chars:
            events.append(
                BadMessage(f"message longer than {self.max_message_chars} characters", rest[:80])
            )
            rest, self._discarding = "", True
        self._buffer = rest
        return events

    def _message(self, text: str) -> Event:
        try:
            message = json.loads(text)
        except ValueError as error:
            return BadMessage(f"invalid JSON: {error}", text[:80])
        if not isinstance(message, dict):
            return BadMessage("not a JSON object", text[:80])
        if not self.handshake_done:
            if "error" in message:
                return HandshakeFailed(str(message["error"]))
            if "type" not in message:
                self.handshake_done = True
                return HandshakeDone()
            # A message before the handshake answer: the server skipped it; take it as done.
            self.handshake_done = True
        try:
            return self._typed(message)
        except (KeyError, TypeError, ValueError) as error:
            return BadMessage(f"malformed message: {error!r}", text[:80])

    @staticmethod
    def _typed(message: dict[str, Any]) -> Event:
        kind = message.get("type")
        if kind == INVOCATION:
            arguments = message.get("arguments", [])
            if not isinstance(message["target"], str) or not isinstance(arguments, list):
                raise ValueError("invocation needs a string target and a list of arguments")
            return Invocation(message["target"], arguments, message.get("invocationId"))
        if kind == COMPLETION:
            error = message.get("error")
            return Completion(
                str(message["invocationId"]),
                message.get("result"),
                None if error is None else str(error),
            )
        if kind == PING:
            return Ping()
        if kind == CLOSE:
            error = message.get("error")
            return Close(None if error is None else str(error), bool(message.get("allowReconnect")))
        if kind in (STREAM_ITEM, STREAM_INVOCATION, CANCEL_INVOCATION):
            raise ValueError(f"message type {kind} is not used by this client")
        raise ValueError(f"unknown message type {kind!r}")

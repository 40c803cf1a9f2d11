"""The command protocol without I/O: bytes in, parsed commands out; replies formatted as bytes.

Wire format (Dareplane dareplane-utils 0.0.24 compatible): a command is UTF-8 text ended by
`;`, either `NAME` or `NAME|{json object}`; the object becomes keyword arguments. Empty
segments and surrounding whitespace are ignored.

A connection starts in legacy (Dareplane) mode, where only UP (`1`) and GET_PCOMMS (names joined
by `|`) reply, without a line end. After `HELLO|{"protocol": 2}` every command gets exactly one
JSON reply line. Both reply styles are formatted here so the server only moves bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DELIMITER = b";"
PROTOCOL_VERSION = 2
# Large enough for any realistic payload, far below the 10 MB a broken client might send
# without ever ending its message.
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Command:
    """One well-formed command: its name and the keyword arguments from its JSON object."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BadMessage:
    """A message that could not be parsed; `name` is the command name when it was readable."""

    name: str | None
    error: str


Message = Command | BadMessage


class CommandParser:
    """Splits a byte stream into messages at `;` and parses each one.

    Bytes without a `;` are held until one arrives, up to `max_message_bytes`. Past that the
    message is reported once as too long and its bytes are dropped up to and including the next
    `;`, so the tail of an over-long message is never taken for a command.
    """

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.max_message_bytes = max_message_bytes
        self._buffer = bytearray()
        self._discarding = False

    @property
    def pending_bytes(self) -> int:
        """Bytes held of a message whose `;` has not arrived yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        messages: list[Message] = []
        start = 0
        while True:
            end = data.find(DELIMITER, start)
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
            elif len(self._buffer) + end - start > self.max_message_bytes:
                messages.append(self._too_long())
                self._buffer.clear()
            elif self._buffer:
                self._buffer += data[start:end]
                self._append_parsed(bytes(self._buffer), messages)
                self._buffer.clear()
            else:
                self._append_parsed(data[start:end], messages)
            start = end + 1
        if not self._discarding and start < len(data):
            self._buffer += data[start:]
            if len(self._buffer) > self.max_message_bytes:
                messages.append(self._too_long())
                self._buffer.clear()
                self._discarding = True
        return messages

    def _too_long(self) -> BadMessage:
        return BadMessage(
            None, f"message longer than {self.max_message_bytes} bytes: dropped up to its ';'"
        )

    @staticmethod
    def _append_parsed(raw: bytes, messages: list[Message]) -> None:
        # Bare commands (UP, STATUS ...) repeat all the time: parse each spelling once.
        message = _BARE_COMMANDS.get(raw, _UNSEEN)
        if message is _UNSEEN:
            message = parse_message(raw)
            if b"|" not in raw and len(_BARE_COMMANDS) < _BARE_COMMANDS_KEPT:
                _BARE_COMMANDS[raw] = message
        if message is not None:
            messages.append(message)


_UNSEEN = object()
_BARE_COMMANDS: dict[bytes, Message | None] = {}
_BARE_COMMANDS_KEPT = 1024


def parse_message(raw: bytes) -> Message | None:
    """Parse one message (the bytes between two `;`); None for an empty one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = raw[error.start : error.start + 1]
        return BadMessage(
            None, f"message is not valid UTF-8 (byte 0x{bad.hex()} at offset {error.start})"
        )
    text = text.strip()
    if not text:
        return None
    name, bar, payload = text.partition("|")
    name = name.strip()
    if not name:
        return BadMessage(None, f"message {_excerpt(text)} has no command name before '|'")
    payload = payload.strip()
    if not bar or not payload:
        return Command(name)
    try:
        kwargs = json.loads(payload)
    except json.JSONDecodeError as error:
        if "|" in payload:
            # Dareplane allows one '|' only; say so rather than blame the JSON.
            return BadMessage(
                name, f"expected NAME or NAME|{{json object}}, found more than one '|' in {name}"
            )
        return BadMessage(name, f"invalid JSON payload for {name}: {error}")
    except RecursionError:
        # json's parser recurses per level: a payload nested deeper than Python's stack allows
        # must be refused like any other bad payload, not take the connection's thread down.
        return BadMessage(name, f"JSON payload of {name} is nested too deeply")
    if not isinstance(kwargs, dict):
        return BadMessage(
            name,
            f"payload of {name} must be a JSON object of keyword arguments, "
            f"not a JSON {_json_type(kwargs)}",
        )
    return Command(name, kwargs)


def encode_command(name: str, kwargs: dict[str, Any] | None = None) -> bytes:
    """The wire form of a command, as clients send it."""
    if not name or any(char in name for char in ";|") or name != name.strip():
        raise ValueError(f"invalid command name {name!r}")
    if not kwargs:
        return f"{name};".encode()
    payload = json.dumps(kwargs, separators=(",", ":"), allow_nan=False)
    # ';' ends a message and Dareplane allows one '|'; in JSON both can only occur inside
    # strings, where their \u escapes mean the same.
    payload = payload.replace(";", "\\u003b").replace("|", "\\u007c")
    return f"{name}|{payload};".encode()


class CommandConnection:
    """One connection's protocol state: its parser and whether it speaks JSON mode yet."""

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.parser = CommandParser(max_message_bytes)
        self.json_mode = False
        # UP is the health check everyone polls: its reply is ready-made.
        self.up_reply = _LEGACY_UP

    def feed(self, data: bytes) -> list[Message]:
        return self.parser.feed(data)

    def hello(self, kwargs: dict[str, Any]) -> str | None:
        """Switch to JSON mode for `HELLO|{"protocol": 2}`; the reason when refused."""
        version = kwargs.get("protocol", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION:
            return f"unsupported protocol {version!r}: this server speaks {PROTOCOL_VERSION}"
        self.json_mode = True
        self.up_reply = _JSON_UP
        return None

    def reply(self, cmd: str, result: Any) -> bytes:
        return json_ok(cmd, result) if self.json_mode else legacy_reply(cmd, result)

    def error(self, cmd: str | None, error: str) -> bytes:
        """JSON mode's error line; legacy mode has no error reply (the server logs instead)."""
        return json_error(cmd, error) if self.json_mode else b""


def json_ok(cmd: str, result: Any) -> bytes:
    """A JSON-mode success line; a result JSON cannot carry becomes an error line instead."""
    try:
        text = json.dumps({"ok": True, "cmd": cmd, "result": result}, allow_nan=False)
    except (TypeError, ValueError) as error:
        return json_error(cmd, f"the result of {cmd} cannot be sent as JSON: {error}")
    return text.encode() + b"\n"


def json_error(cmd: str | None, error: str) -> bytes:
    return json.dumps({"ok": False, "cmd": cmd, "error": error}).encode() + b"\n"


def legacy_reply(cmd: str, result: Any) -> bytes:
    """Dareplane's replies: UP answers `1`, GET_PCOMMS the names joined by `|`, others nothing."""
    if cmd == "UP":
        return b"1"
    if cmd == "GET_PCOMMS":
        return "|".join(result).encode()
    return b""


_LEGACY_UP = legacy_reply("UP", 1)
_JSON_UP = json_ok("UP", 1)


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _excerpt(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")

"""The log wire format, without I/O: a 4-byte big-endian length, then one UTF-8 JSON object.

`FrameDecoder` is fed whatever bytes arrived and returns what they completed. After an error
it is spent: the connection it belongs to is to be closed (its earlier frames stand).
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from typing import Any

import orjson

HEADER = struct.Struct(">L")
_LONG_DIGITS = re.compile(rb"\d{19}")
# A log record with a long traceback is a few kB; a megabyte is generous and still bounds what
# one connection can make the server hold.
MAX_FRAME_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded JSON object and the exact payload bytes it came from."""

    obj: dict[str, Any]
    payload: bytes


@dataclass(frozen=True, slots=True)
class FrameError:
    """Why the byte stream cannot be trusted any further."""

    reason: str


def encode_frame(obj: dict[str, Any]) -> bytes:
    return encode_payload(json.dumps(obj, ensure_ascii=False, default=str).encode())


def encode_payload(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


class FrameDecoder:
    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._failed = False

    @property
    def pending(self) -> int:
        """Bytes held towards a frame not yet complete."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        if self._failed:
            return []
        self._buffer += data
        events: list[Frame | FrameError] = []
        offset = 0
        buffer = self._buffer
        while len(buffer) - offset >= HEADER.size:
            (length,) = HEADER.unpack_from(buffer, offset)
            if length > self.max_frame_bytes:
                return self._fail(
                    events,
                    f"frame length {length} over the limit of {self.max_frame_bytes} bytes",
                )
            end = offset + HEADER.size + length
            if len(buffer) < end:
                break
            payload = bytes(buffer[offset + HEADER.size : end])
            offset = end
            decoded = _decode(payload)
            if isinstance(decoded, FrameError):
                return self._fail(events, decoded.reason)
            events.append(Frame(decoded, payload))
        del buffer[:offset]
        return events

    def _fail(self, events: list[Frame | FrameError], reason: str) -> list[Frame | FrameError]:
        self._failed = True
        self._buffer.clear()
        events.append(FrameError(reason))
        return events


def _decode(payload: bytes) -> dict[str, Any] | FrameError:
    # orjson is the fast path (a third of json's cost), but it turns integers beyond 64 bits
    # into floats: a payload with a 19-digit run (maybe such an integer) goes to json.
    if not _LONG_DIGITS.search(payload):
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass  # json decides, and says what is wrong (it also takes NaN; orjson does not)
        else:
            if isinstance(obj, dict):
                return obj
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        return FrameError(f"payload is not UTF-8 ({error.reason} at byte {error.start})")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as error:
        return FrameError(f"payload is not JSON: {str(error)[:200]}")
    if not isinstance(obj, dict):
        return FrameError(f"payload is JSON {type(obj).__name__}, not an object")
    return obj

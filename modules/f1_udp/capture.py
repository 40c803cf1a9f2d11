"""Raw UDP capture files: every datagram the game sent, with the time it arrived.

The decoder writes them (`--capture FILE`), the game simulator replays them, and anyone can
read them without Raceplane. All integers and floats are little-endian.

    file header, 12 bytes
        offset 0   8 bytes   magic  b"RPUDPCAP"
        offset 8   uint32    format version (1)
    then one record per datagram, back to back, until the end of the file
        offset 0   float64   receive time, seconds since the Unix epoch (time.time())
        offset 8   uint32    payload length N (at most 65535, the largest UDP payload)
        offset 12  N bytes   the datagram exactly as received

A file cut short (a recorder killed mid-write) keeps every complete record; readers yield those
and then report how many trailing bytes were left over.

`CaptureParser` is the sans-IO core: feed it bytes in any chunking, it returns `Datagram`s.
`CaptureWriter` and `read_capture` are the file edges.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

MAGIC = b"RPUDPCAP"
VERSION = 1
FILE_HEADER = struct.Struct("<8sI")
RECORD_HEADER = struct.Struct("<dI")
MAX_DATAGRAM = 65535


class CaptureError(ValueError):
    """A capture file that is not one, is of an unknown version, or is corrupt or cut short."""


@dataclass(frozen=True, slots=True)
class Datagram:
    time_s: float
    payload: bytes


def file_header() -> bytes:
    return FILE_HEADER.pack(MAGIC, VERSION)


def encode_record(time_s: float, payload: bytes) -> bytes:
    if len(payload) > MAX_DATAGRAM:
        raise CaptureError(f"datagram of {len(payload)} bytes exceeds {MAX_DATAGRAM}")
    return RECORD_HEADER.pack(time_s, len(payload)) + payload


class CaptureParser:
    """Bytes of a capture file in, datagrams out; holds partial records between feeds."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._header_seen = False
        self.offset = 0  # file offset of the first byte still buffered, for error messages

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a complete header or record."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Datagram]:
        self._buffer += data
        if not self._header_seen:
            if len(self._buffer) < FILE_HEADER.size:
                if not MAGIC.startswith(bytes(self._buffer[: len(MAGIC)])):
                    raise CaptureError("not a Raceplane UDP capture (bad magic)")
                return []
            magic, version = FILE_HEADER.unpack_from(self._buffer)
            if magic != MAGIC:
                raise CaptureError("not a Raceplane UDP capture (bad magic)")
            if version != VERSION:
                raise CaptureError(
                    f"capture format version {version} is not supported (only {VERSION})"
                )
            self._consume(FILE_HEADER.size)
            self._header_seen = True
        datagrams: list[Datagram] = []
        while len(self._buffer) >= RECORD_HEADER.size:
            time_s, length = RECORD_HEADER.unpack_from(self._buffer)
            if length > MAX_DATAGRAM:
                raise CaptureError(
                    f"corrupt capture at byte {self.offset}: "
                    f"record length {length} > {MAX_DATAGRAM}"
                )
            end = RECORD_HEADER.size + length
            if len(self._buffer) < end:
                break
            datagrams.append(Datagram(time_s, bytes(self._buffer[RECORD_HEADER.size : end])))
            self._consume(end)
        return datagrams

    def close(self) -> None:
        """Declare the end of the file: raise if it was empty or ended inside a record."""
        if not self._header_seen:
            raise CaptureError("not a Raceplane UDP capture (file shorter than its header)")
        if self._buffer:
            raise CaptureError(
                f"capture cut short: {len(self._buffer)} trailing bytes at byte {self.offset} "
                "do not make a complete record"
            )

    def _consume(self, count: int) -> None:
        del self._buffer[:count]
        self.offset += count


class CaptureWriter:
    """Append datagrams to a new capture file. Not thread-safe: one writer thread per file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._file: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._file.write(file_header())
        self.count = 0

    def write(self, payload: bytes, time_s: float | None = None) -> None:
        self._file.write(encode_record(time.time() if time_s is None else time_s, payload))
        self.count += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def read_capture(path: Path | str, chunk_size: int = 1 << 16) -> Iterator[Datagram]:
    """Yield every complete datagram of a capture file; then raise CaptureError if cut short."""
    parser = CaptureParser()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield from parser.feed(chunk)
    parser.close()

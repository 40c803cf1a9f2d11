"""XDF 1.0 chunk encoding, without I/O: every method returns the bytes of complete chunks.

Layout (the XDF specification): the file starts with the magic `XDF:`, then chunks. A chunk is
NumLengthBytes (1 byte: 1, 4 or 8), Length (that many bytes, little endian; it counts the
2-byte tag and the content), Tag (uint16 LE), content. Tags: 1 FileHeader (XML), 2 StreamHeader
(uint32 stream id + XML), 3 Samples (stream id, varlen sample count, then per sample
TimeStampBytes 0|8, optional float64 timestamp, values), 4 ClockOffset (stream id, float64
collection time, float64 offset), 5 Boundary (a fixed 16-byte UUID), 6 StreamFooter (stream id
+ XML). String values are a varlen byte length followed by the bytes.

A sample may omit its timestamp when it equals the previous one plus 1/nominal_srate; readers
(pyxdf and ours) reconstruct it with exactly that float sum, so we omit it only when the sum
reproduces the real timestamp bit for bit.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

MAGIC = b"XDF:"
FILE_HEADER, STREAM_HEADER, SAMPLES, CLOCK_OFFSET, BOUNDARY, STREAM_FOOTER = 1, 2, 3, 4, 5, 6
BOUNDARY_UUID = bytes.fromhex("43A546DCCBF5410FB30ED5467383CBE4")

# channel_format name -> little-endian numpy dtype; strings have no fixed width.
NUMERIC_FORMATS: dict[str, str] = {
    "float32": "<f4",
    "double64": "<f8",
    "int8": "i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
}
STRING_FORMAT = "string"


class XdfError(ValueError):
    """Content that cannot be encoded (or decoded) as XDF."""


def varlen(value: int) -> bytes:
    """XDF's variable-length unsigned integer: a width byte (1, 4, 8), then the value."""
    if value < 0x100:
        return bytes((1, value))
    if value < 0x1_0000_0000:
        return b"\x04" + struct.pack("<I", value)
    return b"\x08" + struct.pack("<Q", value)


def chunk(tag: int, content: bytes | bytearray | memoryview) -> bytes:
    return varlen(len(content) + 2) + struct.pack("<H", tag) + bytes(content)


@dataclass
class StreamLayout:
    """What the encoder needs to know about a stream, read from its header XML."""

    name: str
    channel_count: int
    channel_format: str
    nominal_srate: float

    @classmethod
    def from_xml(cls, info_xml: str) -> StreamLayout:
        try:
            root = ET.fromstring(info_xml)
            layout = cls(
                name=root.findtext("name", ""),
                channel_count=int(root.findtext("channel_count", "")),
                channel_format=root.findtext("channel_format", ""),
                nominal_srate=float(root.findtext("nominal_srate", "0") or 0),
            )
        except (ET.ParseError, ValueError) as error:
            raise XdfError(f"stream header XML is not a valid LSL info: {error}") from error
        if layout.channel_format not in NUMERIC_FORMATS and layout.channel_format != STRING_FORMAT:
            raise XdfError(f"unknown channel_format {layout.channel_format!r}")
        if layout.channel_count < 1:
            raise XdfError(f"channel_count must be at least 1, not {layout.channel_count}")
        return layout

    @property
    def dtype(self) -> np.dtype | None:
        fmt = NUMERIC_FORMATS.get(self.channel_format)
        return None if fmt is None else np.dtype(fmt)

    @property
    def tdiff(self) -> float:
        return 1.0 / self.nominal_srate if self.nominal_srate > 0 else 0.0


@dataclass
class StreamTally:
    """Per-stream counts for the footer: first/last timestamp, samples, clock offsets."""

    layout: StreamLayout
    first_timestamp: float | None = None
    last_timestamp: float | None = None
    sample_count: int = 0
    clock_offsets: list[tuple[float, float]] = field(default_factory=list)


class XdfEncoder:
    """Encodes one XDF file's chunks. Keeps per-stream tallies for timestamps and footers."""

    def __init__(self) -> None:
        self.streams: dict[int, StreamTally] = {}
        self._header_datetime = ""
        self._header_size = 0  # FileHeader content bytes, fixed once written

    def file_header(
        self, session: dict[str, str] | None = None, *, magic: bool = True, reserve: int = 0
    ) -> bytes:
        """The magic and the FileHeader chunk; `session` parameters go under <session>.

        `reserve` pads the XML with that many spaces (whitespace after the root element is
        valid XML), so `session_header` can later rewrite the chunk in place, same size.
        """
        self._header_datetime = datetime.now(UTC).isoformat(timespec="seconds")
        body = self._header_xml(session) + b" " * reserve
        self._header_size = len(body)
        return (MAGIC if magic else b"") + chunk(FILE_HEADER, body)

    def continue_header(self, datetime_text: str, content_size: int) -> None:
        """Take over the FileHeader of an existing file (appending), for `session_header`."""
        self._header_datetime = datetime_text
        self._header_size = content_size

    def session_header(self, session: dict[str, str]) -> bytes | None:
        """The FileHeader chunk again with `session`, as big as the first; None if it won't fit."""
        body = self._header_xml(session)
        if not self._header_size or len(body) > self._header_size:
            return None
        return chunk(FILE_HEADER, body + b" " * (self._header_size - len(body)))

    def _header_xml(self, session: dict[str, str] | None) -> bytes:
        root = ET.Element("info")
        ET.SubElement(root, "version").text = "1.0"
        ET.SubElement(root, "datetime").text = self._header_datetime
        ET.SubElement(root, "writer").text = "raceplane recorder"
        if session:
            node = ET.SubElement(root, "session")
            for key, value in session.items():
                ET.SubElement(node, key).text = str(value)
        return _xml_bytes(root)

    def adopt(
        self,
        stream_id: int,
        info_xml: str,
        timestamps: np.ndarray,
        clock_offsets: list[tuple[float, float]],
    ) -> None:
        """Take over a stream written by an earlier run (a cut file), so it can get its footer."""
        tally = StreamTally(StreamLayout.from_xml(info_xml), clock_offsets=list(clock_offsets))
        if len(timestamps):
            tally.first_timestamp = float(timestamps[0])
            tally.last_timestamp = float(timestamps[-1])
        tally.sample_count = len(timestamps)
        self.streams[stream_id] = tally

    def stream_header(self, stream_id: int, info_xml: str) -> bytes:
        self.streams[stream_id] = StreamTally(StreamLayout.from_xml(info_xml))
        return chunk(STREAM_HEADER, struct.pack("<I", stream_id) + info_xml.encode("utf-8"))

    def samples(self, stream_id: int, timestamps: np.ndarray, values: np.ndarray) -> bytes:
        """A Samples chunk. `values` is (n, channels): numbers, or bytes/str for string streams."""
        tally = self.streams[stream_id]
        layout = tally.layout
        stamps = np.ascontiguousarray(timestamps, dtype="<f8")
        count = len(stamps)
        if count == 0:
            return b""
        if values.shape != (count, layout.channel_count):
            raise XdfError(
                f"{layout.name}: got values of shape {values.shape}, "
                f"expected ({count}, {layout.channel_count})"
            )
        deduce = self._deducible(tally, stamps)
        head = struct.pack("<I", stream_id) + varlen(count)
        if layout.dtype is None:
            body = _string_samples(stamps, values, deduce)
        else:
            body = _numeric_samples(stamps, values, layout.dtype, deduce)
        if tally.first_timestamp is None:
            tally.first_timestamp = float(stamps[0])
        tally.last_timestamp = float(stamps[-1])
        tally.sample_count += count
        return chunk(SAMPLES, head + body)

    def clock_offset(self, stream_id: int, collection_time: float, offset: float) -> bytes:
        self.streams[stream_id].clock_offsets.append((collection_time, offset))
        return chunk(CLOCK_OFFSET, struct.pack("<Idd", stream_id, collection_time, offset))

    @staticmethod
    def boundary() -> bytes:
        return chunk(BOUNDARY, BOUNDARY_UUID)

    def stream_footer(self, stream_id: int, cut: dict[str, str] | None = None) -> bytes:
        """The StreamFooter; `cut` notes where an earlier run of this file was cut off."""
        tally = self.streams[stream_id]
        root = ET.Element("info")
        ET.SubElement(root, "writer").text = "raceplane recorder"
        ET.SubElement(root, "first_timestamp").text = repr(tally.first_timestamp or 0.0)
        ET.SubElement(root, "last_timestamp").text = repr(tally.last_timestamp or 0.0)
        ET.SubElement(root, "sample_count").text = str(tally.sample_count)
        offsets = ET.SubElement(root, "clock_offsets")
        for when, value in tally.clock_offsets:
            node = ET.SubElement(offsets, "offset")
            ET.SubElement(node, "time").text = repr(when)
            ET.SubElement(node, "value").text = repr(value)
        if cut:
            node = ET.SubElement(root, "cut")
            for key, value in cut.items():
                ET.SubElement(node, key).text = value
        body = struct.pack("<I", stream_id) + _xml_bytes(root)
        return chunk(STREAM_FOOTER, body)

    @staticmethod
    def _deducible(tally: StreamTally, stamps: np.ndarray) -> bool:
        """True when every timestamp equals its predecessor + 1/srate exactly (as readers add)."""
        tdiff = tally.layout.tdiff
        if tdiff == 0.0 or tally.last_timestamp is None:
            return False
        previous = np.empty_like(stamps)
        previous[0] = tally.last_timestamp
        previous[1:] = stamps[:-1]
        return bool(np.all(previous + tdiff == stamps))


def _xml_bytes(root: ET.Element) -> bytes:
    return b'<?xml version="1.0"?>' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def _numeric_samples(
    stamps: np.ndarray, values: np.ndarray, dtype: np.dtype, deduce: bool
) -> bytes:
    channels = values.shape[1]
    if deduce:
        record = np.dtype([("tsb", "u1"), ("v", dtype, (channels,))])
        out = np.empty(len(stamps), record)
        out["tsb"] = 0
    else:
        record = np.dtype([("tsb", "u1"), ("ts", "<f8"), ("v", dtype, (channels,))])
        out = np.empty(len(stamps), record)
        out["tsb"] = 8
        out["ts"] = stamps
    out["v"] = values
    return out.tobytes()


def _string_samples(stamps: np.ndarray, values: np.ndarray, deduce: bool) -> bytes:
    parts: list[bytes] = []
    for stamp, row in zip(stamps.tolist(), values, strict=True):
        parts.append(b"\x00" if deduce else b"\x08" + struct.pack("<d", stamp))
        for value in row:
            raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            parts.append(varlen(len(raw)))
            parts.append(raw)
    return b"".join(parts)

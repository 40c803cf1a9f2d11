"""Our XDF loader: tolerant of files cut at any byte, and joining rotated or overlapping files.

`load(*files)` reads every complete chunk and stops quietly at an incomplete tail (a recording
cut by SIGKILL or power loss), noting it in `Recording.warnings`. Streams are matched across
files (and across appended runs in one file) by name, type and source_id (hostname when there
is no source_id), joined in the order given, and a sample whose timestamp is not later than the
last one already kept is a duplicate from an overlapping recording and is dropped.
"""

from __future__ import annotations

import contextlib
import mmap
import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from modules.recorder.xdf import (
    BOUNDARY,
    CLOCK_OFFSET,
    FILE_HEADER,
    MAGIC,
    SAMPLES,
    STREAM_FOOTER,
    STREAM_HEADER,
    StreamLayout,
    XdfError,
)


@dataclass
class Chunk:
    tag: int
    content: memoryview
    end: int  # file offset just past this chunk


def iter_chunks(data: bytes | memoryview, start: int = len(MAGIC)) -> Iterator[Chunk]:
    """Complete chunks of `data` from `start`; stops at the first incomplete or malformed one."""
    view = memoryview(data)
    position = start
    size = len(view)
    while position < size:
        width = view[position]
        if width not in (1, 4, 8) or position + 1 + width > size:
            return
        length = int.from_bytes(view[position + 1 : position + 1 + width], "little")
        body = position + 1 + width
        if length < 2 or body + length > size:
            return
        tag = int.from_bytes(view[body : body + 2], "little")
        yield Chunk(tag, view[body + 2 : body + length], body + length)
        position = body + length


@dataclass
class Stream:
    """One stream of a recording: header info, samples, timestamps (source clock), offsets."""

    info_xml: str
    layout: StreamLayout
    source_id: str
    stream_type: str
    hostname: str
    time_stamps: np.ndarray
    time_series: np.ndarray | list[list[str]]
    clock_offsets: list[tuple[float, float]] = field(default_factory=list)
    footer_xml: str | None = None
    stream_id: int = -1  # in its file
    columns: list[int] | None = None  # the channels kept, when load() was asked for some only

    @property
    def name(self) -> str:
        return self.layout.name

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.stream_type, self.source_id or self.hostname)

    @cached_property
    def channel_labels(self) -> list[str]:
        labels = _labels(ET.fromstring(self.info_xml))
        return labels if self.columns is None else [labels[i] for i in self.columns]

    def __len__(self) -> int:
        return len(self.time_stamps)


@dataclass
class Recording:
    header: dict[str, str]
    session: dict[str, str]
    streams: list[Stream]
    warnings: list[str]
    # Where a recorder was cut off and later resumed: {file, last_write, resumed, gap_s, ...}
    # from the <cut> notes its resume wrote into the cut streams' footers (unix times).
    gaps: list[dict[str, str]] = field(default_factory=list)

    def stream(self, name: str) -> Stream:
        for stream in self.streams:
            if stream.name == name:
                return stream
        raise KeyError(f"no stream named {name!r}; have {[s.name for s in self.streams]}")


class _Builder:
    """Accumulates one stream's decoded chunks; the deduced-timestamp rule needs the last stamp."""

    def __init__(
        self, stream_id: int, info_xml: str, layout: StreamLayout, keep: Collection[str] | None
    ) -> None:
        self.stream_id = stream_id
        self.info_xml = info_xml
        self.layout = layout
        root = ET.fromstring(info_xml)
        self.labels = _labels(root)
        # Only these channels' values are kept (copied out of each chunk), in stream order.
        self.columns: list[int] | None = None
        if keep is not None and self.layout.dtype is not None:
            wanted = set(keep)
            self.columns = [i for i, label in enumerate(self.labels) if label in wanted]
        self.source_id = root.findtext("source_id", "") or ""
        self.stream_type = root.findtext("type", "") or ""
        self.hostname = root.findtext("hostname", "") or ""
        self.last_timestamp = 0.0
        self.stamps: list[np.ndarray] = []
        self.values: list = []
        self.offsets: list[tuple[float, float]] = []
        self.footer: str | None = None

    def add_samples(self, content: memoryview) -> None:
        count, position = _read_varlen(content, 4)
        dtype = self.layout.dtype
        # Check a (possibly corrupt) count against the bytes there are before allocating for it:
        # every sample takes at least its timestamp byte and its values (a string >= 2 bytes).
        value_bytes = 2 if dtype is None else dtype.itemsize
        if count * (1 + self.layout.channel_count * value_bytes) > len(content) - position:
            raise XdfError(f"samples chunk too short for its sample count {count}")
        if dtype is None:
            stamps, rows = self._strings(content, position, count)
            self.values.extend(rows)
        else:
            stamps, values = self._numbers(content, position, count, dtype)
            self.values.append(values)
        self.stamps.append(stamps)

    def _numbers(self, content: memoryview, position: int, count: int, dtype: np.dtype):
        channels = self.layout.channel_count
        value_bytes = dtype.itemsize * channels
        payload = content[position:]
        # Fast paths: every sample stamped, or every sample deduced.
        for stamped in (True, False):
            width = 1 + (8 if stamped else 0) + value_bytes
            if len(payload) == width * count and count:
                fields = [("tsb", "u1")] + ([("ts", "<f8")] if stamped else [])
                record = np.dtype([*fields, ("v", dtype, (channels,))])
                rows = np.frombuffer(payload, record, count)
                if np.all(rows["tsb"] == (8 if stamped else 0)):
                    if stamped:
                        stamps = rows["ts"].astype(np.float64)
                    else:
                        steps = np.full(count, self.layout.tdiff)
                        stamps = self._deduced(steps)
                    self.last_timestamp = float(stamps[-1])
                    # A view into the file's bytes: build() copies each chunk's kept channels
                    # once, straight into the stream's array.
                    return stamps, rows["v"]
        stamps = np.empty(count)
        values = np.empty((count, channels), dtype.newbyteorder("="))
        for k in range(count):
            position, stamps[k] = self._stamp(content, position)
            end = position + value_bytes
            if end > len(content):
                raise XdfError("samples chunk shorter than its sample count")
            values[k] = np.frombuffer(content[position:end], dtype, channels)
            position = end
        return stamps, values

    def _deduced(self, steps: np.ndarray) -> np.ndarray:
        # Sequential sums, as a reader adding 1/srate sample by sample gets them.
        stamps = np.empty(len(steps))
        last = self.last_timestamp
        for k, step in enumerate(steps.tolist()):
            last = last + step
            stamps[k] = last
        return stamps

    def _strings(self, content: memoryview, position: int, count: int):
        stamps = np.empty(count)
        rows: list[list[str]] = []
        for k in range(count):
            position, stamps[k] = self._stamp(content, position)
            row = []
            for _ in range(self.layout.channel_count):
                length, position = _read_varlen(content, position)
                if position + length > len(content):
                    raise XdfError("string value runs past the end of its chunk")
                # Decoded straight from the file's bytes (no copy of them first).
                row.append(str(content[position : position + length], "utf-8", "replace"))
                position += length
            rows.append(row)
        return stamps, rows

    def _stamp(self, content: memoryview, position: int) -> tuple[int, float]:
        if position >= len(content):
            raise XdfError("samples chunk shorter than its sample count")
        width = content[position]
        if width == 8:
            (stamp,) = struct.unpack_from("<d", content, position + 1)
            position += 9
        elif width == 0:
            stamp = self.last_timestamp + self.layout.tdiff
            position += 1
        else:
            raise XdfError(f"bad TimeStampBytes {width}")
        self.last_timestamp = stamp
        return position, stamp

    def build(self) -> Stream:
        stamps = np.concatenate(self.stamps) if self.stamps else np.empty(0)
        dtype = self.layout.dtype
        if dtype is None:
            series: np.ndarray | list[list[str]] = self.values
        else:
            # One copy of what is kept: each chunk's (chosen) channels into their rows.
            width = self.layout.channel_count if self.columns is None else len(self.columns)
            series = np.empty((len(stamps), width), dtype.newbyteorder("="))
            row = 0
            for values in self.values:
                rows = series[row : row + len(values)]
                if self.columns is None:
                    rows[...] = values
                else:
                    np.take(values, self.columns, axis=1, out=rows, mode="clip")
                row += len(values)
        return Stream(
            info_xml=self.info_xml,
            layout=self.layout,
            source_id=self.source_id,
            stream_type=self.stream_type,
            hostname=self.hostname,
            time_stamps=stamps,
            time_series=series,
            clock_offsets=self.offsets,
            footer_xml=self.footer,
            stream_id=self.stream_id,
            columns=self.columns,
        )


class _Skipped:
    """A stream load() was not asked for: its samples are passed over unread."""

    def __init__(self) -> None:
        self.offsets: list[tuple[float, float]] = []
        self.footer: str | None = None


# The stream's own <name>: liblsl writes it first in <info>, before <desc> (where a channel or
# a device may have a <name> of its own). An entity or an odd layout: the header is parsed.
_NAME = re.compile(r"<name>([^<&]*)</name>")


def _quick_name(info_xml: str) -> str | None:
    """The stream's name without parsing its header (a big stream's runs to 100 kB), or None."""
    head = info_xml.split("<desc", 1)[0]
    names = _NAME.findall(head)
    return names[0] if len(names) == 1 and head.count("<name") == 1 else None


def _labels(root: ET.Element) -> list[str]:
    return [node.findtext("label", "") for node in root.iterfind("desc/channels/channel")]


def _read_varlen(content: memoryview, position: int) -> tuple[int, int]:
    if position >= len(content):
        raise XdfError("varlen integer past the end of its chunk")
    width = content[position]
    if width not in (1, 4, 8) or position + 1 + width > len(content):
        raise XdfError(f"bad varlen width {width}")
    value = int.from_bytes(content[position + 1 : position + 1 + width], "little")
    return value, position + 1 + width


def parse(
    data: bytes | memoryview,
    name: str = "<bytes>",
    only: Collection[str] | None = None,
    channels: Mapping[str, Collection[str]] | None = None,
) -> tuple[dict, list[Stream], list[str], int]:
    """Decode one file's bytes: (header fields, streams, warnings, end of the last good chunk).

    `only`: the names of the streams to decode; the others' samples are skipped unread.
    `channels`: per stream name, the labels of the channels to keep (default: all).
    """
    if bytes(data[:4]) != MAGIC:
        if len(data) < 4 and MAGIC.startswith(bytes(data)):
            return {}, [], [f"{name}: cut before the file header"], 0
        raise XdfError(f"{name} is not an XDF file (no 'XDF:' magic)")
    header: dict = {}
    builders: dict[int, _Builder] = {}
    order: list[_Builder] = []
    warnings: list[str] = []
    good_end = len(MAGIC)
    for item in iter_chunks(data):
        try:
            _apply(item, header, builders, order, only, channels or {})
        except (XdfError, ET.ParseError, struct.error, ValueError, KeyError) as error:
            warnings.append(f"{name}: stopped at byte {good_end}: {error}")
            break
        good_end = item.end
    else:
        if good_end < len(data):
            warnings.append(f"{name}: ignored an incomplete chunk after byte {good_end}")
    return header, [builder.build() for builder in order], warnings, good_end


def _apply(
    item: Chunk,
    header: dict,
    builders: dict[int, _Builder],
    order: list[_Builder],
    only: Collection[str] | None = None,
    channels: Mapping[str, Collection[str]] | None = None,
) -> None:
    content = item.content
    if item.tag == FILE_HEADER:
        root = ET.fromstring(bytes(content))
        header.update({child.tag: child.text or "" for child in root if len(child) == 0})
        session = root.find("session")
        if session is not None:
            header.setdefault("session", {}).update({c.tag: c.text or "" for c in session})
    elif item.tag == STREAM_HEADER:
        (stream_id,) = struct.unpack_from("<I", content)
        info_xml = bytes(content[4:]).decode("utf-8")
        builder: _Builder | _Skipped
        if only is not None and _quick_name(info_xml) not in (None, *only):
            builder = _Skipped()
        else:
            layout = StreamLayout.from_xml(info_xml)
            if only is not None and layout.name not in only:
                builder = _Skipped()
            else:
                builder = _Builder(stream_id, info_xml, layout, (channels or {}).get(layout.name))
                order.append(builder)
        builders[stream_id] = builder
    elif item.tag in (SAMPLES, CLOCK_OFFSET, STREAM_FOOTER):
        (stream_id,) = struct.unpack_from("<I", content)
        if stream_id not in builders:
            raise XdfError(f"chunk for stream {stream_id} before its header")
        builder = builders[stream_id]
        if item.tag == SAMPLES:
            if isinstance(builder, _Builder):
                builder.add_samples(content)
        elif item.tag == CLOCK_OFFSET:
            _, when, value = struct.unpack_from("<Idd", content)
            builder.offsets.append((when, value))
        else:
            builder.footer = bytes(content[4:]).decode("utf-8")
    elif item.tag != BOUNDARY:
        raise XdfError(f"unknown chunk tag {item.tag}")


def load(
    *files: str | Path,
    only: Collection[str] | None = None,
    channels: Mapping[str, Collection[str]] | None = None,
) -> Recording:
    """Load XDF files (chronological order) as one recording; see the module docstring.

    `only`: load just the streams of these names (the others are skipped unread);
    `channels`: per stream name, just these channels (Stream.columns says which they were).
    """
    if not files:
        raise ValueError("load() needs at least one file")
    header: dict = {}
    warnings: list[str] = []
    joined: dict[tuple[str, str, str], list[Stream]] = {}
    gaps: dict[tuple[str, str], dict[str, str]] = {}
    for path in files:
        with open(path, "rb") as handle:
            # Mapped, not read: skipped streams' chunks are never copied into memory, and the
            # kept samples are copied once, out of the mapping, when their stream is built.
            data = _map(handle)
            try:
                file_header, streams, file_warnings, _ = parse(data, str(path), only, channels)
            finally:
                if isinstance(data, mmap.mmap):
                    with contextlib.suppress(BufferError):  # a view still held: GC closes it
                        data.close()
        for key, value in file_header.items():
            header.setdefault(key, value)
        warnings += file_warnings
        for stream in streams:
            joined.setdefault(stream.key, []).append(stream)
            note = cut_note(stream.footer_xml)
            if note is not None:
                gaps.setdefault((str(path), note.get("resumed", "")), {"file": str(path), **note})
    session = header.pop("session", {})
    streams = [_join(parts) for parts in joined.values()]
    return Recording(header, session, streams, warnings, list(gaps.values()))


def _map(handle) -> bytes | mmap.mmap:
    try:
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (ValueError, OSError):  # empty, or not a mappable file
        return handle.read()


def cut_note(footer_xml: str | None) -> dict[str, str] | None:
    """The <cut> note of a stream footer written when a cut-off recording was resumed."""
    if not footer_xml:
        return None
    try:
        node = ET.fromstring(footer_xml).find("cut")
    except ET.ParseError:
        return None
    return None if node is None else {child.tag: child.text or "" for child in node}


def _join(parts: list[Stream]) -> Stream:
    first = parts[0]
    if len(parts) == 1:
        return first
    keep_stamps = [first.time_stamps]
    numeric = first.layout.dtype is not None
    keep_values: list = [first.time_series] if numeric else list(first.time_series)
    offsets = list(first.clock_offsets)
    last = first.time_stamps[-1] if len(first.time_stamps) else -np.inf
    for part in parts[1:]:
        mask = part.time_stamps > last
        keep_stamps.append(part.time_stamps[mask])
        if numeric:
            keep_values.append(part.time_series[mask])
        else:
            keep_values += [row for row, keep in zip(part.time_series, mask, strict=True) if keep]
        offsets += part.clock_offsets
        if mask.any():
            last = part.time_stamps[mask][-1]
    return Stream(
        info_xml=first.info_xml,
        layout=first.layout,
        source_id=first.source_id,
        stream_type=first.stream_type,
        hostname=first.hostname,
        time_stamps=np.concatenate(keep_stamps),
        time_series=np.concatenate(keep_values) if numeric else keep_values,
        clock_offsets=sorted(offsets),
        footer_xml=parts[-1].footer_xml,
        columns=first.columns,
    )

"""Reading a recording into streams: an XDF file (or its rotated parts), a raw UDP capture, or a
live-timing file, each turned into the same thing, `Streams`: the decoder's per-car numeric
streams and its JSON streams, with their timestamps.

No second reader of any format: XDF goes through the recorder's loader, captures through the
capture parser and the decoder core, live-timing files through the livetiming module's reader
and its `LiveSession`, which fills the decoder's streams as a replay does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from modules.f1_udp.capture import MAGIC as CAPTURE_MAGIC
from modules.f1_udp.capture import CaptureError, read_capture
from modules.lap_timer.detector import FIELDS as TIMER_FIELDS
from modules.lap_timer.detector import HEADER as TIMER_HEADER
from modules.livetiming.savefile import FileReport, merge_files
from modules.livetiming.state import NUMERIC as LIVE_NUMERIC
from modules.livetiming.state import LiveSession
from modules.recorder.loader import iter_chunks
from modules.recorder.loader import load as load_xdf
from modules.recorder.xdf import MAGIC as XDF_MAGIC
from modules.recorder.xdf import SAMPLES, STREAM_HEADER, StreamLayout, XdfError
from modules.stream_catalogue import CARS as CATALOGUE_CARS
from modules.stream_catalogue import STREAMS as CATALOGUE
from modules.telemetry_decoder.core import Datagram, DecoderCore

# What the analysis reads: the lap timer's inputs and the per-car telemetry. From an XDF file
# the telemetry streams are read when a lap's telemetry is first asked for, not for the laps.
LAP_STREAMS = ("raceplane.lap_data", "raceplane.car_status")
TELEMETRY_STREAMS = ("raceplane.car_telemetry", "raceplane.motion")
NUMERIC_STREAMS = LAP_STREAMS + TELEMETRY_STREAMS
# The channels of the lap streams the laps table and the lap boundaries need (the rest of each
# row is never copied out of the file).
_PER_CAR = {
    "raceplane.lap_data": (
        *TIMER_FIELDS, "current_lap_time_ms", "lap_distance_m", "car_position",
    ),
    "raceplane.car_status": ("visual_tyre_compound",),
}  # fmt: skip
LAP_CHANNELS = {
    name: {f"header.{h}" for h in TIMER_HEADER}
    | {f"car{i:02d}.{f}" for i in range(CATALOGUE_CARS) for f in fields}
    for name, fields in _PER_CAR.items()
}
JSON_STREAMS = (
    "raceplane.session",
    "raceplane.participants",
    "raceplane.events",
    "raceplane.session_history",
    "raceplane.final_classification",
)
CAPTURE_SENDER = ("capture", 0)
CAPTURE_BATCH = 2000


class RecordingError(ValueError):
    """A file that cannot be analysed: not a recording, or without the streams it needs."""


@dataclass
class NumericStream:
    labels: list[str]
    stamps: np.ndarray
    values: np.ndarray  # (samples, channels)

    @cached_property
    def _columns(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.labels)}

    def index(self, label: str) -> int:
        try:
            return self._columns[label]
        except KeyError:
            raise RecordingError(f"no channel {label!r} in this stream") from None

    def column(self, label: str) -> np.ndarray:
        return self.values[:, self.index(label)]

    def has(self, label: str) -> bool:
        return label in self._columns


@dataclass
class JsonStream:
    stamps: np.ndarray
    texts: list[str] | None = None  # as recorded: decoded on first use
    _objects: list[dict[str, Any]] | None = None

    @property
    def objects(self) -> list[dict[str, Any]]:
        if self._objects is None:
            self._objects = [json.loads(text) for text in self.texts or []]
        return self._objects


@dataclass
class Streams:
    """A recording's streams by name, what kind of file it came from, and what went wrong."""

    kind: str  # "xdf" | "capture" | "livetiming"
    numeric: dict[str, NumericStream]
    json: dict[str, JsonStream]
    warnings: list[str]
    # Wall-clock time (UTC) of timestamp `clock_origin[1]`: to date laps (time of day).
    clock_origin: tuple[datetime, float] | None = None
    # The XDF files, while some of their streams are still to be read (see `require`).
    unread: list[str | Path] = field(default_factory=list)

    def require(self, channels: dict[str, set[str]]) -> None:
        """Read these streams (just these channels) now if they were left for later (XDF
        telemetry: a fifth of its channels are a lap's, a fifth of the bytes to copy)."""
        if not self.unread:
            return
        missing = {name: wanted for name, wanted in channels.items() if name not in self.numeric}
        if missing:
            try:
                recording = load_xdf(*self.unread, only=list(missing), channels=missing)
            except (OSError, XdfError) as error:
                raise RecordingError(f"cannot read the telemetry: {error}") from None
            self.warnings += [w for w in recording.warnings if w not in self.warnings]
            self.numeric.update(_numeric(recording))
        self.unread = []  # what is not there now is not in the files

    def date_of(self, stamp: float) -> datetime | None:
        if self.clock_origin is None:
            return None
        wall, origin = self.clock_origin
        return datetime.fromtimestamp(wall.timestamp() + stamp - origin, UTC)


def read(*paths: str | Path) -> Streams:
    """Read one recording, made of one file or several parts; the kind is told by its bytes."""
    if not paths:
        raise ValueError("read() needs at least one file")
    kinds = {_kind(Path(path)) for path in paths}
    if len(kinds) > 1:
        raise RecordingError(f"these files are of different kinds ({', '.join(sorted(kinds))})")
    kind = kinds.pop()
    if kind == "xdf":
        return _read_xdf(paths)
    if kind == "capture":
        return _read_captures(paths)
    return _read_livetiming(paths)


def _kind(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise RecordingError(f"cannot read {path}: {error.strerror or error}") from None
    if head.startswith(XDF_MAGIC):
        return "xdf"
    if head.startswith(CAPTURE_MAGIC):
        return "capture"
    # FastF1's saved format: gzip, or one `[topic, data, timestamp]` literal a line.
    if head.startswith(b"\x1f\x8b") or head.lstrip()[:1] == b"[":
        return "livetiming"
    raise RecordingError(
        f"{path} is neither an XDF recording, a raw UDP capture nor a live-timing file"
    )


# ---------------------------------------------------------------------------------- XDF


def _read_xdf(paths: tuple[str | Path, ...]) -> Streams:
    # Rotated parts may be given in any order: the loader joins them in the order given, so
    # they are put in time order first (by each part's first timestamp).
    ordered = sorted(paths, key=_first_stamp) if len(paths) > 1 else list(paths)
    try:
        recording = load_xdf(*ordered, only=(*LAP_STREAMS, *JSON_STREAMS), channels=LAP_CHANNELS)
    except XdfError as error:
        raise RecordingError(str(error)) from None
    numeric = _numeric(recording)
    texts = {
        stream.name: JsonStream(stream.time_stamps, [row[0] for row in stream.time_series])
        for stream in recording.streams
        if stream.name in JSON_STREAMS and stream.layout.dtype is None
    }
    if not numeric and not texts:
        names = ", ".join(_stream_names(ordered)) or "no streams at all"
        raise RecordingError(
            f"this XDF file has no raceplane game or live-timing streams (it has: {names}); "
            "it was written by another program, or records other streams"
        )
    origin = None
    started = recording.header.get("datetime")
    first = [s.time_stamps[0] for s in recording.streams if len(s.time_stamps)]
    if started and first:
        try:
            origin = (datetime.fromisoformat(started), float(min(first)))
        except ValueError:
            origin = None
    return Streams("xdf", numeric, texts, list(recording.warnings), origin, list(ordered))


def _numeric(recording) -> dict[str, NumericStream]:
    return {
        stream.name: NumericStream(
            stream.channel_labels, stream.time_stamps, np.asarray(stream.time_series)
        )
        for stream in recording.streams
        if stream.name in NUMERIC_STREAMS and stream.layout.dtype is not None
    }


def _stream_names(paths: list[str | Path]) -> list[str]:
    names: set[str] = set()
    for path in paths:
        for item in iter_chunks(Path(path).read_bytes()):
            if item.tag == STREAM_HEADER:
                try:
                    names.add(StreamLayout.from_xml(bytes(item.content[4:]).decode()).name)
                except (XdfError, UnicodeDecodeError):
                    names.add("(a stream with a bad header)")
    return sorted(names)


def _first_stamp(path: str | Path) -> float:
    """The first sample time in a part (reads only until the first Samples chunk)."""
    with open(path, "rb") as handle:
        data = handle.read(1 << 22)
    for item in iter_chunks(data):
        if item.tag == SAMPLES:
            content = item.content
            width = content[4]
            position = 5 + width
            if content[position] == 8:
                return float(np.frombuffer(content[position + 1 : position + 9], "<f8")[0])
    return float("inf")


# ---------------------------------------------------------------------------------- captures


def _read_captures(paths: tuple[str | Path, ...]) -> Streams:
    core = DecoderCore()
    rows: dict[str, list[np.ndarray]] = {}
    row_stamps: dict[str, list[float]] = {}
    objects: dict[str, list[dict[str, Any]]] = {}
    object_stamps: dict[str, list[float]] = {}
    warnings: list[str] = []
    first: float | None = None

    def decode(batch: list[Datagram]) -> None:
        for publication in core.feed(batch):
            name = publication.stream
            if publication.rows is not None and name in NUMERIC_STREAMS:
                rows.setdefault(name, []).append(publication.rows)
                row_stamps.setdefault(name, []).extend(publication.timestamps)
            elif publication.objects is not None and name in JSON_STREAMS:
                objects.setdefault(name, []).extend(publication.objects)
                object_stamps.setdefault(name, []).extend(publication.timestamps)

    for path in sorted(paths, key=_capture_start):
        batch: list[Datagram] = []
        try:
            for datagram in read_capture(path):
                first = datagram.time_s if first is None else first
                batch.append(Datagram(datagram.payload, CAPTURE_SENDER, datagram.time_s))
                if len(batch) >= CAPTURE_BATCH:
                    decode(batch)
                    batch = []
        except CaptureError as error:
            warnings.append(f"{path}: {error}")
        decode(batch)
    numeric = {}
    for name, parts in rows.items():
        labels = CATALOGUE[name].spec("capture").labels
        numeric[name] = NumericStream(
            list(labels), np.array(row_stamps[name]), np.concatenate(parts)
        )
    texts = {
        name: JsonStream(np.array(object_stamps[name]), _objects=items)
        for name, items in objects.items()
    }
    if core.rejects:
        warnings.append(f"datagrams the decoder refused: {dict(core.rejects)}")
    origin = None if first is None else (datetime.fromtimestamp(first, UTC), first)
    return Streams("capture", numeric, texts, warnings, origin)


def _capture_start(path: str | Path) -> float:
    for datagram in read_capture(path):
        return datagram.time_s
    return float("inf")


# ---------------------------------------------------------------------------------- live timing


def _read_livetiming(paths: tuple[str | Path, ...]) -> Streams:
    reports: list[FileReport] = []
    messages = merge_files([Path(p) for p in paths], reports)
    warnings = [r.first_error for r in reports if r.first_error]
    if not messages:
        raise RecordingError(
            f"no live-timing messages in {', '.join(str(p) for p in paths)}"
            + (f": {warnings[0]}" if warnings else "")
        )
    session = LiveSession()
    rows: dict[str, list[np.ndarray]] = {}
    row_stamps: dict[str, list[float]] = {}
    objects: dict[str, list[dict[str, Any]]] = {}
    object_stamps: dict[str, list[float]] = {}
    refused = 0
    for message in messages:
        try:
            samples = session.feed(message)
        except ValueError as error:
            refused += 1
            if refused == 1:
                warnings.append(f"{message.topic}: {error}")
            continue
        for sample in samples:
            stamp = sample.time.timestamp()
            if sample.stream in LIVE_NUMERIC:
                rows.setdefault(sample.stream, []).append(sample.value)
                row_stamps.setdefault(sample.stream, []).append(stamp)
            elif sample.stream in JSON_STREAMS:
                objects.setdefault(sample.stream, []).append(sample.value)
                object_stamps.setdefault(sample.stream, []).append(stamp)
    numeric = {
        name: NumericStream(
            list(CATALOGUE[name].spec("livetiming").labels),
            np.array(row_stamps[name]),
            np.vstack(parts),
        )
        for name, parts in rows.items()
    }
    texts = {
        name: JsonStream(np.array(object_stamps[name]), _objects=items)
        for name, items in objects.items()
    }
    if refused:
        warnings.append(f"{refused} messages could not be read")
    start = session.start
    origin = None if start is None else (start, start.timestamp())
    return Streams("livetiming", numeric, texts, warnings, origin)

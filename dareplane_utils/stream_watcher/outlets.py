"""Publishing on LSL the Raceplane way: one stream description, one call to an outlet.

Every Raceplane outlet has a stable `source_id` (so inlets recover when the producing process
restarts) and writes its channel labels, units and types into `desc/channels/channel`, so an
XDF recording is self-describing. Numeric streams push frames (one sample per row); string
streams mostly carry one JSON object per sample (`push_json`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pylsl

# LSL's value types by the names liblsl itself uses in XML and XDF.
CHANNEL_FORMATS: dict[str, int] = {
    "float32": pylsl.cf_float32,
    "double64": pylsl.cf_double64,
    "string": pylsl.cf_string,
    "int8": pylsl.cf_int8,
    "int16": pylsl.cf_int16,
    "int32": pylsl.cf_int32,
    "int64": pylsl.cf_int64,
}

# numpy's names are what people type; LSL's names are what XDF files say.
_FORMAT_ALIASES = {"float64": "double64", "double": "double64", "float": "float32", "str": "string"}

JSON_CHANNEL = "json"


@dataclass(frozen=True)
class ChannelSpec:
    """One channel: its label (e.g. `car07.speed_kph`), unit and type as written into `desc`."""

    label: str
    unit: str = ""
    type: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label:
            raise ValueError(f"a channel label must be a non-empty string, got {self.label!r}")


@dataclass(frozen=True, kw_only=True)
class StreamSpec:
    """Everything an outlet needs to know. `channels` may be given as labels or ChannelSpecs.

    `metadata` becomes extra children of `desc` (nested mappings become nested elements,
    sequences become repeated elements), e.g. `{"producer": "decoder", "game_year": 2025}`.
    """

    name: str
    type: str
    channels: Sequence[ChannelSpec | str]
    source_id: str
    nominal_srate: float = pylsl.IRREGULAR_RATE
    channel_format: str = "float32"
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a stream needs a name")
        if not self.source_id:
            # Without a source_id liblsl cannot tell a restarted producer from a new one,
            # and every inlet is lost for good when the producer restarts.
            raise ValueError(f"stream {self.name!r} needs a stable source_id")
        channels = tuple(c if isinstance(c, ChannelSpec) else ChannelSpec(c) for c in self.channels)
        if not channels:
            raise ValueError(f"stream {self.name!r} needs at least one channel")
        labels = [c.label for c in channels]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"stream {self.name!r} has duplicate channel labels: {duplicates}")
        channel_format = _FORMAT_ALIASES.get(self.channel_format, self.channel_format)
        if channel_format not in CHANNEL_FORMATS:
            raise ValueError(
                f"stream {self.name!r}: unknown channel_format {self.channel_format!r}; "
                f"choose one of {sorted(CHANNEL_FORMATS)}"
            )
        if not (math.isfinite(self.nominal_srate) and self.nominal_srate >= 0):
            raise ValueError(
                f"stream {self.name!r}: nominal_srate must be >= 0 (0 = irregular), "
                f"got {self.nominal_srate!r}"
            )
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "channel_format", channel_format)

    @classmethod
    def json(cls, name: str, source_id: str, type: str = "json", **metadata: Any) -> StreamSpec:
        """An irregular one-channel string stream carrying one JSON object per sample."""
        return cls(
            name=name,
            type=type,
            channels=(ChannelSpec(JSON_CHANNEL, unit="", type="json"),),
            source_id=source_id,
            channel_format="string",
            metadata=metadata,
        )

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.channels]

    def stream_info(self) -> pylsl.StreamInfo:
        """The pylsl StreamInfo this spec describes, `desc` filled in."""
        info = pylsl.StreamInfo(
            name=self.name,
            type=self.type,
            channel_count=len(self.channels),
            nominal_srate=self.nominal_srate,
            channel_format=CHANNEL_FORMATS[self.channel_format],
            source_id=self.source_id,
        )
        desc = info.desc()
        channels = desc.append_child("channels")
        for channel in self.channels:
            element = channels.append_child("channel")
            element.append_child_value("label", channel.label)
            element.append_child_value("unit", channel.unit)
            element.append_child_value("type", channel.type)
        _append_metadata(desc, self.metadata)
        return info


def _append_metadata(element: pylsl.XMLElement, metadata: Mapping[str, Any]) -> None:
    for key, value in metadata.items():
        if key == "channels":
            raise ValueError("metadata key 'channels' is reserved for the channel list")
        _append_value(element, str(key), value)


def _append_value(element: pylsl.XMLElement, key: str, value: Any) -> None:
    if isinstance(value, Mapping):
        child = element.append_child(key)
        for sub_key, sub_value in value.items():
            _append_value(child, str(sub_key), sub_value)
    elif isinstance(value, list | tuple):
        for item in value:
            _append_value(element, key, item)
    else:
        element.append_child_value(key, _text(value))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def make_outlet(
    spec: StreamSpec, chunk_size: int = 0, max_buffered: int = 360
) -> pylsl.StreamOutlet:
    """Create the outlet for `spec`; it is discoverable as soon as this returns."""
    return pylsl.StreamOutlet(spec.stream_info(), chunk_size=chunk_size, max_buffered=max_buffered)


def push_frame(
    outlet: pylsl.StreamOutlet, frame: Sequence[Any] | np.ndarray, timestamp: float | None = None
) -> None:
    """Push one sample (one value per channel). `timestamp` defaults to now (local_clock)."""
    stamp = 0.0 if timestamp is None else timestamp
    if outlet.channel_format == pylsl.cf_string:
        values = list(frame)
        _check_frame(outlet, values)
        outlet.push_sample(values, stamp)
    else:
        # As a one-row chunk: pylsl hands numpy memory to liblsl in one call, where
        # push_sample converts value by value (~70 us instead of ~2 us for 700 channels).
        row = np.asarray(frame)
        _check_frame(outlet, row)
        outlet.push_chunk(row.reshape(1, -1), stamp)


def _check_frame(outlet: pylsl.StreamOutlet, values: Sequence[Any] | np.ndarray) -> None:
    if np.ndim(values) != 1 or len(values) != outlet.channel_count:
        raise ValueError(
            f"a frame needs exactly {outlet.channel_count} values, got shape {np.shape(values)}"
        )


def push_frames(
    outlet: pylsl.StreamOutlet,
    frames: np.ndarray | Sequence[Sequence[Any]],
    timestamps: float | Sequence[float] | np.ndarray | None = None,
) -> None:
    """Push a chunk, one row per sample.

    `timestamps`: None (the last sample is now, earlier ones spaced by the nominal rate), one
    float (the time of the last sample), or one time per row.
    """
    if outlet.channel_format == pylsl.cf_string:
        rows = [list(row) for row in frames]
        n_rows = len(rows)
        bad = [len(row) for row in rows if len(row) != outlet.channel_count]
        data: Any = rows
    else:
        data = np.asarray(frames)
        if data.ndim != 2:
            raise ValueError(f"frames must be 2-D (samples x channels), got shape {data.shape}")
        n_rows = data.shape[0]
        bad = [data.shape[1]] if data.shape[1] != outlet.channel_count else []
    if bad:
        raise ValueError(f"every frame needs {outlet.channel_count} values, got {bad[0]}")
    if n_rows == 0:
        return
    if timestamps is None:
        outlet.push_chunk(data, 0.0)
    elif np.ndim(timestamps) == 0:
        outlet.push_chunk(data, float(timestamps))
    else:
        stamps = [float(t) for t in timestamps]
        if len(stamps) != n_rows:
            raise ValueError(f"{n_rows} frames but {len(stamps)} timestamps")
        outlet.push_chunk(data, stamps)


def encode_json(obj: Any) -> str:
    """The one JSON text form of a sample: compact, UTF-8, strict (NaN/Infinity refused)."""
    # orjson is the fast path (json.dumps was the decoder's largest cost in a flat-out
    # replay), but it writes NaN and Infinity as null and refuses integers beyond 64 bits and
    # keys that are not strings: whatever it cannot take, and any text with a null in it,
    # goes to json, which refuses NaN and says what is wrong.
    try:
        raw = orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError included
        raw = b"null"
    if b"null" not in raw:
        return raw.decode()
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot send as JSON: {exc}") from exc


def push_json(outlet: pylsl.StreamOutlet, obj: Any, timestamp: float | None = None) -> str:
    """Push one JSON object as one sample of a one-channel string stream; returns the text."""
    if outlet.channel_format != pylsl.cf_string or outlet.channel_count != 1:
        raise ValueError("push_json needs a one-channel string outlet (see StreamSpec.json)")
    text = encode_json(obj)
    outlet.push_sample([text], 0.0 if timestamp is None else timestamp)
    return text


def push_json_chunk(
    outlet: pylsl.StreamOutlet, objects: Sequence[Any], timestamps: Sequence[float]
) -> list[str]:
    """Push JSON objects as one chunk (one sample each, one liblsl call for all: a fraction of
    a push_json per object); returns the texts."""
    texts = [encode_json(obj) for obj in objects]
    push_texts(outlet, texts, timestamps)
    return texts


def push_texts(
    outlet: pylsl.StreamOutlet, texts: Sequence[str], timestamps: Sequence[float]
) -> None:
    """Push texts already encoded (encode_json's) as one chunk of a one-channel string stream."""
    if outlet.channel_format != pylsl.cf_string or outlet.channel_count != 1:
        raise ValueError("push_texts needs a one-channel string outlet (see StreamSpec.json)")
    if len(texts) != len(timestamps):
        raise ValueError(f"{len(texts)} texts but {len(timestamps)} timestamps")
    if texts:
        outlet.push_chunk(list(texts), [float(t) for t in timestamps])

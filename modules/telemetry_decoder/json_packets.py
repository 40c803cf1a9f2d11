"""Packets to JSON objects for the string streams (session, events, participants, ...).

Keys follow the catalogue's naming (`modules/stream_catalogue.field_name`): snake_case of
EA's names with units folded in, a minutes part and a milliseconds part combined into one
`_ms` value, arrays of structs as lists of objects, names as text, and a readable name beside
some enumerations (`"track_id": 11, "track_name": "Monza"`). Every array keeps all its
entries, as the game sent them. A converter is compiled once per layout: `packet.item()`
gives every value as Python data in one numpy call, and the converter only renames and nests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from modules.f1_udp import EVENT_DETAILS_OFFSET, EventCode, event_details_dtype
from modules.f1_udp.appendix import (
    ACTUAL_COMPOUND_NAMES,
    RESULT_STATUS_NAMES,
    SAFETY_CAR_STATUS_NAMES,
    SESSION_TYPE_NAMES,
    TEAM_NAMES,
    TRACK_NAMES,
    VISUAL_COMPOUND_NAMES,
    WEATHER_NAMES,
    name_of,
)
from modules.stream_catalogue import field_name, minutes_part_of

# Readable names beside enumerations: EA field -> (key of the name, table).
ENUM_NAMES = {
    "trackId": ("track_name", TRACK_NAMES),
    "sessionType": ("session_type_name", SESSION_TYPE_NAMES),
    "teamId": ("team_name", TEAM_NAMES),
    "weather": ("weather_name", WEATHER_NAMES),
    "resultStatus": ("result_status_name", RESULT_STATUS_NAMES),
    "safetyCarStatus": ("safety_car_status_name", SAFETY_CAR_STATUS_NAMES),
    "actualTyreCompound": ("actual_tyre_compound_name", ACTUAL_COMPOUND_NAMES),
    "visualTyreCompound": ("visual_tyre_compound_name", VISUAL_COMPOUND_NAMES),
    "tyreActualCompound": ("tyre_actual_compound_name", ACTUAL_COMPOUND_NAMES),
    "tyreVisualCompound": ("tyre_visual_compound_name", VISUAL_COMPOUND_NAMES),
}
MINUTE_MS = 60_000

Convert = Callable[[Any], Any]


def _finite(value: float) -> float | None:
    # JSON has no NaN or infinity; only garbage makes them, and it becomes null.
    return value if math.isfinite(value) else None


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("utf-8", "replace")


def _leaf(dtype: np.dtype) -> Convert | None:
    """How to turn one scalar of `dtype` (as `.item()` gives it) into JSON; None: as it is."""
    if dtype.kind == "f":
        return _finite
    if dtype.kind == "S":
        return _text
    return None


@cache
def converter(dtype: np.dtype) -> Callable[[tuple], dict[str, Any]]:
    """A function from one record's `.item()` tuple to its JSON object."""
    steps: list[Callable[[tuple, dict[str, Any]], None]] = []
    names = dtype.names or ()
    for index, ea_name in enumerate(names):
        if ea_name == "header" or ea_name.endswith("MinutesPart"):
            continue
        key = field_name(ea_name)[0]
        sub = dtype[ea_name]
        minutes = minutes_part_of(ea_name)
        if minutes in names:
            steps.append(_combined(index, names.index(minutes), key))
            continue
        steps.append(_field(index, key, sub))
        if ea_name in ENUM_NAMES:
            steps.append(_enum_name(index, *ENUM_NAMES[ea_name]))

    def convert(values: tuple) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for step in steps:
            step(values, obj)
        return obj

    return convert


def _combined(index: int, minutes: int, key: str) -> Callable[[tuple, dict], None]:
    def step(values: tuple, obj: dict) -> None:
        ms, mins = values[index], values[minutes]
        if isinstance(ms, np.ndarray):
            obj[key] = (ms.astype(np.int64) + MINUTE_MS * mins.astype(np.int64)).tolist()
        else:
            obj[key] = int(ms) + MINUTE_MS * int(mins)

    return step


def _field(index: int, key: str, sub: np.dtype) -> Callable[[tuple, dict], None]:
    base = sub.base
    if base.names is not None:
        if sub.shape:
            rows = columnar(base)

            def structs(values: tuple, obj: dict) -> None:
                obj[key] = rows(values[index])

            return structs
        record = converter(base)

        def struct(values: tuple, obj: dict) -> None:
            obj[key] = record(values[index])

        return struct
    leaf = _leaf(base)
    if sub.shape:

        def array(values: tuple, obj: dict) -> None:
            listed = values[index].tolist()
            obj[key] = listed if leaf is None else _map_nested(leaf, listed)

        return array
    if leaf is None:

        def plain(values: tuple, obj: dict) -> None:
            obj[key] = values[index]

        return plain

    def scalar(values: tuple, obj: dict) -> None:
        obj[key] = leaf(values[index])

    return scalar


@cache
def columnar(dtype: np.dtype) -> Callable[[np.ndarray], list]:
    """A function from an array of records (any shape) to nested lists of JSON objects.

    Works a column at a time (one numpy call per field), which matters for the 100-lap
    SessionHistory at 20 packets a second.
    """
    names = dtype.names or ()
    columns: list[tuple[str, Callable[[np.ndarray], list]]] = []
    for ea_name in names:
        if ea_name.endswith("MinutesPart"):
            continue
        key = field_name(ea_name)[0]
        minutes = minutes_part_of(ea_name)
        if minutes in names:
            columns.append((key, _combined_column(ea_name, minutes)))
            continue
        columns.append((key, _column(ea_name, dtype[ea_name])))
        if ea_name in ENUM_NAMES:
            name_key, table = ENUM_NAMES[ea_name]
            columns.append((name_key, _enum_column(ea_name, table)))
    row = _row_maker([key for key, _ in columns])

    def convert(records: np.ndarray) -> list:
        flat = records.reshape(-1)
        # Every column has one value per record.
        rows = list(map(row, *[column(flat) for _, column in columns]))
        return _nest(rows, records.shape)

    return convert


def _row_maker(keys: list[str]) -> Callable[..., dict[str, Any]]:
    """`f(v0, v1, ...) -> {keys[0]: v0, keys[1]: v1, ...}`. A dict display compiled once per
    layout (as dataclasses compile their __init__) builds the 100 laps of a SessionHistory in
    half the time dict(zip(keys, row)) takes; the keys are our own names, quoted by repr."""
    names = [f"v{index}" for index in range(len(keys))]
    body = ", ".join(f"{key!r}: {name}" for key, name in zip(keys, names, strict=True))
    return eval(f"lambda {', '.join(names)}: {{{body}}}")


def _column(ea_name: str, sub: np.dtype) -> Callable[[np.ndarray], list]:
    base = sub.base
    if base.names is not None:
        rows = columnar(base)
        return lambda flat: rows(flat[ea_name])
    leaf = _leaf(base)
    if leaf is None:
        return lambda flat: flat[ea_name].tolist()
    if base.kind == "f":

        def floats(flat: np.ndarray) -> list:
            values = flat[ea_name]
            listed = values.tolist()
            return listed if np.isfinite(values).all() else _map_nested(leaf, listed)

        return floats
    return lambda flat: _map_nested(leaf, flat[ea_name].tolist())


def _combined_column(ms: str, minutes: str) -> Callable[[np.ndarray], list]:
    def combined(flat: np.ndarray) -> list:
        total = flat[ms].astype(np.int64) + MINUTE_MS * flat[minutes].astype(np.int64)
        return total.tolist()

    return combined


def _enum_column(ea_name: str, table: dict[int, str]) -> Callable[[np.ndarray], list]:
    lookups: dict[np.dtype, np.ndarray] = {}

    def names(flat: np.ndarray) -> list:
        values = flat[ea_name]
        lookup = lookups.get(values.dtype)
        if lookup is None:
            lookup = lookups[values.dtype] = _name_lookup(table, values.dtype)
        return lookup[values.astype(np.intp)].tolist()

    return names


def _name_lookup(table: dict[int, str], dtype: np.dtype) -> np.ndarray:
    """Every value of an unsigned integer type -> its readable name, for one indexing call."""
    assert dtype.kind == "u", "enumerations in arrays are unsigned in every format"
    return np.array([name_of(table, v) for v in range(1 << (8 * dtype.itemsize))], object)


def _nest(items: list, shape: tuple[int, ...]) -> list:
    """A flat list as nested lists of `shape` (the shape's first axis is the outer list)."""
    for size in reversed(shape[1:]):
        items = [items[i : i + size] for i in range(0, len(items), size)]
    return items


def _map_nested(leaf: Convert, values: list) -> list:
    return [_map_nested(leaf, v) if isinstance(v, list) else leaf(v) for v in values]


def _enum_name(index: int, key: str, table: dict[int, str]) -> Callable[[tuple, dict], None]:
    def step(values: tuple, obj: dict) -> None:
        value = values[index]
        if isinstance(value, np.ndarray):
            obj[key] = [name_of(table, v) for v in value.ravel().tolist()]
        else:
            obj[key] = name_of(table, value)

    return step


def header_json(header: np.ndarray, source: int) -> dict[str, Any]:
    """The `header` object every JSON sample carries (session_uid as a decimal string)."""
    (fmt, year, major, minor, version, _, uid, time_s, frame, overall, player, second) = (
        header.item()
    )
    return {
        "packet_format": fmt,
        "game_year": year,
        "session_uid": str(uid),
        "session_time_s": _finite(time_s),
        "frame_identifier": frame,
        "overall_frame_identifier": overall,
        "player_car_index": player,
        "source": source,
        "game_major_version": major,
        "game_minor_version": minor,
        "packet_version": version,
        "secondary_player_car_index": second,
    }


def to_json(packet: np.ndarray, data: bytes, source: int) -> dict[str, Any]:
    """One JSON object for one parsed packet (`data`: its bytes, for the event details union).

    Raises UnknownPacketError for an Event whose code has no layout.
    """
    header = packet["header"]
    obj: dict[str, Any] = {"header": header_json(header, source)}
    if "eventStringCode" in packet.dtype.names:
        code = data[EVENT_DETAILS_OFFSET - 4 : EVENT_DETAILS_OFFSET]
        details_dtype = event_details_dtype(int(header["packetFormat"]), code)
        text = code.decode("ascii")
        obj["code"] = text
        obj["name"] = EventCode(text).name.lower()
        if details_dtype.itemsize:
            details = np.frombuffer(data, details_dtype, count=1, offset=EVENT_DETAILS_OFFSET)
            obj.update(converter(details_dtype)(details[0].item()))
        return obj
    obj.update(converter(packet.dtype)(packet.item()))
    return obj

"""Packets to numeric stream samples, vectorised.

A `RowPlan` turns k datagrams of one (format, packet id) into a (k, channels) float64 array
with a fixed, small number of numpy calls, whatever k is and however many fields the packet
has. Everything is worked out once per (format, packet id) from the layout: the byte offset
and type of every value a channel needs. Decoding is then one gather of those bytes (grouped
by type, so each group is one contiguous run), one cast per type into a preallocated row of
values, one add for minutes + milliseconds pairs, one multiply for scaled fields, and one take
into channel order (absent fields read a NaN cell). No Python work per field or per car.
(JSON streams: json_packets.py.)
"""

from __future__ import annotations

import numpy as np

from modules.f1_udp import packet_dtype
from modules.stream_catalogue import (
    CARS,
    HEADER_CHANNELS,
    HEADER_TAIL_CHANNELS,
    Column,
    StreamDef,
    car_columns,
    packet_columns,
    record_columns,
)

MINUTE_MS = 60_000.0
SOURCE_CHANNEL = 6  # header.source: which sender, known to the core, not in the bytes
CHUNK_ROWS = 32  # packets decoded per pass through the plan's scratch arrays


def _for_format(columns: list[Column], record: np.dtype) -> list[Column]:
    """The stream's columns (every format's) as this format's record has them (its scales)."""
    own = {c.name: c for c in record_columns(record)}
    return [own.get(c.name, c) for c in columns]


def _field(record: np.dtype, name: str, index: int | None) -> tuple[int, np.dtype]:
    """Byte offset (within the record) and scalar type of a field, or of one array entry."""
    sub, offset = record.fields[name][:2]
    base = sub.base
    return offset + (index or 0) * base.itemsize, base


class RowPlan:
    """k datagrams of one (format, packet id) -> k rows of its numeric stream."""

    def __init__(self, stream: StreamDef, packet_format: int) -> None:
        assert stream.packet_id is not None and stream.kind in ("per_car", "numeric")
        dtype = packet_dtype(packet_format, stream.packet_id)
        self.size = dtype.itemsize
        self.n_channels = len(stream.channels)
        # Raw values to read, as (byte offset in the packet, scalar type); every channel maps
        # to one of them or to the NaN cell (-1).
        values: list[tuple[int, np.dtype]] = []
        channel_value: list[int] = []
        minute_pairs: list[tuple[int, int]] = []  # (ms value, minutes value)
        scales: dict[int, float] = {}

        def read(offset: int, scalar: np.dtype) -> int:
            values.append((offset, scalar))
            return len(values) - 1

        header_offset = dtype.fields["header"][1]
        header = dtype["header"]
        uid_offset, _ = _field(header, "sessionUID", None)
        uid = header_offset + uid_offset
        u4 = np.dtype("<u4")
        # sessionUID is not exact as float64: its halves are (little-endian: low half first).
        channel_value += [read(uid + 4, u4), read(uid, u4)]
        for spec in HEADER_CHANNELS[2:]:
            if spec.type == "source":
                channel_value.append(-1)  # written per row by rows()
                continue
            offset, scalar = _field(header, spec.type, None)
            channel_value.append(read(header_offset + offset, scalar))

        def columns_of(record: np.dtype, base: int, columns: list[Column]) -> None:
            for column in columns:
                if column.source not in record.names:
                    channel_value.append(-1)  # this format lacks the field: NaN
                    continue
                value = read(*_at(base, *_field(record, column.source, column.index)))
                channel_value.append(value)
                if column.minutes and column.minutes in record.names:
                    minutes = read(*_at(base, *_field(record, column.minutes, None)))
                    minute_pairs.append((value, minutes))
                if column.scale != 1.0:
                    scales[value] = column.scale

        if stream.cars_field is not None:
            cars_type, cars_offset = dtype.fields[stream.cars_field][:2]
            # The contract has 22 car slots; format 2026's slots 22 and 23 do not fit. Every
            # format has at least 22, so each slot is written.
            assert cars_type.shape[0] >= CARS
            car = cars_type.base
            columns = _for_format(car_columns(stream.packet_id, stream.cars_field), car)
            for index in range(CARS):
                columns_of(car, cars_offset + index * car.itemsize, columns)
        for spec in HEADER_TAIL_CHANNELS:
            offset, scalar = _field(header, spec.type, None)
            channel_value.append(read(header_offset + offset, scalar))
        own = _for_format(packet_columns(stream.packet_id, stream.cars_field), dtype)
        columns_of(dtype, 0, own)
        assert len(channel_value) == self.n_channels

        # Group the values by type, so each type is one contiguous run of gathered bytes; the
        # widest types first and rows padded to 8 bytes, so that every run is aligned for its
        # type (numpy casts unaligned data several times slower).
        order = sorted(
            range(len(values)), key=lambda v: (-values[v][1].itemsize, values[v][1].str, v)
        )
        position = {v: p for p, v in enumerate(order)}
        nan_cell = len(values)
        self.n_values = len(values) + 1
        byte_index: list[np.ndarray] = []
        self.groups: list[tuple[np.dtype, int, int, int, int]] = []
        start = byte_start = 0
        while start < len(order):
            scalar = values[order[start]][1]
            stop = start
            while stop < len(order) and values[order[stop]][1] == scalar:
                offset = values[order[stop]][0]
                byte_index.append(np.arange(offset, offset + scalar.itemsize))
                stop += 1
            byte_stop = byte_start + (stop - start) * scalar.itemsize
            self.groups.append((scalar, start, stop, byte_start, byte_stop))
            start, byte_start = stop, byte_stop
        byte_index.append(np.zeros(-byte_start % 8, np.intp))
        self.byte_index = np.concatenate(byte_index).astype(np.intp)
        self.ms_cells = np.array([position[m] for m, _ in minute_pairs], np.intp)
        self.minute_cells = np.array([position[m] for _, m in minute_pairs], np.intp)
        self.scale_cells = np.array([position[v] for v in scales], np.intp)
        self.scales = np.array(list(scales.values()))
        self.take = np.array([nan_cell if v < 0 else position[v] for v in channel_value], np.intp)
        # Scratch reused by every call: fresh arrays this size cost page faults each time.
        self._gathered = np.empty((CHUNK_ROWS, self.byte_index.size), np.uint8)
        self._cells = np.empty((CHUNK_ROWS, self.n_values))
        self._cells[:, nan_cell] = np.nan

    def rows(self, data: bytes, sources: np.ndarray | float) -> np.ndarray:
        """`data` is k datagrams back to back (each exactly the packet size); `sources` (k,)
        or one source for all."""
        raw = np.frombuffer(data, np.uint8).reshape(-1, self.size)
        k = raw.shape[0]
        out = np.empty((k, self.n_channels))
        if k <= CHUNK_ROWS:
            self._chunk(raw, out)
        else:
            for start in range(0, k, CHUNK_ROWS):
                self._chunk(raw[start : start + CHUNK_ROWS], out[start : start + CHUNK_ROWS])
        out[:, SOURCE_CHANNEL] = sources
        return out

    def _chunk(self, raw: np.ndarray, out: np.ndarray) -> None:
        k = raw.shape[0]
        gathered = raw.take(self.byte_index, axis=1, out=self._gathered[:k])
        cells = self._cells[:k]
        for scalar, start, stop, byte_start, byte_stop in self.groups:
            cells[:, start:stop] = gathered[:, byte_start:byte_stop].view(scalar)
        if self.ms_cells.size:
            cells[:, self.ms_cells] += MINUTE_MS * cells[:, self.minute_cells]
        if self.scale_cells.size:
            cells[:, self.scale_cells] *= self.scales
        cells.take(self.take, axis=1, out=out)


def _at(base: int, offset: int, scalar: np.dtype) -> tuple[int, np.dtype]:
    return base + offset, scalar

"""Packets to numeric stream samples, vectorised.

A `RowPlan` turns k datagrams of one (format, packet id) into a (k, channels) float64 array
with a fixed number of numpy calls, whatever k is: the packet bytes are viewed through the
packet dtype, each block of fields is cast in one call to an all-float64 twin of its layout,
and columns are picked, combined (minutes + ms) and scaled with index arrays. No Python object
is made per field. (JSON streams: json_packets.py.)
"""

from __future__ import annotations

import numpy as np

from modules.f1_udp import HEADER_DTYPE, packet_dtype
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


class _Block:
    """Columns taken from one struct (a per-car array, or the packet's own fields)."""

    def __init__(self, record: np.dtype, columns: list[Column]) -> None:
        names = [n for n in record.names if any(n in (c.source, c.minutes) for c in columns)]
        self.view = np.dtype(
            {
                "names": names,
                "formats": [record.fields[n][0] for n in names],
                "offsets": [record.fields[n][1] for n in names],
                "itemsize": record.itemsize,
            }
        )
        self.flat = np.dtype([(n, "<f8", record[n].shape) for n in names])
        start, position = 0, {}
        for n in names:
            position[n] = start
            start += int(np.prod(record[n].shape, dtype=int))
        self.width = start
        present = [j for j, c in enumerate(columns) if c.source in position]
        self.n_columns = len(columns)
        self.present = np.array(present, dtype=np.intp)
        self.absent = np.array(
            [j for j in range(len(columns)) if j not in set(present)], dtype=np.intp
        )
        self.take = np.array(
            [position[columns[j].source] + (columns[j].index or 0) for j in present], np.intp
        )
        minutes = [j for j in present if columns[j].minutes in position]
        self.minute_cols = np.array(minutes, dtype=np.intp)
        self.minute_take = np.array([position[columns[j].minutes] for j in minutes], np.intp)
        scaled = [j for j in present if columns[j].scale != 1.0]
        self.scale_cols = np.array(scaled, dtype=np.intp)
        self.scales = np.array([columns[j].scale for j in scaled])
        self.simple = len(present) == len(columns) and np.array_equal(
            self.take, np.arange(len(columns))
        )

    def values(self, records: np.ndarray) -> np.ndarray:
        """(..., n_columns) float64 for `records` of the block's struct (any shape)."""
        n = records.size
        # One C-level cast of every field to float64; then whole-column numpy operations.
        raw = records.view(self.view).astype(self.flat).view("<f8").reshape(n, self.width)
        if self.simple:
            out = raw
        elif self.absent.size:
            out = np.full((n, self.n_columns), np.nan)
            out[:, self.present] = raw.take(self.take, axis=1)
        else:
            out = raw.take(self.take, axis=1)
        if self.minute_cols.size:
            out[:, self.minute_cols] += MINUTE_MS * raw.take(self.minute_take, axis=1)
        if self.scale_cols.size:
            out[:, self.scale_cols] *= self.scales
        return out.reshape((*records.shape, self.n_columns))


def _for_format(columns: list[Column], record: np.dtype) -> list[Column]:
    """The stream's columns (every format's) as this format's record has them (its scales)."""
    own = {c.name: c for c in record_columns(record)}
    return [own.get(c.name, c) for c in columns]


_HEADER_CH = len(HEADER_CHANNELS)
_TAIL_CH = len(HEADER_TAIL_CHANNELS)
_HEADER_FLOATS = np.dtype([(name, "<f8") for name in HEADER_DTYPE.names])
# Positions in HEADER_DTYPE of the channels after the uid halves, and of the tail channels.
_HEADER_FIRST = [HEADER_DTYPE.names.index(c.type) for c in HEADER_CHANNELS[2:6]]
_HEADER_TAIL = [HEADER_DTYPE.names.index(c.type) for c in HEADER_TAIL_CHANNELS]


class RowPlan:
    """k datagrams of one (format, packet id) -> k rows of its numeric stream."""

    def __init__(self, stream: StreamDef, packet_format: int) -> None:
        assert stream.packet_id is not None and stream.kind in ("per_car", "numeric")
        self.dtype = packet_dtype(packet_format, stream.packet_id)
        self.n_channels = len(stream.channels)
        self.cars_field = stream.cars_field
        self.car_block: _Block | None = None
        self.cars = 0
        start = _HEADER_CH
        if stream.cars_field is not None:
            cars_type = self.dtype[stream.cars_field]
            # The contract has 22 car slots; format 2026's slots 22 and 23 do not fit. Every
            # format has at least 22, so each slot is written (rows() relies on it).
            assert cars_type.shape[0] >= CARS
            self.cars = CARS
            columns = _for_format(car_columns(stream.packet_id, stream.cars_field), cars_type.base)
            self.car_block = _Block(cars_type.base, columns)
            self.car_slice = slice(start, start + CARS * len(columns))
            start = self.car_slice.stop
        self.tail_start = start
        own = _for_format(packet_columns(stream.packet_id, stream.cars_field), self.dtype)
        self.own_block = _Block(self.dtype, own) if own else None
        self.own_slice = slice(start + _TAIL_CH, start + _TAIL_CH + len(own))
        assert self.own_slice.stop == self.n_channels

    def rows(self, data: bytes, sources: np.ndarray) -> np.ndarray:
        """`data` is k datagrams back to back (each exactly the packet size); `sources` (k,)."""
        packets = np.frombuffer(data, dtype=self.dtype)
        k = packets.shape[0]
        out = np.empty((k, self.n_channels))  # every channel is written below
        header = packets["header"]
        uid = header["sessionUID"]
        out[:, 0] = uid >> np.uint64(32)
        out[:, 1] = uid & np.uint64(0xFFFFFFFF)
        # The rest of the header in one cast; sessionUID (column 6) is not exact as float64.
        fields = header.astype(_HEADER_FLOATS).view("<f8").reshape(k, -1)
        out[:, 2:6] = fields[:, _HEADER_FIRST]
        out[:, 6] = sources
        out[:, self.tail_start : self.tail_start + _TAIL_CH] = fields[:, _HEADER_TAIL]
        if self.car_block is not None:
            cars = packets[self.cars_field][:, : self.cars]
            out[:, self.car_slice] = self.car_block.values(cars).reshape(k, -1)
        if self.own_block is not None:
            out[:, self.own_slice] = self.own_block.values(packets)
        return out

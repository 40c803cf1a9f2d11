"""The records a live client hands to callbacks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Telemetry:
    """One car's chosen channels from one sample of a per-car stream.

    `values` maps a field name (`speed_kph`, as in the stream catalogue without `car<ii>.`)
    to its value, None where the game gave no value (a field the packet format lacks, or a
    restricted one); `units` maps the same names to their units.
    """

    stream: str
    car: int
    session_uid: int
    session_time_s: float
    frame: int
    time: float  # the sample's LSL timestamp
    values: dict[str, float | None]
    units: dict[str, str]

    def __getitem__(self, field: str) -> float | None:
        return self.values[field]


class Record(dict):
    """One JSON record (a lap, a standings table, a live-timing message ...): the record's own
    keys, plus `topic` and `time` (the sample's LSL timestamp) as attributes."""

    __slots__ = ("time", "topic")

    def __init__(self, topic: str, time: float, fields: dict) -> None:
        super().__init__(fields)
        self.topic = topic
        self.time = time

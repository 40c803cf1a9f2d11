"""Which stream carries a topic, and how its samples become records (no I/O).

Topics are the catalogue's JSON streams without the `raceplane.` prefix (`laps`, `standings`,
`events`, `session`, `participants`, `decoder`, ...), and any other name is a live-timing topic
(`TimingData`, `RaceControlMessages`, `CarData.z`, ...) taken from `raceplane.livetiming`.
Per-car telemetry is read by field name (`speed_kph`) from the per-car stream that has it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson

from modules.live.dispatch import Decimator
from modules.live.records import Telemetry
from modules.stream_catalogue import CARS, CATALOGUE, STREAMS

LIVETIMING_STREAM = "raceplane.livetiming"
JSON_TOPICS = {
    s.name.removeprefix("raceplane."): s.name
    for s in CATALOGUE
    if s.kind == "json" and s.name != LIVETIMING_STREAM
}
PER_CAR_STREAMS = tuple(s.name for s in CATALOGUE if s.kind == "per_car")
# The header channels that say which sample of which session this is.
UID_HI, UID_LO = "header.session_uid_hi", "header.session_uid_lo"
SESSION_TIME, FRAME = "header.session_time_s", "header.frame_identifier"


def stream_of_topic(topic: str) -> str:
    """The stream a JSON topic is read from."""
    if not topic or not isinstance(topic, str):
        raise ValueError(f"a topic is a non-empty name, got {topic!r}")
    return JSON_TOPICS.get(topic, LIVETIMING_STREAM)


def decode_json(stream: str, text: str) -> tuple[str, dict] | None:
    """(topic, record) of one JSON sample; None for a sample that is not a JSON object."""
    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    if stream == LIVETIMING_STREAM:
        topic = record.get("topic")
        return (topic, record) if isinstance(topic, str) else None
    return stream.removeprefix("raceplane."), record


def stream_of_fields(fields: Sequence[str], stream: str | None = None) -> str:
    """The per-car stream holding every one of `fields` (`stream` if given, checked)."""
    if not fields:
        raise ValueError("name at least one channel, e.g. channels=['speed_kph']")
    candidates = [stream] if stream else list(PER_CAR_STREAMS)
    for name in candidates:
        definition = STREAMS.get(name)
        if definition is None or definition.kind != "per_car":
            raise ValueError(f"{name!r} is not a per-car stream; those are {PER_CAR_STREAMS}")
    having = [
        name
        for name in candidates
        if all(f"car00.{f}" in {c.label for c in STREAMS[name].channels} for f in fields)
    ]
    if not having:
        where = stream or "any per-car stream"
        raise ValueError(f"{where} has no channel of each of {list(fields)}")
    if len(having) > 1:
        raise ValueError(f"{list(fields)} are in {having}: say which with stream=")
    return having[0]


@dataclass
class TelemetryPlan:
    """Picks chosen cars' channels out of a per-car stream's samples, at a chosen rate."""

    stream: str
    cars: tuple[int, ...]
    fields: tuple[str, ...]
    rate_hz: float | None
    _columns: np.ndarray = field(init=False, repr=False)  # (cars, fields) channel indices
    _header: tuple[int, int, int, int] = field(init=False, repr=False)
    _units: dict[str, str] = field(init=False, repr=False)
    _decimators: dict[int, Decimator] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        bad = [car for car in self.cars if not 0 <= car < CARS]
        if bad or not self.cars:
            raise ValueError(f"cars are indices 0..{CARS - 1}, got {list(self.cars) or 'none'}")
        self._decimators = {car: Decimator(self.rate_hz) for car in self.cars}
        labels = [c.label for c in STREAMS[self.stream].channels]
        self.bind(labels, [c.unit for c in STREAMS[self.stream].channels])

    def bind(self, labels: Sequence[str], units: Sequence[str]) -> None:
        """Look the channels up by label in the stream as it is published."""
        index = {label: i for i, label in enumerate(labels)}
        try:
            self._columns = np.array(
                [[index[f"car{car:02d}.{f}"] for f in self.fields] for car in self.cars]
            )
            self._header = (index[UID_HI], index[UID_LO], index[SESSION_TIME], index[FRAME])
        except KeyError as error:
            raise ValueError(f"{self.stream} has no channel {error.args[0]!r}") from None
        first = self._columns[0]
        self._units = {f: units[i] for f, i in zip(self.fields, first, strict=True)}

    def records(self, rows: np.ndarray, stamps: np.ndarray) -> list[Telemetry]:
        """The records of `rows` (samples of the stream, oldest first) due at the rate."""
        out: list[Telemetry] = []
        hi, lo, clock, frame = self._header
        picked = rows[:, self._columns]  # (samples, cars, fields)
        for row, values, stamp in zip(rows, picked, stamps, strict=True):
            session_time = float(row[clock])
            uid = (int(row[hi]) << 32) | int(row[lo])
            for car, car_values in zip(self.cars, values, strict=True):
                if not self._decimators[car].passes(session_time):
                    continue
                out.append(
                    Telemetry(
                        stream=self.stream,
                        car=car,
                        session_uid=uid,
                        session_time_s=session_time,
                        frame=int(row[frame]),
                        time=float(stamp),
                        values={
                            # tolist() gives Python floats: math.isfinite is ~20x numpy's
                            # per-scalar call, at 1,320 records a second for 22 cars at 60 Hz.
                            f: (v if math.isfinite(v) else None)
                            for f, v in zip(self.fields, car_values.tolist(), strict=True)
                        },
                        units=self._units,
                    )
                )
        return out

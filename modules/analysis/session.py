"""`open_recording(*files)`: a Session with its laps table, any lap's telemetry and the values
users logged into it (a SessionStore's variables, parameters and datasets)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import pandas as pd

from modules.live.store import StoreData, load_store

from .laps import laps_table, run_lap_timer
from .sources import RecordingError, Streams, read
from .telemetry import lap_telemetry


class Session:
    """One recording: `laps` (a DataFrame, one row a lap), `telemetry(lap)` and `store(name)`."""

    def __init__(self, streams: Streams, name: str = "", files: Sequence[Path] = ()) -> None:
        self.streams = streams
        self.name = name
        self.files = list(files)

    @property
    def kind(self) -> str:
        return self.streams.kind

    @property
    def warnings(self) -> list[str]:
        """What could not be read (a cut tail, refused samples): nothing is dropped silently."""
        return self.streams.warnings

    @cached_property
    def laps(self) -> pd.DataFrame:
        return laps_table(self.streams, run_lap_timer(self.streams))

    def drivers(self) -> list[str]:
        return list(dict.fromkeys(self.laps["Driver"]))

    def laps_of(self, driver: str) -> pd.DataFrame:
        return self.laps[self.laps["Driver"] == driver]

    def fastest_lap(self, driver: str | None = None) -> pd.Series:
        """The fastest valid lap (of one driver, or of all); ValueError when there is none."""
        laps = self.laps if driver is None else self.laps_of(driver)
        valid = laps[~laps["Deleted"]]
        pool = valid if len(valid) else laps
        if not len(pool):
            raise ValueError(f"no laps of {driver!r}" if driver else "no laps in this recording")
        return pool.loc[pool["LapTime"].idxmin()]

    def lap(self, driver: str, number: int) -> pd.Series:
        rows = self.laps[(self.laps["Driver"] == driver) & (self.laps["LapNumber"] == number)]
        if not len(rows):
            raise ValueError(f"{driver!r} has no lap {number}")
        return rows.iloc[-1]

    def telemetry(self, lap: pd.Series) -> pd.DataFrame:
        """The lap's frames: SessionTime, Time, Distance, Speed, Throttle, Brake, nGear, RPM, DRS,
        X, Y, Z. Empty for a recording without per-car telemetry (live timing without CarData)."""
        return lap_telemetry(
            self.streams,
            str(lap["SessionUID"]),
            int(lap["CarIndex"]),
            int(lap["LapNumber"]),
            lap["LapTime"].total_seconds(),
        )

    def store(self, name: str) -> StoreData:
        """A user's store as recorded (modules.live.SessionStore): variables as Series by LSL
        time, parameters as last set, datasets as arrays. KeyError if the recording has none."""
        if self.kind != "xdf":
            raise RecordingError(f"{self.name}: only an XDF recording holds users' stores")
        return load_store(self.files, name)


def open_recording(*files: str | Path) -> Session:
    """Open a recording: an XDF file or its rotated parts (any order), a raw UDP capture, or
    a live-timing file (FastF1's saved format, plain or gzip). RecordingError if it can't be."""
    if not files:
        raise RecordingError("open_recording() needs at least one file")
    names = sorted(Path(f).name for f in files)
    name = names[0] if len(names) == 1 else f"{names[-1]} ({len(names)} parts)"
    return Session(read(*files), name=name, files=[Path(f) for f in files])

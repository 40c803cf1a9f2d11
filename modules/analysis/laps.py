"""The laps of a recording, found by the lap timer itself, as a FastF1-shaped DataFrame.

The lap timer's plain classes (`Inputs` -> `LapTimer` -> `LapDetector`) are fed the recorded
streams in time order exactly as its feed hands them over live, with an in-memory store: so a
lap here is a lap on the live timing screens, through flashbacks, restarts, red flags and the
SessionHistory cross-check. What the lap timer does not keep (lap start, position at the line,
pit lane entry and exit times) is read from the recorded LapData around each lap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modules.lap_timer.detector import RESULT_FINISHED
from modules.lap_timer.inputs import CAR_STATUS, LAP_DATA, Inputs
from modules.lap_timer.inputs import JSON as TIMER_JSON
from modules.lap_timer.points import PointsRules
from modules.lap_timer.store import Store
from modules.lap_timer.timer import LapTimer

from .sources import RecordingError, Streams

# The lap timer's tyre names -> FastF1's Compound values.
COMPOUNDS = {
    "soft": "SOFT",
    "medium": "MEDIUM",
    "hard": "HARD",
    "inter": "INTERMEDIATE",
    "wet": "WET",
}
LAP_COLUMNS = [
    "Time", "Driver", "DriverNumber", "LapTime", "LapNumber", "Stint", "PitOutTime",
    "PitInTime", "Sector1Time", "Sector2Time", "Sector3Time", "Sector1SessionTime",
    "Sector2SessionTime", "Sector3SessionTime", "Compound", "TyreLife", "Team", "LapStartTime",
    "LapStartDate", "Position", "Deleted", "IsAccurate",
    # Beyond FastF1: the game's own terms, kept for what FastF1 has no column for.
    "PitIn", "PitOut", "Valid", "CarIndex", "SessionUID", "FullName",
]  # fmt: skip


@dataclass
class CarFrames:
    """One car's LapData rows of one session: times and the fields the lap table needs."""

    time: np.ndarray
    lap: np.ndarray
    position: np.ndarray
    pit: np.ndarray
    lap_time_ms: np.ndarray  # current_lap_time_ms: time into the lap (NaN for live timing)
    distance: np.ndarray
    rows: np.ndarray  # indexes into the lap_data stream
    finished: np.ndarray  # took the flag: the frames after the line are no lap's

    def lap_rows(self, number: int) -> np.ndarray:
        """Rows of the last run of lap `number` (a flashback may have run it twice)."""
        rows = np.flatnonzero((self.lap == number) & ~self.finished)
        if len(rows) == 0:
            return rows
        breaks = np.flatnonzero(np.diff(rows) != 1)
        return rows[breaks[-1] + 1 :] if len(breaks) else rows


def session_uids(lap_data) -> np.ndarray:
    hi = lap_data.column("header.session_uid_hi").astype(np.uint64)
    lo = lap_data.column("header.session_uid_lo").astype(np.uint64)
    return (hi << np.uint64(32)) | lo


def car_frames(streams: Streams, uid: str, car: int) -> CarFrames:
    lap_data = streams.numeric[LAP_DATA]
    rows = np.flatnonzero(session_uids(lap_data) == np.uint64(int(uid)))
    prefix = f"car{car:02d}."

    def field(name: str) -> np.ndarray:
        return lap_data.values[rows, lap_data.index(prefix + name)]

    return CarFrames(
        time=lap_data.values[rows, lap_data.index("header.session_time_s")],
        lap=np.nan_to_num(field("current_lap_num")).astype(int),
        position=field("car_position"),
        pit=np.nan_to_num(field("pit_status")),
        lap_time_ms=field("current_lap_time_ms"),
        distance=field("lap_distance_m"),
        rows=rows,
        finished=field("result_status") == RESULT_FINISHED,
    )


def run_lap_timer(streams: Streams) -> LapTimer:
    """The lap timer, fed every recorded sample it reads, in time order."""
    if LAP_DATA not in streams.numeric:
        raise RecordingError(
            "the recording has no raceplane.lap_data stream: it holds no laps "
            f"(streams: {', '.join(sorted([*streams.numeric, *streams.json])) or 'none'})"
        )
    timer = LapTimer(Store(":memory:"), PointsRules())
    inputs = Inputs(timer)
    batch: list[tuple[float, str, Any]] = []
    for name in (LAP_DATA, CAR_STATUS):
        stream = streams.numeric.get(name)
        if stream is None:
            continue
        inputs.set_channels(name, stream.labels)
        batch += zip(
            stream.stamps.tolist(), [name] * len(stream.stamps), stream.values, strict=True
        )
    for name in TIMER_JSON:
        stream = streams.json.get(name)
        if stream is not None:
            batch += zip(
                stream.stamps.tolist(), [name] * len(stream.stamps), stream.objects, strict=True
            )
    refused = inputs.handle_batch(batch)
    if refused:
        stream, error = refused[0]
        streams.warnings.append(f"{len(refused)} samples the lap timer refused ({stream}: {error})")
    return timer


def laps_table(streams: Streams, timer: LapTimer) -> pd.DataFrame:
    """Every lap of every session in the recording, one row each, FastF1's column names."""
    records: list[dict[str, Any]] = []
    participants = _participants(streams)
    for uid, session in timer.sessions.items():
        if session.source != "game":
            continue
        by_car: dict[int, list] = {}
        for lap in session.laps:
            by_car.setdefault(lap.car_index, []).append(lap)
        for car_index, laps in by_car.items():
            laps.sort(key=lambda lap: lap.lap)
            frames = car_frames(streams, uid, car_index)
            entry = participants.get((uid, car_index), {})
            records += _car_laps(streams, uid, car_index, laps, frames, entry)
    table = pd.DataFrame.from_records(records, columns=LAP_COLUMNS)
    for name in ("LapNumber", "Stint", "TyreLife", "CarIndex"):
        table[name] = table[name].astype("Int64")
    table["Position"] = table["Position"].astype("float64")
    for name in ("Deleted", "IsAccurate", "PitIn", "PitOut", "Valid"):
        table[name] = table[name].astype(bool)
    for name in LAP_COLUMNS:
        if name.endswith("Time"):
            table[name] = pd.to_timedelta(table[name], unit="s")
    table["LapStartDate"] = pd.to_datetime(table["LapStartDate"], utc=True)
    return table.sort_values(["SessionUID", "LapStartTime", "CarIndex"], kind="stable").reset_index(
        drop=True
    )


def _car_laps(
    streams: Streams, uid: str, car_index: int, laps: list, frames: CarFrames, entry: dict
) -> list[dict[str, Any]]:
    out = []
    stint, stint_start = 1, laps[0].lap if laps else 1
    entries = np.flatnonzero((frames.pit[1:] != 0) & (frames.pit[:-1] == 0)) + 1
    exits = np.flatnonzero((frames.pit[1:] == 0) & (frames.pit[:-1] != 0)) + 1
    lap_data = streams.numeric[LAP_DATA]
    for lap in laps:
        seconds = lap.lap_time_ms / 1000.0
        rows = frames.lap_rows(lap.lap)
        start = end = None
        if len(rows):
            first = rows[0]
            into = frames.lap_time_ms[first]
            if np.isfinite(into):
                # The game says how far into the lap its first frame was.
                start = frames.time[first] - into / 1000.0
                end = start + seconds
            elif rows[-1] + 1 < len(frames.time):
                # The live feed does not: the lap ended when the next one was reported begun.
                end = frames.time[rows[-1] + 1]
        if end is None and lap.session_time_s is not None:
            end = lap.session_time_s
        if start is None and end is not None:
            start = end - seconds
        at_end = None
        if end is not None and len(frames.time):
            at_end = min(int(np.searchsorted(frames.time, end, "left")), len(frames.time) - 1)
        position = frames.position[at_end] if at_end is not None else np.nan
        sectors = [None if s is None else s / 1000.0 for s in lap.sector_ms]
        sector_times = [None, None, None]
        if start is not None and None not in sectors:
            sector_times = [start + sum(sectors[: k + 1]) for k in range(3)]
        pit_in_time = _last_between(frames.time, entries, start, end) if lap.pit_in else None
        pit_out_time = _last_between(frames.time, exits, start, end) if lap.pit_out else None
        stamp = None
        if at_end is not None:
            stamp = lap_data.stamps[frames.rows[at_end]] - (frames.time[at_end] - (start or 0))
        compound = COMPOUNDS.get(lap.tyre, lap.tyre.upper() or None)
        out.append(
            {
                "Time": end,
                "Driver": entry.get("tla") or lap.driver,
                "DriverNumber": str(entry.get("race_number", "")) or None,
                "LapTime": seconds,
                "LapNumber": lap.lap,
                "Stint": stint,
                "PitOutTime": pit_out_time,
                "PitInTime": pit_in_time,
                "Sector1Time": sectors[0],
                "Sector2Time": sectors[1],
                "Sector3Time": sectors[2],
                "Sector1SessionTime": sector_times[0],
                "Sector2SessionTime": sector_times[1],
                "Sector3SessionTime": sector_times[2],
                "Compound": compound,
                "TyreLife": lap.lap - stint_start + 1,
                "Team": lap.team,
                "LapStartTime": start,
                "LapStartDate": None if stamp is None else streams.date_of(float(stamp)),
                "Position": position if position and np.isfinite(position) else np.nan,
                "Deleted": not lap.valid,
                "IsAccurate": None not in sectors and not lap.pit_in and not lap.pit_out,
                "PitIn": lap.pit_in,
                "PitOut": lap.pit_out,
                "Valid": lap.valid,
                "CarIndex": car_index,
                "SessionUID": uid,
                "FullName": lap.driver,
            }
        )
        if lap.pit_in:  # the next lap starts a new stint, on a new set
            stint, stint_start = stint + 1, lap.lap + 1
    return out


def _last_between(
    times: np.ndarray, marks: np.ndarray, start: float | None, end: float | None
) -> float | None:
    if start is None or end is None or not len(marks):
        return None
    inside = marks[(times[marks] >= start) & (times[marks] <= end)]
    return float(times[inside[-1]]) if len(inside) else None


def _participants(streams: Streams) -> dict[tuple[str, int], dict[str, Any]]:
    """(session uid, car index) -> that car's last Participants entry."""
    stream = streams.json.get("raceplane.participants")
    out: dict[tuple[str, int], dict[str, Any]] = {}
    if stream is None:
        return out
    for packet in stream.objects:
        uid = str(packet.get("header", {}).get("session_uid"))
        count = int(packet.get("num_active_cars", 22))
        for index, entry in enumerate(packet.get("participants", [])[:count]):
            if isinstance(entry, dict):
                out[(uid, index)] = entry
    return out

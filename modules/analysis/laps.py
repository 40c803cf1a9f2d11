"""The laps of a recording, found by the lap timer itself, as a FastF1-shaped DataFrame.

The lap timer's plain classes (`Inputs` -> `LapTimer` -> `LapDetector`) are fed the recorded
streams in time order exactly as its feed hands them over live, with an in-memory store: so a
lap here is a lap on the live timing screens, through flashbacks, restarts, red flags and the
SessionHistory cross-check. What the lap timer does not keep (lap start, position at the line,
pit lane entry and exit times) is read from the recorded LapData around each lap.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modules.lap_timer.detector import MAX_CARS, RESULT_FINISHED
from modules.lap_timer.inputs import CAR_STATUS, LAP_DATA, Inputs
from modules.lap_timer.inputs import JSON as TIMER_JSON
from modules.lap_timer.points import PointsRules
from modules.lap_timer.store import Store
from modules.lap_timer.timer import LapTimer

from .sources import JsonStream, NumericStream, RecordingError, Streams

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
    """The lap timer, fed the recorded samples it reads, in time order.

    Only the samples that can change what it finds are handed over (a whole race at 60 Hz is
    hundreds of thousands of frames, most of them repeating the last): LapData frames in which
    a field the lap detector reads changed, or time went back (a flashback), and the frame
    before each; CarStatus samples whose tyres changed; JSON packets whose content (not their
    header's clock) changed, and each car's last SessionHistory again at the end, so the
    cross-check sees every lap the detector has seen.
    """
    if LAP_DATA not in streams.numeric:
        raise RecordingError(
            "the recording has no raceplane.lap_data stream: it holds no laps "
            f"(streams: {', '.join(sorted([*streams.numeric, *streams.json])) or 'none'})"
        )
    timer = LapTimer(Store(":memory:"), PointsRules())
    inputs = Inputs(timer)
    batch: list[tuple[float, str, Any]] = []
    lap_data = streams.numeric[LAP_DATA]
    inputs.set_channels(LAP_DATA, lap_data.labels)
    keep = _changes(lap_data, [f"car{i:02d}.{f}" for i in range(MAX_CARS) for f in DETECTOR_FIELDS])
    keep |= _time_went_back(lap_data)
    status = streams.numeric.get(CAR_STATUS)
    if status is not None:
        inputs.set_channels(CAR_STATUS, status.labels)
        tyres = _changes(status, [f"car{i:02d}.visual_tyre_compound" for i in range(MAX_CARS)])
        # The LapData frame at each tyre change too: the detector reads tyres with each frame.
        at = np.searchsorted(lap_data.stamps, status.stamps[tyres])
        keep[np.clip(at, 0, len(keep) - 1)] = True
        batch += _rows(CAR_STATUS, status, tyres)
    # And the frame before every kept one: the last state of what changed.
    keep[:-1] |= keep[1:]
    batch += _rows(LAP_DATA, lap_data, keep)
    end = max((float(s.stamps[-1]) for s in streams.numeric.values() if len(s.stamps)), default=0)
    for name in TIMER_JSON:
        stream = streams.json.get(name)
        if stream is not None:
            batch += _distinct(name, stream, end)
    batch.sort(key=lambda item: item[0])  # one timeline; equal stamps keep their order
    refused = inputs.handle_batch((stream, sample) for _, stream, sample in batch)
    if refused:
        stream, error = refused[0]
        streams.warnings.append(f"{len(refused)} samples the lap timer refused ({stream}: {error})")
    return timer


# The LapData fields the lap detector's state follows (see modules/lap_timer/detector.py).
DETECTOR_FIELDS = (
    "current_lap_num", "sector1_time_ms", "sector2_time_ms", "current_lap_invalid",
    "pit_status", "driver_status", "result_status", "last_lap_time_ms",
)  # fmt: skip
UID = ("header.session_uid_hi", "header.session_uid_lo")


def _changes(stream: NumericStream, labels: list[str]) -> np.ndarray:
    """Rows where any of these channels (or the session) differs from the row before."""
    columns = [stream.index(label) for label in (*UID, *labels) if stream.has(label)]
    values = np.ascontiguousarray(stream.values)
    # Compared as bit patterns: NaN (a field the frame lacks) equals itself, and it is a
    # third the cost of comparing floats with NaN handling. A bit change without a value
    # change (0.0 and -0.0) only keeps a frame more.
    bits = values.view(f"u{values.dtype.itemsize}") if values.dtype.kind == "f" else values
    keep = np.ones(len(values), bool)
    # In blocks of rows: the columns of a block fit in the cache (a race's are 40 MB).
    for start in range(1, len(values), CHANGE_BLOCK):
        block = bits[start - 1 : start + CHANGE_BLOCK, columns]
        keep[start : start + CHANGE_BLOCK] = np.any(block[1:] != block[:-1], axis=1)
    return keep


CHANGE_BLOCK = 2048


def _time_went_back(stream: NumericStream) -> np.ndarray:
    time = stream.column("header.session_time_s")
    back = np.zeros(len(time), bool)
    back[1:] = time[1:] < time[:-1]
    back[-1:] = True  # the last frame: the state at the end
    return back


def _rows(name: str, stream: NumericStream, keep: np.ndarray) -> list[tuple[float, str, Any]]:
    rows = np.flatnonzero(keep)
    return list(
        zip(stream.stamps[rows].tolist(), [name] * len(rows), stream.values[rows], strict=True)
    )


def _distinct(name: str, stream: JsonStream, end: float) -> list[tuple[float, str, Any]]:
    """The packets whose content differs from the last of the same car (header aside)."""
    out: list[tuple[float, str, Any]] = []
    last: dict[Any, Any] = {}
    final: dict[Any, tuple[float, Any]] = {}
    stamps = stream.stamps.tolist()
    texts = stream.texts if stream.texts is not None else None
    for k, stamp in enumerate(stamps):
        if texts is not None:
            text = texts[k]
            # The header is a flat object first in every packet: the rest is the content,
            # compared where it lies (a race's SessionHistory packets are 100 MB of text).
            start = text.find("}") + 1
            uid = text[text.find('"session_uid"') : text.find('"session_time_s"')]
            car = CAR_INDEX.search(text, start) if name == HISTORY else None
            key = (uid, car.group(1) if car else None)
            if name == SESSION:
                body = _without_clock(text, start)
                if last.get(key) == body:
                    continue
            else:
                body = last.get(key)
                same_length = body is not None and len(body) == len(text) - start
                if same_length and text.startswith(body, start):
                    continue
                body = text[start:]
            last[key] = body
            packet = json.loads(text)
        else:
            packet = stream.objects[k]
            content = {k: v for k, v in packet.items() if k != "header"}
            key = (packet.get("header", {}).get("session_uid"), packet.get("car_idx"))
            if last.get(key) == content:
                continue
            last[key] = content
        out.append((stamp, name, packet))
        if name == HISTORY:
            final[key] = (stamp, packet)
    # Each car's newest history once more, after everything: nothing the detector saw of it
    # is left unchecked for want of a repeat (the same packet is resent every second or so).
    out += [(max(end, stamp) + 1e-6, name, packet) for stamp, packet in final.values()]
    return out


HISTORY = "raceplane.session_history"
SESSION = "raceplane.session"
CAR_INDEX = re.compile(r'"car_idx":\s*(\d+)')
# A Session packet's own clock, counting down every second: no content the lap timer reads.
SESSION_CLOCK = '"session_time_left_s":'


def _without_clock(text: str, start: int) -> str:
    at = text.find(SESSION_CLOCK, start)
    if at < 0:
        return text[start:]
    end = at + len(SESSION_CLOCK)
    while end < len(text) and text[end] not in ",}":
        end += 1
    return text[start:at] + text[end:]


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

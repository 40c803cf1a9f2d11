"""One lap's telemetry, and comparing two laps on a common distance axis.

A lap's samples are the recorded frames in which the car's LapData says it is on that lap;
each carries what the game sent for that frame: CarTelemetry (speed, throttle, brake, gear,
rpm, DRS) and Motion (world position) matched by session time. `Time` is the time into the lap
(the game's own current lap time where it gives it), `Distance` the lap distance in metres.

The line itself falls between two frames; comparisons put each lap's ends in exactly
(distance 0 at time 0, the lap length at the lap time), so the delta at the line is the
difference of the lap times.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from modules.stream_catalogue import CARS

from .laps import car_frames, session_uids
from .sources import TELEMETRY_STREAMS, Streams

# Telemetry column -> (stream, channel field, scale). FastF1's names and units where it has them.
CHANNELS = {
    "Speed": ("raceplane.car_telemetry", "speed_kph", 1.0),
    "Throttle": ("raceplane.car_telemetry", "throttle", 100.0),  # percent, as FastF1
    "Brake": ("raceplane.car_telemetry", "brake", 100.0),  # percent (FastF1: on/off)
    "nGear": ("raceplane.car_telemetry", "gear", 1.0),
    "RPM": ("raceplane.car_telemetry", "engine_rpm", 1.0),
    "DRS": ("raceplane.car_telemetry", "drs", 1.0),
    # FastF1's X/Y are the ground plane and Z the height: the game's x/z and y.
    "X": ("raceplane.motion", "world_position_x_m", 1.0),
    "Y": ("raceplane.motion", "world_position_z_m", 1.0),
    "Z": ("raceplane.motion", "world_position_y_m", 1.0),
}
TRACE_COLUMNS = ("Speed", "Throttle", "Brake", "nGear", "RPM", "DRS")
# What is read of the telemetry streams: the CHANNELS of every car, and the frame's session.
READ = {
    name: {"header.session_uid_hi", "header.session_uid_lo", "header.session_time_s"}
    | {
        f"car{car:02d}.{field}"
        for n, field, _ in CHANNELS.values()
        if n == name
        for car in range(CARS)
    }
    for name in TELEMETRY_STREAMS
}


def lap_telemetry(
    streams: Streams, uid: str, car: int, lap: int, lap_time_s: float | None = None
) -> pd.DataFrame:
    """The frames of one lap: SessionTime, Time, Distance and the CHANNELS, one row a frame."""
    streams.require(READ)
    frames = car_frames(streams, uid, car)
    rows = frames.lap_rows(lap)
    session_time = frames.time[rows]
    into = frames.lap_time_ms[rows] / 1000.0
    if len(rows) and not np.all(np.isfinite(into)):
        into = session_time - session_time[0]
    lap_data = streams.numeric["raceplane.lap_data"]
    table = {
        "SessionTime": pd.to_timedelta(session_time, unit="s"),
        "Time": pd.to_timedelta(into, unit="s"),
        "Distance": frames.distance[rows],
        "FrameIdentifier": lap_data.values[
            frames.rows[rows], lap_data.index("header.frame_identifier")
        ],
    }
    matched: dict[str, np.ndarray | None] = {}
    for column, (name, field, scale) in CHANNELS.items():
        stream = streams.numeric.get(name)
        label = f"car{car:02d}.{field}"
        if stream is None or not stream.has(label):
            table[column] = np.full(len(rows), np.nan)
            continue
        if name not in matched:
            matched[name] = _match(stream, uid, session_time)
        picks = matched[name]
        values = np.full(len(rows), np.nan)
        found = picks >= 0
        values[found] = stream.values[picks[found], stream.index(label)] * scale
        table[column] = values
    out = pd.DataFrame(table)
    out.attrs.update(
        {"LapTime": lap_time_s, "LapLength": track_length(streams, uid), "Car": car, "Lap": lap}
    )
    return out


def _match(stream, uid: str, times: np.ndarray) -> np.ndarray:
    """Row of `stream` (same session) sent in the same frame as each time; -1 where none."""
    in_session = np.flatnonzero(session_uids(stream) == np.uint64(int(uid)))
    own = stream.values[in_session, stream.index("header.session_time_s")]
    if not len(own) or not len(times):
        return np.full(len(times), -1)
    order = np.argsort(own, kind="stable")
    sorted_times = own[order]
    at = np.clip(np.searchsorted(sorted_times, times), 0, len(sorted_times) - 1)
    before = np.clip(at - 1, 0, len(sorted_times) - 1)
    nearer = np.where(
        np.abs(sorted_times[before] - times) < np.abs(sorted_times[at] - times), before, at
    )
    # The last of equal session times (after a flashback the newest frame of that time).
    exact = np.abs(sorted_times[nearer] - times) <= 1e-6
    return np.where(exact, in_session[order[nearer]], -1)


def track_length(streams: Streams, uid: str) -> float | None:
    stream = streams.json.get("raceplane.session")
    if stream is None:
        return None
    for packet in reversed(stream.objects):
        if str(packet.get("header", {}).get("session_uid")) == uid:
            length = packet.get("track_length_m")
            return float(length) if length else None
    return None


def _past_the_line(distance: np.ndarray) -> np.ndarray:
    """The frames after the car crossed the line: at a standing start the first frames of lap
    1 are on the grid, behind the line, at the end of the lap's distance."""
    keep = np.ones(len(distance), bool)
    if len(distance) > 1 and np.isfinite(distance).any():
        wraps = np.flatnonzero(np.diff(distance) < -0.5 * np.nanmax(distance))
        if len(wraps):
            keep[: wraps[-1] + 1] = False
    return keep


def _with_ends(telemetry: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(distance, seconds into the lap), with the line at both ends where it is known."""
    distance = telemetry["Distance"].to_numpy(float)
    seconds = telemetry["Time"].dt.total_seconds().to_numpy()
    keep = np.isfinite(distance) & np.isfinite(seconds) & (distance >= 0)
    keep &= _past_the_line(distance)
    distance, seconds = distance[keep], seconds[keep]
    lap_time = telemetry.attrs.get("LapTime")
    length = telemetry.attrs.get("LapLength")
    if lap_time and not length and len(distance):
        length = float(distance.max())
    if lap_time and length:
        inside = distance < length
        distance = np.concatenate(([0.0], distance[inside], [length]))
        seconds = np.concatenate(([0.0], seconds[inside], [lap_time]))
    # np.interp needs rising distances (a car at rest repeats one, one going back repeats
    # several): each frame further than any before it.
    rising = np.ones(len(distance), bool)
    if len(distance):
        rising[1:] = distance[1:] > np.maximum.accumulate(distance)[:-1]
    return distance[rising], seconds[rising]


def resample(telemetry: pd.DataFrame, distance: np.ndarray) -> pd.DataFrame:
    """The lap's telemetry on the given distances (linear between frames, gear held)."""
    base_distance, base_seconds = _with_ends(telemetry)
    out = {"Distance": distance, "Time": np.interp(distance, base_distance, base_seconds)}
    raw_distance = telemetry["Distance"].to_numpy(float)
    on_lap = _past_the_line(raw_distance)
    raw_distance = raw_distance[on_lap]
    order = np.argsort(raw_distance, kind="stable")
    for column in (*TRACE_COLUMNS, "X", "Y"):
        values = telemetry[column].to_numpy(float)[on_lap][order]
        if column in ("nGear", "DRS"):
            at = np.clip(np.searchsorted(raw_distance[order], distance, "right") - 1, 0, None)
            out[column] = values[at] if len(values) else np.full(len(distance), np.nan)
        else:
            out[column] = (
                np.interp(distance, raw_distance[order], values)
                if len(values)
                else np.full(len(distance), np.nan)
            )
    return pd.DataFrame(out)


def common_distance(reference: pd.DataFrame, compared: pd.DataFrame, step_m: float = 5.0):
    """A distance axis both laps cover: 0 to the line, every `step_m` metres, the line last."""
    ends = []
    for telemetry in (reference, compared):
        distance, _ = _with_ends(telemetry)
        ends.append(distance[-1] if len(distance) else 0.0)
    end = min(ends)
    axis = np.arange(0.0, end, step_m)
    return np.append(axis, end)


def delta_time(
    reference: pd.DataFrame, compared: pd.DataFrame, step_m: float = 5.0
) -> pd.DataFrame:
    """Distance, and how far `compared` is behind `reference` there (seconds; < 0: ahead)."""
    distance = common_distance(reference, compared, step_m)
    ref = resample(reference, distance)
    cmp = resample(compared, distance)
    return pd.DataFrame({"Distance": distance, "Delta": cmp["Time"] - ref["Time"]})

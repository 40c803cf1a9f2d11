"""The engineer's picture of every car, from stream samples, without I/O.

`Engineer` is fed the decoder's samples (rows of the per-car numeric streams, JSON objects of
Session and Participants) and keeps, per car: the lap in progress and its delta to the car's
best lap by lap distance; tyres (wear per corner, its fit per stint, temperatures, compound,
age); fuel against laps to go; ERS; damage; format 2026's active aero and overtake mode; the
cars just ahead and behind with the gap's trend; and where it would rejoin after a stop now.

Unknown is None, never zero: a car whose driver restricts their telemetry (Participants'
`your_telemetry` 0; the game zeroes those fields unless it is the receiver's own car), a field
the packet format lacks (NaN on the stream), a packet not seen yet.

A lap's end is seen in LapData (the lap number goes up at frame F); its fuel, ERS and wear are
the last CarStatus and CarDamage of a frame before F. The streams arrive on separate inlets,
so that lap stays pending until both have reached frame F.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .rejoin import PitLoss, Rival, predict_rejoin
from .stints import CORNERS, StintFit
from .timeline import Timeline

CARS = 22
LAP_DATA = "raceplane.lap_data"
CAR_STATUS = "raceplane.car_status"
CAR_DAMAGE = "raceplane.car_damage"
CAR_TELEMETRY = "raceplane.car_telemetry"
CAR_TELEMETRY_2 = "raceplane.car_telemetry_2"
SESSION = "raceplane.session"
PARTICIPANTS = "raceplane.participants"
NUMERIC_FIELDS: dict[str, tuple[str, ...]] = {
    LAP_DATA: (
        "current_lap_num",
        "lap_distance_m",
        "current_lap_time_ms",
        "last_lap_time_ms",
        "car_position",
        "pit_status",
        "num_pit_stops",
        "delta_to_car_in_front_ms",
        "delta_to_race_leader_ms",
        "current_lap_invalid",
        "result_status",
        "driver_status",
    ),
    CAR_STATUS: (
        "fuel_in_tank_kg",
        "fuel_capacity_kg",
        "fuel_remaining_laps",
        "ers_store_energy_j",
        "ers_deploy_mode",
        "ers_deployed_this_lap_j",
        "ers_harvested_this_lap_mguk_j",
        "ers_harvested_this_lap_mguh_j",
        "visual_tyre_compound",
        "actual_tyre_compound",
        "tyres_age_laps",
    ),
    CAR_DAMAGE: (
        *(f"tyres_wear_{c}" for c in CORNERS),
        "front_left_wing_damage",
        "front_right_wing_damage",
        "rear_wing_damage",
        "floor_damage",
        "diffuser_damage",
        "sidepod_damage",
        "gear_box_damage",
        "engine_damage",
    ),
    CAR_TELEMETRY: (
        *(f"tyres_surface_temperature_c_{c}" for c in CORNERS),
        *(f"tyres_inner_temperature_c_{c}" for c in CORNERS),
    ),
    CAR_TELEMETRY_2: (
        "active_aero_mode",
        "active_aero_available",
        "active_aero_activation_distance_m",
        "overtake_available",
        "overtake_active",
        "overtake_activation_distance_m",
    ),
}
# What the game zeroes for a car whose telemetry is restricted (EA's "Restricted data").
RESTRICTED = {CAR_DAMAGE: None, CAR_STATUS: frozenset(NUMERIC_FIELDS[CAR_STATUS][:8])}
TYRES = {16: "soft", 17: "medium", 18: "hard", 7: "inter", 8: "wet"}
ERS_MODES = {0: "none", 1: "medium", 2: "hotlap", 3: "overtake"}
DAMAGE = NUMERIC_FIELDS[CAR_DAMAGE][4:]
RUNNING = {2, 3}  # result_status: active, finished
TREND_LAPS = 3
PACE_LAPS = 3  # a car's pace: the median of its last clean laps (a mistake does not move it)
# Until a stop shows where this track's pit lane is: most straddle the line like this.
DEFAULT_PIT_ENTRY, DEFAULT_PIT_EXIT = 0.95, 0.05  # shares of the lap
LAUNCH_SHARE = 0.25  # the start's first quarter lap is no measure of pace
RAMP_S = 10.0  # after a pit exit the car is still getting up to speed
RAMP_SHARE = 0.1  # the share of a lap that takes
HISTORY_FRAMES = 64
DAMAGE_FRAMES = 12  # CarDamage comes 10 a second: at 120 Hz, one in every 12 frames
DEFAULT_WEAR_TARGET = 70.0


class Columns:
    """Where the header values and each car's fields sit in one numeric stream's rows."""

    def __init__(self, labels: Sequence[str], fields: Sequence[str]) -> None:
        where = {label: i for i, label in enumerate(labels)}
        self.fields = tuple(f for f in fields if f"car00.{f}" in where)
        self.index = np.array(
            [[where[f"car{i:02d}.{f}"] for i in range(CARS)] for f in self.fields]
        )
        self.frame = where["header.frame_identifier"]
        self.time = where["header.session_time_s"]
        self.uid = (where["header.session_uid_hi"], where["header.session_uid_lo"])
        self.player = where["header.player_car_index"]

    def read(self, row: np.ndarray) -> tuple[list[dict[str, float]], int, float, str, int]:
        """(per car {field: value}, frame, session time, session uid, player car index)."""
        per_car = row[self.index].T.tolist() if len(self.fields) else [[]] * CARS
        uid = (int(row[self.uid[0]]) << 32) | int(row[self.uid[1]])
        fields = self.fields
        return (
            [dict(zip(fields, values, strict=True)) for values in per_car],
            int(row[self.frame]),
            float(row[self.time]),
            str(uid),
            int(row[self.player]),
        )


def _num(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


@dataclass
class LapEnd:
    lap: int
    frame: int
    lap_time_ms: int
    pit: bool
    safety_car: bool
    valid: bool
    gap_ahead_ms: float | None
    gap_behind_ms: float | None
    stops: int
    gap_to_leader_ms: float | None = None


@dataclass
class CarState:
    index: int
    lap: int = 0
    lap_values: dict[str, float] = field(default_factory=dict)
    status: dict[str, float] = field(default_factory=dict)
    damage: dict[str, float] = field(default_factory=dict)
    telemetry: dict[str, float] = field(default_factory=dict)
    telemetry2: dict[str, float] = field(default_factory=dict)
    status_frames: deque = field(default_factory=lambda: deque(maxlen=HISTORY_FRAMES))
    damage_frames: deque = field(default_factory=lambda: deque(maxlen=HISTORY_FRAMES))
    pending: list[LapEnd] = field(default_factory=list)
    laps: list[dict[str, Any]] = field(default_factory=list)
    lap_pit: bool = False  # this lap touched the pit lane
    lap_sc: bool = False  # this lap saw the safety car
    lap_invalid: bool = False
    trace_d: list[float] = field(default_factory=list)
    trace_t: list[float] = field(default_factory=list)
    best_ms: int = 0
    best_d: np.ndarray | None = None
    best_t: np.ndarray | None = None
    stint_stops: int = 0
    stint: StintFit = field(default_factory=StintFit)
    stint_start_lap: int = 1
    timeline: Timeline = field(default_factory=Timeline)
    # Green laps' times (not lap 1, pit or safety car), this set of tyres' and the one before.
    paces: list[tuple[int, int]] = field(default_factory=list)  # (lap, ms)
    paces_before: list[tuple[int, int]] = field(default_factory=list)
    pace_stops: int = 0
    pit_spans: list[tuple[float, float]] = field(default_factory=list)  # session times in lane
    clean_from_m: float = 0.0  # race distance from which it has run at its pace (pit exit on)
    entry: tuple[float, float] | None = None  # race distance and time it entered the pit lane


class Engineer:
    """Feed it samples in any interleaving of streams; `picture()` is every car's state."""

    def __init__(self, wear_target_pct: float = DEFAULT_WEAR_TARGET) -> None:
        self.wear_target_pct = wear_target_pct
        self._columns: dict[str, Columns] = {}
        self.reset("")

    def reset(self, session_uid: str) -> None:
        self.session_uid = session_uid
        self.cars = [CarState(i) for i in range(CARS)]
        self.session: dict[str, Any] = {}
        self.restricted: set[int] = set()
        self.names: dict[int, str] = {}
        self.player = 255
        self.frame = -1
        self.time_s = 0.0
        self.safety_car = False
        self.sc_spans: list[list[float]] = []  # session times [from, to] under the safety car
        self.pit_entry_m: float | None = None  # lap distances, as the stops showed them
        self.pit_exit_m: float | None = None
        self.pit_loss = PitLoss()
        self.stops: list[dict[str, Any]] = []  # measured stops of this session
        self.rejoin_changed = False
        # Each car's rejoin as `rejoins()` last worked it out (it changes as laps end, not with
        # every frame): what the pictures carry, so a picture costs no rejoin of its own.
        self.rejoin_now: dict[str, dict[str, Any]] = {}
        self.outbox: list[dict[str, Any]] = []  # lap records to publish, oldest first
        self.frames: dict[str, int] = {}  # per numeric stream: the frame its values are from

    # ------------------------------------------------------------------ input

    def set_channels(self, stream: str, labels: Sequence[str]) -> None:
        self._columns[stream] = Columns(labels, NUMERIC_FIELDS[stream])

    def on_row(self, stream: str, row: np.ndarray) -> None:
        columns = self._columns.get(stream)
        if columns is None:
            return
        values, frame, time_s, uid, player = columns.read(row)
        if uid != self.session_uid:
            self.reset(uid)
        self.player = player
        self.frames[stream] = frame
        if stream == LAP_DATA:
            self._on_lap_data(values, frame, time_s)
            return
        target = {
            CAR_STATUS: "status",
            CAR_DAMAGE: "damage",
            CAR_TELEMETRY: "telemetry",
            CAR_TELEMETRY_2: "telemetry2",
        }[stream]
        for car, current in zip(self.cars, values, strict=True):
            setattr(car, target, current)
            if stream == CAR_STATUS:
                car.status_frames.append((frame, current))
            elif stream == CAR_DAMAGE:
                car.damage_frames.append((frame, current))
            if stream in (CAR_STATUS, CAR_DAMAGE):
                self._settle(car)

    def on_json(self, stream: str, obj: Any) -> None:
        if not isinstance(obj, dict):
            return
        uid = str((obj.get("header") or {}).get("session_uid", ""))
        if uid and uid != self.session_uid:
            self.reset(uid)
        if stream == SESSION:
            self.session = {
                "track": obj.get("track_name"),
                "track_id": obj.get("track_id"),
                "total_laps": obj.get("total_laps"),
                "track_length_m": obj.get("track_length_m"),
            }
            self.pit_loss.track_id = obj.get("track_id")
            safety_car = int(obj.get("safety_car_status") or 0) != 0
            if safety_car != self.safety_car:
                self.rejoin_changed = True
                if safety_car:
                    self.sc_spans.append([self.time_s, math.inf])
                elif self.sc_spans:
                    self.sc_spans[-1][1] = self.time_s
            self.safety_car = safety_car
            if safety_car:
                for car in self.cars:
                    car.lap_sc = True
        elif stream == PARTICIPANTS:
            rows = [row for row in (obj.get("participants") or [])[:CARS] if isinstance(row, dict)]
            self.restricted = {
                i for i, row in enumerate(rows) if int(row.get("your_telemetry", 1)) == 0
            }
            self.names = {i: str(row.get("name", "")) for i, row in enumerate(rows)}

    # ------------------------------------------------------------------ laps

    def _on_lap_data(self, values: list[dict[str, float]], frame: int, time_s: float) -> None:
        if frame < self.frame:  # a flashback: what was pending is no longer sure
            for car in self.cars:
                car.pending.clear()
                car.trace_d.clear()
                car.trace_t.clear()
        self.frame, self.time_s = frame, time_s
        length = self.session.get("track_length_m") or 0
        for car, now in zip(self.cars, values, strict=True):
            lap = int(now.get("current_lap_num", 0))
            if lap <= 0 or int(now.get("result_status", 0)) < 2:
                car.lap_values = now
                continue
            before = car.lap_values
            finished = int(now.get("result_status", 0)) == 3
            if car.lap and lap == car.lap + 1:
                self._lap_ended(car, before, now, frame)
            elif lap == car.lap and finished and int(before.get("result_status", 0)) == 2:
                self._lap_ended(car, before, now, frame)  # the flag: the lap number stays
            elif lap != car.lap:
                self._start_lap(car)
            car.lap = lap
            car.lap_values = now
            distance = now.get("lap_distance_m", math.nan)
            if length and distance >= 0 and int(now.get("result_status", 0)) == 2:
                car.timeline.add((lap - 1) * length + distance, time_s)
            self._watch_stop(car, before, now)
            if now.get("pit_status", 0):
                car.lap_pit = True
            car.lap_invalid = bool(now.get("current_lap_invalid", 0))
            lap_time = now.get("current_lap_time_ms", math.nan)
            if distance >= 0 and lap_time > 0 and (not car.trace_d or distance > car.trace_d[-1]):
                car.trace_d.append(distance)
                car.trace_t.append(lap_time)

    def _watch_stop(self, car: CarState, before: dict[str, float], now: dict[str, float]) -> None:
        """A stop's loss: its time from pit entry to pit exit less its time over the same road
        one lap before, if that lap was a measure (green, out of the pit lane, past the start)."""
        was_in, is_in = bool(before.get("pit_status", 0)), bool(now.get("pit_status", 0))
        where, when = car.timeline.last_m, car.timeline.last_s
        if is_in and not was_in:
            from_track = int(before.get("driver_status", 0)) != 0  # not out of its garage
            car.entry = (where, when) if from_track and not math.isnan(where) else None
            if from_track:
                self.pit_entry_m = now.get("lap_distance_m", self.pit_entry_m)
        elif was_in and not is_in and car.entry is not None:
            (entry_m, entry_s), car.entry = car.entry, None
            self.pit_exit_m = now.get("lap_distance_m", self.pit_exit_m)
            earlier = car.pit_spans[:]
            car.pit_spans.append((entry_s, when))
            length = self.session.get("track_length_m") or 0
            car.clean_from_m = where + RAMP_SHARE * length
            if not int(now.get("num_pit_stops", 0)) or math.isnan(where):
                return  # out of the garage, or a penalty served: no stop
            under_sc = self._sc_during(entry_s, when)
            length = self.session.get("track_length_m") or 0
            start = car.timeline.at(entry_m - length)
            end = car.timeline.at(where - length)
            if start is None or end is None or entry_m - length < LAUNCH_SHARE * length:
                return
            # The lap before must have been run as the stop is compared with it.
            if self._sc_during(start, end) != under_sc or any(
                a <= end and start <= b + RAMP_S for a, b in earlier
            ):
                return
            loss = (when - entry_s) - (end - start)
            self.pit_loss.add_stop(loss, under_sc)
            self.stops.append(
                {
                    "car_index": car.index,
                    "lap": car.lap,
                    "loss_s": round(loss, 3),
                    "safety_car": under_sc,
                }
            )
            self.rejoin_changed = True

    def _sc_during(self, start_s: float, end_s: float) -> bool:
        return any(a <= end_s and start_s <= b for a, b in self.sc_spans)

    def _start_lap(self, car: CarState) -> None:
        car.lap_pit = bool(car.lap_values.get("pit_status", 0))
        car.lap_sc = self.safety_car
        car.trace_d, car.trace_t = [], []

    def _lap_ended(
        self, car: CarState, before: dict[str, float], now: dict[str, float], frame: int
    ) -> None:
        lap_time = int(now.get("last_lap_time_ms", 0))
        ahead, behind = self._neighbours(car, before)
        car.pending.append(
            LapEnd(
                lap=car.lap,
                frame=frame,
                lap_time_ms=lap_time,
                pit=car.lap_pit or bool(now.get("pit_status", 0)),
                safety_car=car.lap_sc,
                valid=not car.lap_invalid,
                gap_ahead_ms=_num(before.get("delta_to_car_in_front_ms", math.nan))
                if ahead is not None
                else None,
                gap_behind_ms=_num(behind.lap_values.get("delta_to_car_in_front_ms", math.nan))
                if behind is not None
                else None,
                stops=int(now.get("num_pit_stops", 0)),
                gap_to_leader_ms=_num(now.get("delta_to_race_leader_ms", math.nan)),
            )
        )
        green = not (car.lap_pit or car.lap_sc or now.get("pit_status", 0))
        stops = int(now.get("num_pit_stops", 0))
        if stops != car.pace_stops:  # new tyres: a pace of their own, once a lap shows it
            car.pace_stops, car.paces_before, car.paces = stops, car.paces or car.paces_before, []
        if green and car.lap > 1 and lap_time > 0:
            car.paces.append((car.lap, lap_time))
        clean = not car.lap_pit and not car.lap_invalid and lap_time > 0 and car.trace_d
        if clean and (car.best_ms == 0 or lap_time < car.best_ms):
            car.best_ms = lap_time
            car.best_d = np.asarray(car.trace_d, dtype=float)
            car.best_t = np.asarray(car.trace_t, dtype=float)
        self._start_lap(car)
        self._settle(car)
        self.rejoin_changed = True

    def _settle(self, car: CarState) -> None:
        """Pending lap ends whose CarStatus and CarDamage have both passed their frame."""
        while car.pending:
            end = car.pending[0]
            status = _before(car.status_frames, end.frame)
            damage = _before(car.damage_frames, end.frame)
            if status is None or damage is None:
                return
            car.pending.pop(0)
            # Frames lost on the way: the figures of that lap are unknown, not older ones.
            if status[0] != end.frame - 1:
                status = (status[0], {})
            if damage[0] < end.frame - DAMAGE_FRAMES:
                damage = (damage[0], {})
            self._record_lap(car, end, status[1], damage[1])

    def _record_lap(
        self, car: CarState, end: LapEnd, status: dict[str, float], damage: dict[str, float]
    ) -> None:
        hidden = self._hidden(car.index)
        wear = None if hidden else tuple(damage.get(f"tyres_wear_{c}", math.nan) for c in CORNERS)
        record = {
            "lap": end.lap,
            "lap_time_ms": end.lap_time_ms,
            "pit": end.pit,
            "safety_car": end.safety_car,
            "tyre_wear_pct": None if wear is None else [_num(w) for w in wear],
            "fuel_in_tank_kg": None if hidden else _num(status.get("fuel_in_tank_kg", math.nan)),
            "ers_store_j": None if hidden else _num(status.get("ers_store_energy_j", math.nan)),
            "ers_deployed_j": None
            if hidden
            else _num(status.get("ers_deployed_this_lap_j", math.nan)),
            "ers_harvested_mguk_j": None
            if hidden
            else _num(status.get("ers_harvested_this_lap_mguk_j", math.nan)),
            "ers_harvested_mguh_j": None
            if hidden
            else _num(status.get("ers_harvested_this_lap_mguh_j", math.nan)),
            "gap_to_leader_ms": end.gap_to_leader_ms,
            "gap_ahead_ms": end.gap_ahead_ms,
            "gap_behind_ms": end.gap_behind_ms,
        }
        car.laps.append(record)
        self.outbox.append(
            {"type": "lap", "session_uid": self.session_uid, "car_index": car.index, **record}
        )
        if end.stops != car.stint_stops:  # a new set: a new fit from the lap after the stop
            car.stint_stops = end.stops
            car.stint = StintFit()
            car.stint_start_lap = end.lap + 1
        elif (
            not (end.pit or end.safety_car) and wear is not None and not any(map(math.isnan, wear))
        ):
            car.stint.add(end.lap, wear)

    # ------------------------------------------------------------------ output

    def _hidden(self, index: int) -> bool:
        return index in self.restricted and index != self.player

    def _running(self) -> list[CarState]:
        return [
            car
            for car in self.cars
            if car.lap > 0 and int(car.lap_values.get("result_status", 0)) == 2
        ]

    def _by_position(self) -> dict[int, CarState]:
        return {int(c.lap_values.get("car_position", 0)): c for c in self.cars if c.lap > 0}

    def _neighbours(
        self,
        car: CarState,
        lap_values: dict[str, float] | None = None,
        by_position: dict[int, CarState] | None = None,
    ) -> tuple[CarState | None, CarState | None]:
        position = int((lap_values or car.lap_values).get("car_position", 0))
        by_position = self._by_position() if by_position is None else by_position
        return by_position.get(position - 1), by_position.get(position + 1)

    def _field(self) -> list[tuple[CarState, float | None]]:
        """The running cars seen on the road, each with its pace (ms a lap, None unknown)."""
        return [(c, self._pace(c)) for c in self._running() if not math.isnan(c.timeline.last_m)]

    def _pace(self, car: CarState) -> float | None:
        """The median of its last green laps on these tyres. New tyres not yet a green lap old:
        this green lap so far against the same road on its last green lap before, which
        scaled by that comparison (a harder compound is slower, a new set faster)."""
        laps = car.paces or car.paces_before
        if not laps:
            return None
        pace = statistics.median(ms for _, ms in laps[-PACE_LAPS:])
        length = self.session.get("track_length_m") or 0
        if car.paces or car.lap_pit or car.lap_sc or not length:
            return pace
        start, here = (car.lap - 1) * length, car.timeline.last_m
        if here - start < LAUNCH_SHARE * length:
            return pace
        lap, ms = laps[-1]
        back = (car.lap - lap) * length
        times = [
            car.timeline.at(start),
            car.timeline.at(start - back),
            car.timeline.at(here - back),
        ]
        if None in times:
            return pace
        now_start, then_start, then_here = times
        return ms * (car.timeline.last_s - now_start) / (then_here - then_start)

    def delta_to_best_ms(self, car: CarState) -> float | None:
        if car.best_d is None or len(car.best_d) < 2 or not car.trace_d:
            return None
        distance, now = car.trace_d[-1], car.trace_t[-1]
        if distance > car.best_d[-1]:
            return None
        return float(now - np.interp(distance, car.best_d, car.best_t))

    def rejoin(
        self, car: CarState, field: list[tuple[CarState, float | None]] | None = None
    ) -> dict[str, Any] | None:
        length = self.session.get("track_length_m") or 0
        here = car.timeline.last_m
        if car.lap == 0 or int(car.lap_values.get("result_status", 0)) != 2 or not length:
            return None
        if math.isnan(here):
            return None
        loss, source = self.pit_loss.loss_s(self.safety_car)
        field = self._field() if field is None else field
        pace = next((p for c, p in field if c is car), None)
        # The pit exit it would take: the next pit entry's lane, wherever that ends.
        entry_m = self.pit_entry_m if self.pit_entry_m is not None else DEFAULT_PIT_ENTRY * length
        exit_m = self.pit_exit_m if self.pit_exit_m is not None else DEFAULT_PIT_EXIT * length
        entry = (car.lap - 1) * length + entry_m
        if entry < here:
            entry += length
        exit_at = entry + (exit_m - entry_m) % length
        now = self.time_s
        rivals = []
        for other, other_pace in field:
            if other is car:
                continue
            there = other.timeline.last_m
            # The road gap now, where the one behind is: both have passed that point.
            if there >= here:
                passed = other.timeline.at(here)
                gap = None if passed is None else now - passed
            else:
                passed = car.timeline.at(there)
                gap = None if passed is None else passed - now
            if gap is None:
                continue  # not on the road together since this car was first seen
            # Carried on to the pit exit at the two cars' pace difference (under the safety
            # car the field runs at its pace, not theirs).
            per_lap = None if self.safety_car else self._pace_gap_s(car, pace, other, other_pace)
            if per_lap is not None:
                gap += per_lap * (exit_at - min(here, there)) / length
            rivals.append(Rival(other.index, gap * 1000.0))
        return {
            "car_index": car.index,
            "lap": car.lap,
            "safety_car": self.safety_car,
            "pit_loss_s": round(loss, 3),
            "pit_loss_source": source,
            **predict_rejoin(car.index, loss, rivals),
        }

    def _pace_gap_s(
        self, car: CarState, pace: float | None, other: CarState, other_pace: float | None
    ) -> float | None:
        """Seconds a lap `car` is slower than `other`: their green laps' paces, or while either
        has none (the race's first laps, just out of the pit lane) their times over the newest
        lap of road both have run at their pace (past the start's first quarter lap, the pit
        exit's ramp; lap 1 left out once a quarter of lap 2 is run)."""
        if pace is not None and other_pace is not None:
            return (pace - other_pace) / 1000.0
        length = self.session.get("track_length_m") or 0
        end = min(car.timeline.last_m, other.timeline.last_m)
        start = max(LAUNCH_SHARE * length, car.clean_from_m, other.clean_from_m, end - length)
        if end >= (1 + LAUNCH_SHARE) * length:
            start = max(start, length)
        if end - start < LAUNCH_SHARE * length:
            return None
        times = [t.at(d) for t in (car.timeline, other.timeline) for d in (start, end)]
        if None in times:
            return None
        a0, a1, b0, b1 = times
        return ((a1 - a0) - (b1 - b0)) * length / (end - start)

    def car_picture(
        self,
        index: int,
        by_position: dict[int, CarState] | None = None,
    ) -> dict[str, Any]:
        car = self.cars[index]
        hidden = self._hidden(index)
        lap = car.lap_values
        status = car.status
        total = self.session.get("total_laps")
        laps_to_go = max(0, int(total) - car.lap + 1) if total and car.lap else None
        fuel = None if hidden else _num(status.get("fuel_in_tank_kg", math.nan))
        burn = self._fuel_per_lap(car)
        fuel_laps = fuel / burn if fuel is not None and burn else None
        lines = car.stint.lines()
        reaching = car.stint.lap_reaching(self.wear_target_pct)
        ahead, behind = self._neighbours(car, by_position=by_position)
        damage = car.damage
        compound = status.get("visual_tyre_compound", math.nan)
        return {
            "car_index": index,
            "driver": self.names.get(index, ""),
            "restricted": hidden,
            "lap": car.lap or None,
            "position": _int(lap.get("car_position")),
            "lap_distance_m": _num(lap.get("lap_distance_m", math.nan)),
            "delta_to_best_ms": self.delta_to_best_ms(car),
            "best_lap_ms": car.best_ms or None,
            "tyres": {
                "compound": TYRES.get(int(compound)) if not math.isnan(compound) else None,
                "age_laps": _int(status.get("tyres_age_laps")),
                "wear_pct": None
                if hidden or not damage
                else [_num(damage.get(f"tyres_wear_{c}", math.nan)) for c in CORNERS],
                "wear_per_lap_pct": None if hidden or lines is None else [b for _, b in lines],
                "wear_fit": None if hidden or lines is None else [list(line) for line in lines],
                "wear_target_pct": self.wear_target_pct,
                "lap_reaching_target": None if hidden else reaching,
                "stint_start_lap": car.stint_start_lap,
                "surface_c": _corners(car.telemetry, "tyres_surface_temperature_c"),
                "inner_c": _corners(car.telemetry, "tyres_inner_temperature_c"),
            },
            "fuel": {
                "in_tank_kg": fuel,
                "per_lap_kg": None if hidden else burn,
                "laps_left": fuel_laps,
                "game_remaining_laps": None
                if hidden
                else _num(status.get("fuel_remaining_laps", math.nan)),
                "laps_to_go": laps_to_go,
            },
            "ers": {
                "store_j": None if hidden else _num(status.get("ers_store_energy_j", math.nan)),
                "deployed_this_lap_j": None
                if hidden
                else _num(status.get("ers_deployed_this_lap_j", math.nan)),
                "harvested_this_lap_j": None if hidden else _harvested(status),
                "mode": None
                if hidden or math.isnan(status.get("ers_deploy_mode", math.nan))
                else ERS_MODES.get(int(status["ers_deploy_mode"]), "unknown"),
            },
            "damage": None
            if hidden or not damage
            else {name: _num(damage.get(name, math.nan)) for name in DAMAGE},
            "aero": _aero(car.telemetry2),
            "ahead": self._rival(car, ahead, "ahead"),
            "behind": self._rival(car, behind, "behind"),
            "rejoin": self.rejoin_now.get(str(index)),
        }

    def picture(self) -> dict[str, Any]:
        by_position = self._by_position()
        return {
            "session_uid": self.session_uid,
            "frame": self.frame,
            "session_time_s": self.time_s,
            "player_car_index": self.player,
            "safety_car": self.safety_car,
            "frames": dict(self.frames),
            **self.session,
            "pit_loss": {
                "green_s": round(self.pit_loss.loss_s(False)[0], 3),
                "safety_car_s": round(self.pit_loss.loss_s(True)[0], 3),
                "source": self.pit_loss.loss_s(False)[1],
                "stops_measured": len(self.stops),
            },
            "cars": {
                str(car.index): self.car_picture(car.index, by_position)
                for car in self.cars
                if car.lap > 0
            },
        }

    def rejoins(self) -> dict[str, Any]:
        field = self._field()
        rejoins = ((car.index, self.rejoin(car, field)) for car in self._running())
        self.rejoin_now = {str(i): r for i, r in rejoins if r is not None}
        return {
            "session_uid": self.session_uid,
            "frame": self.frame,
            "session_time_s": self.time_s,
            "safety_car": self.safety_car,
            "cars": self.rejoin_now,
        }

    def _fuel_per_lap(self, car: CarState) -> float | None:
        """kg a green lap takes, from the laps' fuel at their ends (None until two are known)."""
        fuel = [
            (lap["fuel_in_tank_kg"], lap["safety_car"] or lap["pit"])
            for lap in car.laps
            if lap["fuel_in_tank_kg"] is not None
        ]
        burns = [a[0] - b[0] for a, b in itertools.pairwise(fuel) if not b[1]]
        burns = [b for b in burns if b > 0]
        return statistics.median(burns[-5:]) if burns else None

    def _rival(self, car: CarState, other: CarState | None, side: str) -> dict[str, Any] | None:
        if other is None:
            return None
        if side == "ahead":
            gap = _num(car.lap_values.get("delta_to_car_in_front_ms", math.nan))
            key = "gap_ahead_ms"
        else:
            gap = _num(other.lap_values.get("delta_to_car_in_front_ms", math.nan))
            key = "gap_behind_ms"
        history = [lap[key] for lap in car.laps if lap.get(key) is not None][-(TREND_LAPS + 1) :]
        trend = (history[-1] - history[0]) / (len(history) - 1) if len(history) > 1 else None
        compound = other.status.get("visual_tyre_compound", math.nan)
        return {
            "car_index": other.index,
            "driver": self.names.get(other.index, ""),
            "gap_ms": gap,
            "gap_trend_ms_per_lap": trend,
            "gap_history_ms": history,
            "compound": TYRES.get(int(compound)) if not math.isnan(compound) else None,
            "tyre_age_laps": _int(other.status.get("tyres_age_laps")),
        }


def _before(frames: deque, frame: int) -> tuple[int, dict[str, float]] | None:
    """(frame, values): the newest from before `frame`, once a frame at or after it has come."""
    if not frames or frames[-1][0] < frame:
        return None
    for seen, values in reversed(frames):
        if seen < frame:
            return seen, values
    return (frame, {})


def _int(value: float | None) -> int | None:
    return None if value is None or math.isnan(value) else int(value)


def _corners(values: dict[str, float], name: str) -> list[float | None] | None:
    if not values:
        return None
    return [_num(values.get(f"{name}_{c}", math.nan)) for c in CORNERS]


def _harvested(status: dict[str, float]) -> float | None:
    k = status.get("ers_harvested_this_lap_mguk_j", math.nan)
    h = status.get("ers_harvested_this_lap_mguh_j", math.nan)
    return None if math.isnan(k) or math.isnan(h) else float(k + h)


def _aero(values: dict[str, float]) -> dict[str, Any] | None:
    """Format 2026's CarTelemetry2; None where the format has no such packet (NaN)."""
    if not values or math.isnan(values.get("active_aero_mode", math.nan)):
        return None
    return {
        "active_aero_mode": int(values["active_aero_mode"]),
        "active_aero_available": bool(values["active_aero_available"]),
        "active_aero_activation_distance_m": _num(values["active_aero_activation_distance_m"]),
        "overtake_available": bool(values["overtake_available"]),
        "overtake_active": bool(values["overtake_active"]),
        "overtake_activation_distance_m": _num(values["overtake_activation_distance_m"]),
    }

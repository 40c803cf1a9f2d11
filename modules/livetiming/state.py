"""A live timing session turned into Raceplane samples, without I/O.

`LiveSession.feed(message)` takes one message of the feed (state or change), keeps each topic's
merged state, and returns the samples to publish:

- `raceplane.livetiming`: every message as JSON `{topic, data, timestamp}` (`.z` data inflated);
- `raceplane.session`, `raceplane.participants`, `raceplane.events`: JSON in the decoder's
  layout, so the lap timer and web bridge read them as they read the game's;
- `raceplane.lap_data`, `raceplane.car_status`, `raceplane.car_telemetry`, `raceplane.motion`:
  rows in the decoder's per-car layout (`modules/stream_catalogue.py`).

Cars: live timing names a car by its racing number; each number gets a car slot (0..21) the
first time it appears, in the order of the driver list, and keeps it for the session. Fields
the feed does not have are NaN for cars in the session; unused slots are zeros.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from modules.stream_catalogue import CARS, STREAMS

from .laps import FeedLap, FeedLaps
from .pits import LANE_TIMES, STOP_SERIES, FeedPitStop, FeedPitStops
from .savefile import Message
from .topics import decode, format_timestamp, merge, parse_timestamp, time_ms

LIVETIMING = "raceplane.livetiming"
LAP_DATA, CAR_STATUS = "raceplane.lap_data", "raceplane.car_status"
SEQUENCED = (LAP_DATA, CAR_STATUS)  # numeric streams whose rows get their own number
CAR_TELEMETRY, MOTION = "raceplane.car_telemetry", "raceplane.motion"
SESSION, PARTICIPANTS, EVENTS = "raceplane.session", "raceplane.participants", "raceplane.events"
CLASSIFICATION = "raceplane.final_classification"
NUMERIC = (LAP_DATA, CAR_STATUS, CAR_TELEMETRY, MOTION)
JSON = (LIVETIMING, SESSION, PARTICIPANTS, EVENTS, CLASSIFICATION)

# SessionInfo's Type/Name -> the game's session type number (the lap timer ranks by it).
SESSION_NUMBERS = {
    "Practice 1": 1, "Practice 2": 2, "Practice 3": 3, "Qualifying": 5,
    "Sprint Shootout": 10, "Sprint Qualifying": 10, "Sprint": 15, "Race": 15,
}  # fmt: skip
# Tyre compound names -> the game's visual compound (16 soft, 17 medium, 18 hard, 7 inter, 8 wet).
COMPOUNDS = {"SOFT": 16, "MEDIUM": 17, "HARD": 18, "INTERMEDIATE": 7, "WET": 8}
# result_status of the game's LapData: 2 active, 3 finished, 7 retired; beyond the game's,
# from the feed: 8 knocked out (qualifying), 9 stopped (on track, not retired), 10 did not
# start (in the final classification: a car the feed never counted a lap for).
ACTIVE, FINISHED, RETIRED, KNOCKED_OUT, STOPPED, DNS = 2, 3, 7, 8, 9, 10
# SessionStatus values after which the session's results stand.
FINAL_STATUSES = ("Finalised", "Ends")
# "CAR 14 (ALO) TIME 1:58.103 DELETED - ..." / "CAR 81 (PIA) LAP DELETED - ... LAP 17 16:59:12"
DELETED = re.compile(r"^CAR (\d+)\b.*?(?:TIME ([\d:.]+) DELETED|LAP DELETED(?:.*\bLAP (\d+)\b)?)")
# The contract's header channels of every per-car stream, in `_numeric_header`'s order.
HEADER = (
    "session_uid_hi", "session_uid_lo", "session_time_s", "frame_identifier",
    "overall_frame_identifier", "player_car_index", "source",
)  # fmt: skip
# The lap_data fields the feed gives (the others stay NaN).
LAP_FIELDS = (
    "last_lap_time_ms", "sector1_time_ms", "sector2_time_ms", "car_position", "current_lap_num",
    "pit_status", "num_pit_stops", "current_lap_invalid", "grid_position", "result_status",
    "delta_to_car_in_front_ms", "delta_to_race_leader_ms", "driver_status",
)  # fmt: skip
# LapData's pit-lane timers, set only in the two rows that tell a stop the feed timed.
PIT_FIELDS = ("pit_lane_timer_active", "pit_lane_time_in_lane_ms", "pit_stop_timer_ms")
# TrackStatus codes: 1 clear, 2 yellow, 4 safety car, 5 red, 6 VSC, 7 VSC ending.
RED = "5"
TRACK_STATUS = {
    "1": "clear", "2": "yellow", "4": "safety car", "5": "red", "6": "virtual safety car",
    "7": "virtual safety car ending",
}  # fmt: skip
# TrackStatus -> the game's safety car status name and marshal zone flag (3 yellow, 4 red).
SAFETY_CAR = {"4": "full", "6": "virtual", "7": "virtual"}
ZONE_FLAG = {"2": 3, "5": 4}
# The game's SCAR event: safety_car_type (1 full, 2 virtual), event_type (0 deployed,
# 1 returning, 2 returned).
SCAR = {"4": (1, 0), "6": (2, 0), "7": (2, 1)}


@dataclass
class Sample:
    stream: str
    value: dict[str, Any] | np.ndarray
    time: datetime


class _Layout:
    """Column of each `car<ii>.<field>` / `header.<name>` label in one catalogue stream."""

    def __init__(self, stream: str) -> None:
        labels = [c.label for c in STREAMS[stream].channels]
        self.width = len(labels)
        self.column = {label: i for i, label in enumerate(labels)}
        fields = sorted({label[6:] for label in labels if label.startswith("car00.")})
        self.cars = {
            f: np.array([self.column[f"car{i:02d}.{f}"] for i in range(CARS)]) for f in fields
        }
        # Every per-car column: NaN for a car in the session, zero for an empty slot.
        self.car_columns = np.concatenate(list(self.cars.values())).reshape(len(fields), CARS)

        self.header_columns = [self.column[f"header.{name}"] for name in HEADER]
        self._templates: dict[int, np.ndarray] = {}

    def row(self, header: list[float], cars: int) -> np.ndarray:
        """A row with the header set, NaN for the first `cars` slots and zeros for the rest
        (slots are handed out from 0 up, so the cars in the session are the first ones)."""
        template = self._templates.get(cars)
        if template is None:
            template = self._templates[cars] = np.full(self.width, np.nan)
            template[self.car_columns[:, cars:].ravel()] = 0.0
            template[self.column["header.packet_format"]] = 0.0  # live timing, as in JSON
        row = template.copy()
        row[self.header_columns] = header
        return row


@dataclass
class _Driver:
    """One car's timing as the lap timer should see it."""

    slot: int
    position: int = 0
    in_pit: bool = False
    pit_out: bool = False  # just left the pit lane (the feed's PitOut)
    pit_stops: int = 0
    retired: bool = False
    stopped: bool = False
    knocked_out: bool = False
    finished: bool = False
    grid: int = 0
    # None: the feed gives no time ("", "1 L", a car without a time in this qualifying part);
    # published as NaN, which consumers show as unknown, never as +0.000.
    gap_ms: int | None = None
    interval_ms: int | None = None
    compound: int = 0
    tyre_age: int = 0
    telemetry: dict[str, float] = field(default_factory=dict)
    xyz: tuple[float, float, float] | None = None


class LiveSession:
    def __init__(self) -> None:
        self.topics: dict[str, Any] = {}
        self.drivers: dict[str, _Driver] = {}
        self.uid: int | None = None
        self.start: datetime | None = None
        self.session_time_s = 0.0
        self.frames = 0
        # Samples of the streams consumers merge (every JSON one, lap_data, car_status) are
        # numbered 1, 2, 3 ... in the overall frame identifier, without gaps or repeats: the
        # file's order, which the lap timer merges by. Telemetry and motion rows carry the
        # number of the last such sample.
        self.sequence = 0
        self.chequered = False
        self.red_flag = False
        self.part = 0  # TimingData SessionPart: qualifying Q1..Q3 (0: none)
        self.final = False  # the classification has been published
        self.laps = FeedLaps()
        self.pits = FeedPitStops()
        self.problems: list[str] = []  # what the feed said that could not be read, in order
        self.sessions_seen: list[str] = []  # sessions begun after the first (files joined)
        self.lap_times: dict[str, list[FeedLap]] = {}  # per racing number, as handed out
        self.overflow: set[str] = set()  # racing numbers beyond the 22 slots, left out
        self._layouts = {name: _Layout(name) for name in NUMERIC}
        self._rcm_seen = 0
        self.deleted: set[tuple[str, int]] = set()  # (racing number, lap) deleted, LDEL sent
        self._best: dict[tuple[str, int], int] = {}  # (racing number, part): the feed's best
        self._track = ""  # TrackStatus as last seen
        self._is_state = False  # the message being handled is a topic's whole state

    # ------------------------------------------------------------------ input

    def feed(self, message: Message) -> list[Sample]:
        """Samples of one message; TopicError/ValueError for data that cannot be read."""
        if message.time is None:
            raise ValueError(f"{message.topic}: a message needs its time")
        data = decode(message.topic, message.data)
        if self.start is None:
            self.start = message.time
        # Never backwards: the lap timer reads time going back as a flashback.
        self.session_time_s = max(self.session_time_s, (message.time - self.start).total_seconds())
        topic = message.topic
        out = [
            Sample(
                LIVETIMING,
                {
                    "topic": topic,
                    "data": data,
                    "timestamp": format_timestamp(message.time),
                    "state": message.is_state,
                },
                message.time,
            )
        ]
        if topic.endswith(".z") or message.is_state or topic not in self.topics:
            self.topics[topic] = data
        else:
            self.topics[topic] = merge(self.topics[topic], data)
        self._is_state = message.is_state
        handler = self._handlers.get(topic)
        if handler is not None:
            out += handler(self, data, message.time)
        return out

    # ------------------------------------------------------------------ identity

    def session_uid(self) -> int:
        """Meeting key and session key of SessionInfo, else a number made of the start time."""
        if self.uid is None:
            info = self.topics.get("SessionInfo") or {}
            meeting = (info.get("Meeting") or {}).get("Key")
            key = info.get("Key")
            if isinstance(meeting, int) and isinstance(key, int):
                self.uid = (meeting & 0xFFFFFFFF) << 32 | (key & 0xFFFFFFFF)
            else:
                stamp = format_timestamp(self.start) if self.start else ""
                self.uid = zlib.crc32(stamp.encode()) or 1
        return self.uid

    def _slot(self, number: str) -> _Driver | None:
        driver = self.drivers.get(number)
        if driver is None:
            if len(self.drivers) >= CARS:
                self.overflow.add(number)
                return None
            driver = self.drivers[number] = _Driver(slot=len(self.drivers))
        return driver

    def _header(self) -> dict[str, Any]:
        info = self.topics.get("SessionInfo") or {}
        year = str(info.get("StartDate", ""))[:4]
        uid = self.session_uid()
        return {
            "packet_format": 0,
            "game_year": int(year) % 100 if year.isdigit() else 0,
            "session_uid": str(uid),
            "session_time_s": self.session_time_s,
            "frame_identifier": self.frames,
            "overall_frame_identifier": self._next_sequence(),
            "player_car_index": 255,
            "source": 0,
        }

    def _numeric_header(self, stream: str) -> list[float]:
        uid = self.session_uid()
        sequence = self._next_sequence() if stream in SEQUENCED else self.sequence
        return [uid >> 32, uid & 0xFFFFFFFF, self.session_time_s, self.frames, sequence, 255, 0]

    def _next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def _row(self, stream: str, values: dict[str, np.ndarray]) -> np.ndarray:
        layout = self._layouts[stream]
        cars = len(self.drivers)
        row = layout.row(self._numeric_header(stream), cars)
        for name, per_car in values.items():
            row[layout.cars[name][:cars]] = per_car[:cars]
        self.frames += 1
        return row

    def _per_car(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        # One allocation for all the fields; each gets its row.
        return dict(zip(names, np.full((len(names), CARS), np.nan), strict=True))

    # ------------------------------------------------------------------ topics

    def _session_info(self, data: Any, time: datetime) -> list[Sample]:
        info = self.topics.get("SessionInfo") or {}
        meeting, key = (info.get("Meeting") or {}).get("Key"), info.get("Key")
        if self.uid is not None and isinstance(meeting, int) and isinstance(key, int):
            uid = (meeting & 0xFFFFFFFF) << 32 | (key & 0xFFFFFFFF)
            if uid != self.uid:
                # Another session's messages (a file of it appended): a session of its own,
                # its cars and laps from scratch; the one before keeps what it had.
                self.sessions_seen.append(str(info.get("Path") or uid))
                self.topics = {"SessionInfo": info}
                self.drivers, self.laps, self.lap_times = {}, FeedLaps(), {}
                self.pits = FeedPitStops()
                self.uid, self.part, self.final = None, 0, False
                self.chequered = self.red_flag = False
                self._rcm_seen = 0
                self.deleted, self._best = set(), {}
        return [self._session_sample(time)]

    def _session_sample(self, time: datetime) -> Sample:
        info = self.topics.get("SessionInfo") or {}
        meeting = info.get("Meeting") or {}
        circuit = meeting.get("Circuit") or {}
        name = str(info.get("Name") or info.get("Type") or "")
        number = SESSION_NUMBERS.get(name, SESSION_NUMBERS.get(str(info.get("Type")), 0))
        laps = self.topics.get("LapCount") or {}
        track = str((self.topics.get("TrackStatus") or {}).get("Status", ""))
        weather = self.topics.get("WeatherData") or {}
        rain = str(weather.get("Rainfall", "")) not in ("", "0", "False")
        return Sample(
            SESSION,
            {
                "header": self._header(),
                "session_type": number,
                "session_name": name,
                # As the decoder names them, so the dashboard reads both alike.
                "session_type_name": f"{name} Q{self.part}" if self.part else name,
                "safety_car_status_name": SAFETY_CAR.get(track, "none"),
                "marshal_zones": [{"zone_flag": ZONE_FLAG[track]}] if track in ZONE_FLAG else [],
                "num_marshal_zones": 1 if track in ZONE_FLAG else 0,
                "track_status": TRACK_STATUS.get(track, track),
                "weather_name": ("rain" if rain else "dry") if weather else "",
                "air_temperature_c": _number(weather.get("AirTemp")),
                "track_temperature_c": _number(weather.get("TrackTemp")),
                "humidity_percent": _number(weather.get("Humidity")),
                "pressure_mbar": _number(weather.get("Pressure")),
                "wind_speed_mps": _number(weather.get("WindSpeed")),
                "wind_direction_deg": _number(weather.get("WindDirection")),
                "track_id": -1,
                "track_name": str(circuit.get("ShortName") or meeting.get("Location") or ""),
                "meeting_name": str(meeting.get("Name") or ""),
                "total_laps": int(laps.get("TotalLaps") or 0),
                "current_lap": int(laps.get("CurrentLap") or 0),
                "session_part": self.part,
            },
            time,
        )

    def _lap_count(self, data: Any, time: datetime) -> list[Sample]:
        return [self._session_sample(time)]

    def _driver_list(self, data: Any, time: datetime) -> list[Sample]:
        entries = self.topics.get("DriverList") or {}
        if not isinstance(entries, dict):
            raise ValueError("DriverList is not an object")
        listed = {k: v for k, v in entries.items() if isinstance(v, dict)}
        for number in sorted(listed, key=lambda n: (_int(listed[n].get("Line"), 99), n)):
            self._slot(number)
        participants = [{"name": "", "team_name": "", "race_number": 0} for _ in range(CARS)]
        for number, driver in self.drivers.items():
            entry = listed.get(number, {})
            full = entry.get("FullName") or entry.get("BroadcastName") or f"Car {number}"
            participants[driver.slot] = {
                "name": str(full),
                "team_name": str(entry.get("TeamName") or ""),
                "race_number": _int(entry.get("RacingNumber") or number, 0),
                "tla": str(entry.get("Tla") or ""),
                "team_colour": str(entry.get("TeamColour") or ""),
            }
        return [
            Sample(
                PARTICIPANTS,
                {
                    "header": self._header(),
                    "num_active_cars": len(self.drivers),
                    "participants": participants,
                },
                time,
            )
        ]

    def _timing_data(self, data: Any, time: datetime) -> list[Sample]:
        if not isinstance(data, dict):
            return []
        events = []
        part = data.get("SessionPart")
        if isinstance(part, int) and part != self.part:
            self.part = part
            events.append(self._session_sample(time))
        lines = data.get("Lines")
        if not isinstance(lines, dict):
            return events
        for number, change in lines.items():
            if not isinstance(change, dict):
                continue
            driver = self._slot(number)
            if driver is not None:
                events += self._timing_line(number, driver, change, time)
        return [*events, Sample(LAP_DATA, self._lap_row(), time)]

    def _timing_line(
        self, number: str, driver: _Driver, change: dict[str, Any], time: datetime
    ) -> list[Sample]:
        events: list[Sample] = []
        if self._is_state:
            # A whole state repeats the last lap's values: only its count is news.
            if isinstance(change.get("NumberOfLaps"), int):
                self.laps.change(number, {"NumberOfLaps": change["NumberOfLaps"]})
        else:
            for lap in self.laps.change(number, change):
                self.lap_times.setdefault(number, []).append(lap)
                events.append(self._lap_event(driver, lap, time))
        events += self._best_taken_back(number, driver, change, time)
        if "NumberOfLaps" in change and self.chequered:
            driver.finished = True  # a lap completed after the chequered flag
        if "Stopped" in change:
            driver.stopped = bool(change["Stopped"])
        if "KnockedOut" in change:
            driver.knocked_out = bool(change["KnockedOut"])
        position = change.get("Position", change.get("Line"))
        if position is not None:
            driver.position = _int(position, driver.position)
        if "InPit" in change:
            driver.in_pit = bool(change["InPit"])
        if "PitOut" in change:
            driver.pit_out = bool(change["PitOut"])
        if "NumberOfPitStops" in change:
            driver.pit_stops = _int(change["NumberOfPitStops"], driver.pit_stops)
        if "Retired" in change:
            retired = bool(change["Retired"])
            if retired and not driver.retired:
                events.append(self._event("RTMT", time, vehicle_idx=driver.slot, reason=0))
            driver.retired = retired
        if "GapToLeader" in change:
            driver.gap_ms = time_ms(change["GapToLeader"])
        # Qualifying gives the gaps of best laps, per part (Stats[part - 1]).
        stats = change.get("Stats")
        stats = stats.get(str(self.part - 1)) if isinstance(stats, dict) else None
        if isinstance(stats, dict):
            if "TimeDiffToFastest" in stats:
                driver.gap_ms = time_ms(stats["TimeDiffToFastest"])
            if "TimeDifftoPositionAhead" in stats:
                driver.interval_ms = time_ms(stats["TimeDifftoPositionAhead"])
        interval = change.get("IntervalToPositionAhead")
        if isinstance(interval, dict) and "Value" in interval:
            driver.interval_ms = time_ms(interval["Value"])
        return events

    def _best_taken_back(
        self, number: str, driver: _Driver, change: dict[str, Any], time: datetime
    ) -> list[Sample]:
        """TimingData's own sign of a deleted lap: the car's best of the part in progress is
        taken back (cleared, or replaced by a slower one) while its last lap stays on the screen.
        The feed clears a best with the rest of the screen too (LastLapTime "" at a new part,
        and in 2021 the last part's bests of the cars going on): that deletes nothing."""
        if self.part:  # qualifying: the bests per part
            entry = _item(change.get("BestLapTimes"), self.part - 1)
        else:
            entry = change.get("BestLapTime")
        if not isinstance(entry, dict) or "Value" not in entry:
            return []
        key = (number, self.part)
        before, now = self._best.get(key), time_ms(entry["Value"])
        if now is not None:
            self._best[key] = now
        else:
            self._best.pop(key, None)
        last = change.get("LastLapTime")
        cleared = isinstance(last, dict) and last.get("Value") == ""
        if self._is_state or before is None or cleared or (now is not None and now <= before):
            return []
        laps = [lap for lap in self.lap_times.get(number, []) if lap.lap_time_ms == before]
        if not laps:
            return []  # a best the feed timed but we did not (an out-lap's clock time)
        return self._delete(number, driver, laps[-1].lap, time)

    def _delete(self, number: str, driver: _Driver, lap: int, time: datetime) -> list[Sample]:
        """LDEL for a lap, once: race control's message and TimingData may both tell it."""
        if (number, lap) in self.deleted:
            return []
        self.deleted.add((number, lap))
        return [self._event("LDEL", time, vehicle_idx=driver.slot, lap=lap)]

    def _lap_event(self, driver: _Driver, lap: FeedLap, time: datetime) -> Sample:
        """A lap as the feed timed it (the lap timer records it as it is)."""
        return self._event(
            "FLAP",
            time,
            vehicle_idx=driver.slot,
            lap=lap.lap,
            lap_time_ms=lap.lap_time_ms,
            sector_ms=list(lap.sector_ms),
            pit_in=lap.pit_in,
            pit_out=lap.pit_out,
            tyre=driver.compound,
            part=self.part,
        )

    def _status(self, d: _Driver) -> int:
        if d.retired:
            return RETIRED
        if d.knocked_out:
            return KNOCKED_OUT
        if d.stopped:
            return STOPPED
        return FINISHED if d.finished else ACTIVE

    def _lap_row(self, stop: tuple[int, FeedPitStop] | None = None) -> np.ndarray:
        """The lap_data row of now; with `stop` (car slot, stop) that car's pit-lane timers
        show the stop as the game's do in its last frame in the pit lane."""
        values = self._per_car(LAP_FIELDS + PIT_FIELDS if stop else LAP_FIELDS)
        for number, d in self.drivers.items():
            i = d.slot
            s1, s2, _ = self.laps.sectors_in_progress(number)
            # No lap time here: laps come timed by the feed (FLAP events), never from this row.
            values["last_lap_time_ms"][i] = 0
            values["sector1_time_ms"][i] = s1 or 0
            values["sector2_time_ms"][i] = s2 or 0
            values["car_position"][i] = d.position
            values["current_lap_num"][i] = self.laps.lap_in_progress(number)
            values["pit_status"][i] = 1 if d.in_pit else 0
            values["num_pit_stops"][i] = d.pit_stops
            values["current_lap_invalid"][i] = 0
            values["grid_position"][i] = d.grid
            values["result_status"][i] = self._status(d)
            values["delta_to_car_in_front_ms"][i] = _or_nan(d.interval_ms)
            values["delta_to_race_leader_ms"][i] = _or_nan(d.gap_ms)
            # The game's driver_status: 0 in the garage (pit lane), 3 out-lap, 4 on track.
            values["driver_status"][i] = 0 if d.in_pit else 3 if d.pit_out else 4
        if stop is not None:
            slot, timed = stop
            values["pit_lane_timer_active"][slot] = 1
            values["pit_lane_time_in_lane_ms"][slot] = timed.pit_lane_ms
            values["pit_stop_timer_ms"][slot] = _or_nan(timed.stationary_ms)
        return self._row(LAP_DATA, values)

    def _pit_lane_times(self, data: Any, time: datetime) -> list[Sample]:
        return self._pit_stops(LANE_TIMES, time)

    def _pit_stop_series(self, data: Any, time: datetime) -> list[Sample]:
        return self._pit_stops(STOP_SERIES, time)

    def _pit_stops(self, topic: str, time: datetime) -> list[Sample]:
        """Each stop the feed timed or timed anew, on lap_data as the game tells one: a row
        with the car's pit-lane timers running at the stop's times, then a row without (the
        lap timer takes the stop as that timer ends; a stop told again corrects it). What
        cannot be read is said (FEED event, `problems`) and costs only its own stop."""
        stops, problems = self.pits.read(topic, self.topics.get(topic))
        out = []
        for stop in stops:
            driver = self.drivers.get(stop.number)
            if driver is None:
                problems.append(
                    f"{topic}: a stop of car {stop.number} (lap {stop.lap}), which is not "
                    "in the driver list"
                )
                continue
            out.append(Sample(LAP_DATA, self._lap_row((driver.slot, stop)), time))
            out.append(Sample(LAP_DATA, self._lap_row(), time))
        for problem in problems:
            self.problems.append(problem)
            out.append(self._event("FEED", time, name=f"not read: {problem}"))
        return out

    def _timing_app_data(self, data: Any, time: datetime) -> list[Sample]:
        lines = (self.topics.get("TimingAppData") or {}).get("Lines")
        if not isinstance(lines, dict):
            return []
        for number, line in lines.items():
            driver = self._slot(number) if isinstance(line, dict) else None
            if driver is None:
                continue
            driver.grid = _int(line.get("GridPos"), driver.grid)
            stints = line.get("Stints")
            stints = list(stints.values()) if isinstance(stints, dict) else stints or []
            last = stints[-1] if stints and isinstance(stints[-1], dict) else {}
            driver.compound = COMPOUNDS.get(str(last.get("Compound", "")).upper(), driver.compound)
            driver.tyre_age = _int(last.get("TotalLaps"), driver.tyre_age)
        values = self._per_car(("visual_tyre_compound", "actual_tyre_compound", "tyres_age_laps"))
        for d in self.drivers.values():
            values["visual_tyre_compound"][d.slot] = d.compound
            values["actual_tyre_compound"][d.slot] = d.compound
            values["tyres_age_laps"][d.slot] = d.tyre_age
        return [Sample(CAR_STATUS, self._row(CAR_STATUS, values), time)]

    def _car_data(self, data: Any, time: datetime) -> list[Sample]:
        out = []
        for entry in _entries(data, "Entries"):
            cars = entry.get("Cars")
            if not isinstance(cars, dict):
                continue
            for number, car in cars.items():
                channels = car.get("Channels") if isinstance(car, dict) else None
                driver = self._slot(number) if isinstance(channels, dict) else None
                if driver is None:
                    continue
                brake = _float(channels.get("5"))
                driver.telemetry = {
                    "engine_rpm": _float(channels.get("0")),
                    "speed_kph": _float(channels.get("2")),
                    "gear": _float(channels.get("3")),
                    "throttle": _float(channels.get("4")) / 100.0,
                    # Brake comes as 0/1 or 0/100 depending on the year; publish 0..1.
                    "brake": min(brake / 100.0, 1.0) if brake > 1 else brake,
                    "drs": 1.0 if _float(channels.get("45")) >= 10 else 0.0,
                }
            names = ("engine_rpm", "speed_kph", "gear", "throttle", "brake", "drs")
            values = self._per_car(names)
            for d in self.drivers.values():
                for name, value in d.telemetry.items():
                    values[name][d.slot] = value
            when = _time(entry.get("Utc"), time)
            out.append(Sample(CAR_TELEMETRY, self._row(CAR_TELEMETRY, values), when))
        return out

    def _position(self, data: Any, time: datetime) -> list[Sample]:
        out = []
        for entry in _entries(data, "Position"):
            cars = entry.get("Entries")
            if not isinstance(cars, dict):
                continue
            for number, car in cars.items():
                driver = self._slot(number) if isinstance(car, dict) else None
                if driver is not None:
                    # Tenths of a metre; the feed's z is up, the game's y is up.
                    x, y, z = (_float(car.get(k)) / 10.0 for k in ("X", "Y", "Z"))
                    driver.xyz = (x, z, y)
            names = ("world_position_x_m", "world_position_y_m", "world_position_z_m")
            values = self._per_car(names)
            for d in self.drivers.values():
                if d.xyz is not None:
                    for name, value in zip(names, d.xyz, strict=True):
                        values[name][d.slot] = value
            when = _time(entry.get("Timestamp"), time)
            out.append(Sample(MOTION, self._row(MOTION, values), when))
        return out

    def _session_status(self, data: Any, time: datetime) -> list[Sample]:
        status = str((data or {}).get("Status") if isinstance(data, dict) else None)
        code = {"Started": "SSTA", "Finished": "SEND", "Ends": "SEND"}.get(status)
        # A qualifying part ends and the next starts; laps after a start are not past the flag.
        # (A car once finished stays so: finished going back reads as a flashback to the lap
        # timer.)
        out = [self._event(code, time)] if code else []
        if code is not None:
            self.chequered = code == "SEND"
        if status in FINAL_STATUSES and not self.final:
            self.final = True
            out.append(self._classification(time))
        return out

    def _classification(self, time: datetime) -> Sample:
        """The feed's final order: each car's last TimingData position, its status."""
        entries = [
            {"position": 0, "result_status": 0, "num_pit_stops": 0, "num_laps": 0}
            for _ in range(CARS)
        ]
        for number, d in self.drivers.items():
            status = self._status(d)
            if status == ACTIVE:
                status = FINISHED if self.laps.counted(number) else DNS
            entries[d.slot] = {
                "position": d.position,
                "result_status": status,
                "num_pit_stops": d.pit_stops,
                "num_laps": self.laps.laps_done(number),
            }
        return Sample(
            CLASSIFICATION,
            {
                "header": self._header(),
                "num_cars": len(self.drivers),
                "classification_data": entries,
            },
            time,
        )

    def _track_status(self, data: Any, time: datetime) -> list[Sample]:
        status = str((self.topics.get("TrackStatus") or {}).get("Status", ""))
        out = [self._session_sample(time)]
        if status == RED and not self.red_flag:
            self.red_flag = True
            out.append(self._event("RDFL", time))
        elif status and status != RED and self.red_flag:
            self.red_flag = False
            out.append(self._event("LGOT", time))
        if status != self._track and status in SCAR:
            kind, event = SCAR[status]
            out.append(self._event("SCAR", time, safety_car_type=kind, event_type=event))
        elif self._track in SCAR and status not in SCAR:
            kind = SCAR[self._track][0]
            out.append(self._event("SCAR", time, safety_car_type=kind, event_type=2))
        self._track = status
        return out

    def _weather(self, data: Any, time: datetime) -> list[Sample]:
        return [self._session_sample(time)]

    def _race_control(self, data: Any, time: datetime) -> list[Sample]:
        messages = (self.topics.get("RaceControlMessages") or {}).get("Messages")
        messages = list(messages.values()) if isinstance(messages, dict) else messages or []
        out = []
        for message in messages[self._rcm_seen :]:
            if not isinstance(message, dict):
                continue
            text = str(message.get("Message", ""))[:300]
            driver = self.drivers.get(str(message.get("RacingNumber", "")))
            out.append(
                self._event(
                    "RCMS",
                    time,
                    name=text,
                    category=str(message.get("Category", "")),
                    flag=str(message.get("Flag", "") or ""),
                    **({"vehicle_idx": driver.slot} if driver else {}),
                )
            )
            if str(message.get("Flag", "")).upper() == "CHEQUERED":
                self.chequered = True
                out.append(self._event("CHQF", time))
            deleted = DELETED.match(str(message.get("Message", "")))
            if deleted:
                out += self._deleted(deleted, time)
        self._rcm_seen = len(messages)
        return out

    def _deleted(self, match: re.Match[str], time: datetime) -> list[Sample]:
        """Race control deleted a lap: by its time ("TIME 1:58.103 DELETED", the car's latest lap
        of that time), or by its number ("LAP DELETED ... LAP 17"), else the car's latest lap.
        Race control numbers the lap in progress NumberOfLaps + 1 in every session (2024 Spain:
        "TIME 1:12.542 DELETED ... LAP 14" is FastF1's lap 13): where the count numbers the lap
        in progress (from a garage exit) its lap k is ours k - 1."""
        number, text, lap_number = match.groups()
        driver = self.drivers.get(number)
        laps = self.lap_times.get(number, [])
        if text is not None:
            wanted = time_ms(text)
            laps = [lap for lap in laps if lap.lap_time_ms == wanted]
        elif lap_number is not None:
            ours = int(lap_number) - self.laps.base(number)
            laps = [lap for lap in laps if lap.lap == ours]
        if driver is None or not laps:
            return []  # not a lap the feed timed (a deleted out-lap's clock time, say)
        return self._delete(number, driver, laps[-1].lap, time)

    def feed_event(self, text: str, time: datetime) -> Sample:
        """A FEED event: how the feed itself is doing (a topic gone quiet, the token), for the
        dashboard's event list."""
        return self._event("FEED", time, name=text)

    def _event(self, code: str, time: datetime, **details: Any) -> Sample:
        return Sample(EVENTS, {"header": self._header(), "code": code, **details}, time)

    _handlers = {
        "SessionInfo": _session_info,
        "LapCount": _lap_count,
        "DriverList": _driver_list,
        "TimingData": _timing_data,
        "TimingAppData": _timing_app_data,
        "CarData.z": _car_data,
        "Position.z": _position,
        "SessionStatus": _session_status,
        "TrackStatus": _track_status,
        "WeatherData": _weather,
        "RaceControlMessages": _race_control,
        LANE_TIMES: _pit_lane_times,
        STOP_SERIES: _pit_stop_series,
    }


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _item(values: Any, index: int) -> Any:
    """Entry `index` of a list as the feed sends it: a list, or changes keyed "0", "1" ..."""
    if isinstance(values, dict):
        return values.get(str(index))
    if isinstance(values, list) and len(values) > index:
        return values[index]
    return None


def _sector(change: dict[str, Any], index: int) -> int | None:
    """The time of sector `index` in a TimingData change, if it brings one."""
    sectors = change.get("Sectors")
    if isinstance(sectors, dict):
        sector = sectors.get(str(index))
    elif isinstance(sectors, list) and len(sectors) > index:
        sector = sectors[index]
    else:
        return None
    return time_ms(sector.get("Value")) if isinstance(sector, dict) else None


def _entries(data: Any, key: str) -> list[dict[str, Any]]:
    entries = data.get(key) if isinstance(data, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _time(text: Any, default: datetime) -> datetime:
    try:
        return parse_timestamp(text)
    except (TypeError, ValueError):
        return default


def _or_nan(value: int | None) -> float:
    return math.nan if value is None else float(value)

"""What the dashboard shows, built from stream samples without any I/O.

`LiveState` is fed decoded samples (JSON objects of the string streams, rows of the per-car
numeric streams) and returns `Message`s for the WebSocket hub. It keeps the latest picture of
the session (header, timing tower, positions, telemetry, events) so that a client connecting
late gets a complete snapshot. Tested without sockets or LSL.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modules.f1_udp.appendix import SAFETY_CAR_STATUS_NAMES

from . import engineer

CARS = 22
# The car fields the dashboard reads from the numeric streams.
TELEMETRY_FIELDS = ("speed_kph", "throttle", "brake", "gear", "engine_rpm", "drs")
LAP_FIELDS = (
    "car_position",
    "current_lap_num",
    "pit_status",
    "num_pit_stops",
    "delta_to_car_in_front_ms",
    "delta_to_race_leader_ms",
    "lap_distance_m",
    "result_status",
    "driver_status",
    "last_lap_time_ms",
)
MOTION_FIELDS = ("world_position_x_m", "world_position_z_m")
STATUS_FIELDS = ("visual_tyre_compound", "tyres_age_laps")
NUMERIC_FIELDS = {
    "raceplane.car_telemetry": TELEMETRY_FIELDS,
    "raceplane.lap_data": LAP_FIELDS,
    "raceplane.motion": MOTION_FIELDS,
    "raceplane.car_status": STATUS_FIELDS,
}
# The JSON streams the dashboard reads; the rest are only kept for the observer endpoints.
JSON_STREAMS = frozenset(
    (
        "raceplane.session",
        "raceplane.participants",
        "raceplane.events",
        "raceplane.laps",
        "raceplane.standings",
        *engineer.STREAMS,
    )
)
TYRES = {16: "soft", 17: "medium", 18: "hard", 7: "inter", 8: "wet"}
# result_status: 0 invalid, 1 inactive: an empty slot or a car not in the session.
# 8 knocked out (qualifying), 9 stopped, 10 did not start: the live feed's, beyond the game's.
ACTIVE_RESULT = {2, 3, 4, 5, 6, 7, 8, 9, 10}
FINISHED = 3
RUNNING = {2, 3}  # on track: active or finished (a retired car leaves the map)
OUTLINE_STEP_M = 8.0
OUTLINE_POINTS = 4000
OUTLINE_BATCH = 25
RESULT_NAMES = {
    3: "finished",
    4: "dnf",
    5: "dsq",
    6: "nc",
    7: "retired",
    8: "knocked out",
    9: "stopped",
    10: "did not start",
}
# Too frequent or too minor for a feed read at a glance.
# FLAP: a lap timed by the live feed (it shows as a lap).
QUIET_EVENTS = {"SPTP", "BUTN", "DRSE", "DRSD", "STLG", "TMPT", "FLAP"}
# EA's appendix: penalty types and safety car event types.
PENALTY_NAMES = {
    0: "drive through",
    1: "stop go",
    2: "grid penalty",
    3: "penalty reminder",
    4: "time penalty",
    5: "warning",
    6: "disqualified",
    7: "removed from formation lap",
    8: "parked too long",
    9: "tyre regulations",
    10: "lap invalidated",
    11: "this and next lap invalidated",
    12: "lap invalidated",
    13: "this and next lap invalidated",
    14: "this and previous lap invalidated",
    15: "this and previous lap invalidated",
    16: "retired",
    17: "black flag timer",
}
SAFETY_CAR_EVENTS = {0: "deployed", 1: "returning", 2: "returned", 3: "resume race"}
EVENT_HISTORY = 200
SNAPSHOT_EVENTS = 50
MAX_TEXT = 200  # an event reads at a glance; a runaway producer cannot bloat every message
LAP_HISTORY = 200


@dataclass(frozen=True, slots=True)
class Message:
    """One thing that happened, for every WebSocket client (`type` names it)."""

    type: str
    data: Any

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "data": self.data}


@dataclass
class CarLive:
    """The newest per-car values from the numeric streams (None until seen)."""

    telemetry: dict[str, float] = field(default_factory=dict)
    lap: dict[str, float] = field(default_factory=dict)
    x: float | None = None
    z: float | None = None
    tyre: str = ""
    tyre_age: int | None = None


class ColumnPlan:
    """Where each car's fields sit in one stream's rows (found once from its labels)."""

    def __init__(self, labels: Sequence[str], fields: Sequence[str]) -> None:
        where = {label: i for i, label in enumerate(labels)}
        self.fields = tuple(f for f in fields if f"car00.{f}" in where)
        self.index = [
            [where.get(f"car{car:02d}.{name}", -1) for name in self.fields] for car in range(CARS)
        ]
        self.session_hi = where.get("header.session_uid_hi", -1)
        self.session_lo = where.get("header.session_uid_lo", -1)

    def session_uid(self, row: Sequence[float]) -> str | None:
        if self.session_hi < 0 or self.session_lo < 0:
            return None
        return str((int(row[self.session_hi]) << 32) | int(row[self.session_lo]))

    def cars(self, row: Sequence[float]) -> list[dict[str, float]]:
        return [
            {name: float(row[i]) for name, i in zip(self.fields, idx, strict=True) if i >= 0}
            for idx in self.index
        ]


def _finite(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class LiveState:
    """The session as the dashboard sees it; every `on_*` returns the messages to broadcast."""

    def __init__(self) -> None:
        self.session: dict[str, Any] = {}
        self.session_uid: str | None = None  # the game session on the numeric streams
        self.chequered_uid: str | None = None  # the session whose chequered flag has fallen
        self.participants: list[dict[str, Any]] = []
        self.standings: dict[str, dict[str, Any]] = {}  # by session_uid
        self.events: deque[dict[str, Any]] = deque(maxlen=EVENT_HISTORY)
        self.laps: deque[dict[str, Any]] = deque(maxlen=LAP_HISTORY)
        self.cars = [CarLive() for _ in range(CARS)]
        self.frames: dict[str, int] = {}
        self._plans: dict[str, ColumnPlan] = {}
        self._tower: list[dict[str, Any]] = []
        self._tower_stale = False  # LapData or standings came since the tower was last built
        self.outline: list[tuple[float, float]] = []
        self._outline_session: str | None = None
        self._tracer: int | None = None
        self._outline_sent = 0
        self.engineer = engineer.EngineerView()

    # ---- JSON streams ----------------------------------------------------------------------

    def on_json(self, stream: str, obj: Any) -> list[Message]:
        if not isinstance(obj, dict):
            return []
        if stream in engineer.STREAMS:
            return [Message(kind, data) for kind, data in self.engineer.on_json(stream, obj)]
        handler = {
            "raceplane.session": self._on_session,
            "raceplane.participants": self._on_participants,
            "raceplane.events": self._on_event,
            "raceplane.laps": self._on_lap,
            "raceplane.standings": self._on_standings,
        }.get(stream)
        return handler(obj) if handler else []

    def _on_session(self, packet: dict[str, Any]) -> list[Message]:
        header = packet.get("header") or {}
        zones = packet.get("marshal_zones") or []
        flags = sorted(
            {
                int(zone.get("zone_flag", 0))
                for zone in zones[: int(packet.get("num_marshal_zones", len(zones)) or 0)]
                if isinstance(zone, dict)
            }
            - {0}
        )
        summary = {
            "session_uid": str(header.get("session_uid", "")),
            "track": packet.get("track_name") or str(packet.get("track_id", "")),
            "session_type": packet.get("session_type_name") or str(packet.get("session_type", "")),
            "total_laps": packet.get("total_laps"),
            "weather": packet.get("weather_name") or "",
            "track_temperature_c": packet.get("track_temperature_c"),
            "air_temperature_c": packet.get("air_temperature_c"),
            "safety_car": packet.get("safety_car_status_name") or "none",
            "time_left_s": packet.get("session_time_left_s"),
            "track_length_m": packet.get("track_length_m"),
            "flags": [{1: "green", 2: "blue", 3: "yellow", 4: "red"}.get(f, str(f)) for f in flags],
            "chequered": self.chequered_uid == str(header.get("session_uid", "")),
            "lap": self.leader_lap(),
        }
        if summary == self.session:
            return []
        self.session = summary
        return [Message("session", summary)]

    def _on_participants(self, packet: dict[str, Any]) -> list[Message]:
        cars = packet.get("participants") or []
        active = packet.get("num_active_cars", len(cars))
        drivers = [
            {
                "car_index": i,
                "driver": str(car.get("name", "")),
                "team": str(car.get("team_name", "")),
                "race_number": car.get("race_number"),
            }
            for i, car in enumerate(cars[:CARS])
            if isinstance(car, dict) and (car.get("name") or i < (active or 0))
        ]
        if drivers == self.participants:
            return []
        self.participants = drivers
        return [Message("drivers", drivers)]

    def driver_of(self, car_index: Any) -> str:
        for car in self.participants:
            if car["car_index"] == car_index:
                return car["driver"]
        return f"car {car_index}" if car_index is not None else ""

    def _on_event(self, packet: dict[str, Any]) -> list[Message]:
        code = str(packet.get("code", ""))
        if code in QUIET_EVENTS:
            return []
        event = {
            "t": (packet.get("header") or {}).get("session_time_s"),
            "code": code[:8],
            "name": str(packet.get("name", code))[:MAX_TEXT],
            "text": self.describe(code, packet)[:MAX_TEXT],
        }
        self.events.append(event)
        messages = [Message("event", event)]
        if code == "CHQF":
            # The marshal zones stay green after the flag; the header must still say it fell.
            self.chequered_uid = str((packet.get("header") or {}).get("session_uid", ""))
            if self.session and self.session.get("session_uid") == self.chequered_uid:
                self.session = {**self.session, "chequered": True}
                messages.append(Message("session", self.session))
        return messages

    def describe(self, code: str, packet: dict[str, Any]) -> str:
        details = packet.get("details") if isinstance(packet.get("details"), dict) else packet
        who = self.driver_of(details.get("vehicle_idx"))
        if code == "FTLP":
            return f"Fastest lap: {who} {format_ms(_lap_ms(details.get('lap_time_s')))}"
        if code == "RTMT":
            return f"Retired: {who}"
        if code == "PENA":
            kind = PENALTY_NAMES.get(details.get("penalty_type"), "penalty")
            return f"{who}: {kind} (lap {details.get('lap_num')})"
        if code == "OVTK":
            passed = self.driver_of(details.get("being_overtaken_vehicle_idx"))
            return f"Overtake: {self.driver_of(details.get('overtaking_vehicle_idx'))} on {passed}"
        if code == "SCAR":
            kind = SAFETY_CAR_STATUS_NAMES.get(details.get("safety_car_type"), "")
            what = SAFETY_CAR_EVENTS.get(details.get("event_type"), "")
            return f"{'Virtual safety car' if kind == 'virtual' else 'Safety car'} {what}".strip()
        if code == "RCWN":
            return f"Race winner: {who}"
        if code == "LDEL":
            return f"Lap {details.get('lap')} deleted: {who}"
        names = {
            "SSTA": "Session started",
            "SEND": "Session ended",
            "CHQF": "Chequered flag",
            "LGOT": "Lights out",
            "RDFL": "Red flag",
        }
        return names.get(code, f"{packet.get('name', code)}{': ' + who if who else ''}")

    def _on_lap(self, lap: dict[str, Any]) -> list[Message]:
        self.laps.append(lap)
        return [Message("lap", lap)]

    def _on_standings(self, table: dict[str, Any]) -> list[Message]:
        uid = str(table.get("session_uid", ""))
        self.standings[uid] = table
        self._tower_stale = True
        return [Message("standings", table)]

    # ---- numeric streams -------------------------------------------------------------------

    def plan(self, stream: str, labels: Sequence[str]) -> None:
        """Learn a numeric stream's channel layout (before feeding its rows)."""
        fields = NUMERIC_FIELDS.get(stream)
        if fields is not None:
            self._plans[stream] = ColumnPlan(labels, fields)

    def on_rows(
        self, stream: str, rows: Sequence[Sequence[float]], count: int | None = None
    ) -> list[Message]:
        """New rows of a numeric stream; only the newest matters for the picture.

        `count` says how many rows arrived when the caller passes only the newest."""
        plan = self._plans.get(stream)
        if plan is None or len(rows) == 0:
            return []
        row = rows[-1]
        self.frames[stream] = self.frames.get(stream, 0) + (count or len(rows))
        cars = plan.cars(row)
        if stream == "raceplane.lap_data":
            self.session_uid = plan.session_uid(row) or self.session_uid
            for live, values in zip(self.cars, cars, strict=True):
                live.lap = values
            self._tower_stale = True
            messages = []
            lap = self.leader_lap()
            if self.session and lap != self.session.get("lap"):
                self.session = {**self.session, "lap": lap}
                messages.append(Message("session", self.session))
            return messages
        if stream == "raceplane.car_telemetry":
            for live, values in zip(self.cars, cars, strict=True):
                live.telemetry = values
        elif stream == "raceplane.motion":
            for live, values in zip(self.cars, cars, strict=True):
                live.x = values.get("world_position_x_m")
                live.z = values.get("world_position_z_m")
            return self._trace_outline(plan.session_uid(row))
        elif stream == "raceplane.car_status":
            for live, values in zip(self.cars, cars, strict=True):
                live.tyre = TYRES.get(int(values.get("visual_tyre_compound", 0)), "")
                age = values.get("tyres_age_laps")
                live.tyre_age = int(age) if age is not None else None
        return []

    def _trace_outline(self, session_uid: str | None) -> list[Message]:
        """The circuit as one car drove it, so a late client draws the whole track at once.

        Clients get it in the snapshot, then in pieces: `{"start": i, "points": [...]}`."""
        if session_uid != self._outline_session:
            self._outline_session, self.outline, self._tracer = session_uid, [], None
            self._outline_sent = 0
        running = self.running_cars()
        if self._tracer not in running:
            self._tracer = running[0] if running else None
            self.outline, self._outline_sent = [], 0  # another car's line would zig-zag
        if self._tracer is None or len(self.outline) >= OUTLINE_POINTS:
            return []
        car = self.cars[self._tracer]
        if car.x is None or car.z is None:
            return []
        if self.outline:
            last_x, last_z = self.outline[-1]
            if math.hypot(car.x - last_x, car.z - last_z) < OUTLINE_STEP_M:
                return []
        self.outline.append((round(car.x, 1), round(car.z, 1)))
        if len(self.outline) - self._outline_sent < OUTLINE_BATCH:
            return []
        start, self._outline_sent = self._outline_sent, len(self.outline)
        return [Message("outline", {"start": start, "points": self.outline[start:]})]

    def running_cars(self) -> list[int]:
        return [i for i, live in enumerate(self.cars) if live.lap.get("result_status") in RUNNING]

    def active_cars(self) -> list[int]:
        return [
            i for i, live in enumerate(self.cars) if live.lap.get("result_status") in ACTIVE_RESULT
        ]

    def leader_lap(self) -> int | None:
        for live in self.cars:
            if live.lap.get("car_position") == 1 and live.lap.get("result_status") in ACTIVE_RESULT:
                return int(live.lap.get("current_lap_num", 0))
        return None

    # ---- derived views ---------------------------------------------------------------------

    def current_standings(self) -> dict[str, Any] | None:
        """The game session's standings if we have them, else the newest table seen."""
        if self.session_uid and self.session_uid in self.standings:
            return self.standings[self.session_uid]
        if self.session.get("session_uid") in self.standings:
            return self.standings[self.session["session_uid"]]
        return next(reversed(self.standings.values()), None)

    def tower_news(self) -> list[Message]:
        """The tower, if it changed since the last call. Built here, when the caller wants to
        send one (a few times a second), not with every LapData row (60 Hz)."""
        if not self._tower_stale:
            return []
        self._tower_stale = False
        tower = self.tower()
        if tower == self._tower:
            return []
        self._tower = tower
        return [Message("tower", tower)]

    def tower(self) -> list[dict[str, Any]]:
        """The timing tower: live order from LapData, times from the lap timer's standings."""
        table = self.current_standings() or {}
        by_car = {row.get("car_index"): row for row in table.get("rows", [])}
        active = self.active_cars()
        if not active:  # no live game data: the standings alone (e.g. the manual board)
            return [
                {**_row_times(row), "car_index": row.get("car_index"), "tyre": ""}
                for row in table.get("rows", [])
            ]
        rows = []
        for i in active:
            live = self.cars[i].lap
            standing = by_car.get(i, {})
            result = int(live.get("result_status", 2))
            # Running: the game's live deltas. Finished: the lap timer's gaps at the line.
            finished = result == FINISHED and standing
            rows.append(
                {
                    **_row_times(standing),
                    "position": int(live.get("car_position", 0)) or standing.get("position"),
                    "car_index": i,
                    "driver": standing.get("driver") or self.driver_of(i),
                    "team": standing.get("team") or self._team_of(i),
                    "lap": int(live.get("current_lap_num", 0)),
                    "gap_ms": standing.get("gap_ms")
                    if finished
                    else _live_ms(live.get("delta_to_race_leader_ms")),
                    "interval_ms": standing.get("interval_ms")
                    if finished
                    else _live_ms(live.get("delta_to_car_in_front_ms")),
                    "pit_stops": int(live.get("num_pit_stops", 0)),
                    "in_pit": int(live.get("pit_status", 0)) > 0,
                    "status": RESULT_NAMES.get(result, standing.get("status", "running")),
                    "tyre": self.cars[i].tyre,
                    "tyre_age": self.cars[i].tyre_age,
                }
            )
        rows.sort(key=lambda row: (row["position"] or 99, row["car_index"]))
        return rows

    def _team_of(self, car_index: int) -> str:
        for car in self.participants:
            if car["car_index"] == car_index:
                return car["team"]
        return ""

    def positions(self) -> list[dict[str, Any]]:
        """Every active car's world x/z (the track map)."""
        return [
            {"car_index": i, "x": self.cars[i].x, "z": self.cars[i].z}
            for i in self.running_cars()
            if self.cars[i].x is not None
        ]

    def telemetry(self, cars: Sequence[int]) -> dict[str, dict[str, float]]:
        return {str(i): self.cars[i].telemetry for i in cars if 0 <= i < CARS}

    def snapshot(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "drivers": self.participants,
            "tower": self.tower(),
            "standings": self.current_standings(),
            "boards": [t for uid, t in self.standings.items() if uid.startswith("manual")],
            "events": list(self.events)[-SNAPSHOT_EVENTS:],
            "laps": list(self.laps)[-50:],
            "positions": self.positions(),
            "outline": self.outline,
            **self.engineer.snapshot(),
        }


@dataclass(frozen=True, slots=True)
class TelemetryFrame:
    """The live telemetry of every car and the map, each encoded at most once for every client.

    A client's telemetry message is then a join of the pieces it subscribed to, not a
    serialisation of its own: the per-message cost stays flat as clients are added. A piece is
    encoded when a client first asks for it, not when the frame is made: frames come with every
    CarTelemetry packet (60 Hz), clients take them at their own rate and see a car or two, so
    encoding all 22 cars for every frame was most of the bridge's work. The frame holds the
    state's per-car dicts themselves: LiveState replaces them with every row, never changes one.
    """

    seq: int
    t: float | None
    telemetry: tuple[dict[str, Any], ...]  # per car index
    places: list[dict[str, Any]]  # the track map
    _texts: dict[Any, str] = field(default_factory=dict)  # car index or "map" -> JSON text

    @classmethod
    def of(cls, seq: int, t: float | None, state: LiveState) -> TelemetryFrame:
        return cls(seq, t, tuple(live.telemetry for live in state.cars), state.positions())

    def _text(self, key: int | str) -> str:
        text = self._texts.get(key)
        if text is None:  # two threads may both encode it: the same text, no harm
            value = self.places if key == "map" else self.telemetry[key]
            text = self._texts[key] = json.dumps(value, separators=(",", ":"))
        return text

    def message(self, cars: Sequence[int], with_map: bool) -> str:
        """The `telemetry` message for one subscription (the same text `json.dumps` gives)."""
        chosen = ",".join(f'"{i}":{self._text(i)}' for i in cars if 0 <= i < CARS)
        where = f',"positions":{self._text("map")}' if with_map else ""
        return (
            f'{{"type":"telemetry","t":{json.dumps(self.t)},"data":{{"cars":{{{chosen}}}{where}}}}}'
        )


def _row_times(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "position": row.get("position"),
        "driver": row.get("driver", ""),
        "team": row.get("team", ""),
        "laps": row.get("laps"),
        "gap_ms": row.get("gap_ms"),
        "interval_ms": row.get("interval_ms"),
        "last_lap_ms": row.get("last_lap_ms"),
        "best_lap_ms": row.get("best_lap_ms"),
        "best_by_part_ms": row.get("best_by_part_ms") or [],  # qualifying Q1..Q3
        "pit_stops": row.get("pit_stops"),
        "status": row.get("status", ""),
        "points": row.get("points"),
    }


def _live_ms(value: Any) -> int | None:
    number = _finite(value)
    return int(number) if number is not None else None


def _lap_ms(seconds: Any) -> int | None:
    number = _finite(seconds)
    return round(number * 1000) if number is not None else None


def format_ms(millis: int | None) -> str:
    if millis is None:
        return ""
    minutes, rest = divmod(int(millis), 60_000)
    return f"{minutes}:{rest // 1000:02d}.{rest % 1000:03d}"

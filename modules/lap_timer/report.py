"""The session report: what a league publishes after a session, from the game's streams (no I/O).

The lap timer already keeps a session's laps, cars and standings; `ReportState` keeps what
those leave out, fed from the same inputs: every pit-lane visit (from LapData's pit-lane timers),
every PENA event and the DTSV/SGSV that serve them, the reasons of retirements (RTMT), the
participants' race numbers and network ids, and the game's FinalClassification. `build_report`
puts the two together into one JSON-ready dict: grid, classification (status, total time with
penalties, gaps, laps, laps led, points), fastest lap and best sectors, and per car its stints,
pit stops and penalties.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from modules.f1_udp.appendix import (
    ACTUAL_COMPOUND_NAMES,
    INFRINGEMENT_NAMES,
    PENALTY_TYPE_NAMES,
    RESULT_REASON_NAMES,
    name_of,
)

from .detector import IN_LAP, MAX_CARS, LapFrame
from .points import PointsRules
from .records import TYRES, Session
from .standings import compute

LAP_INVALIDATIONS = range(10, 16)  # PENA penalty types that only invalidate a lap
WARNING, TIME_PENALTY, DISQUALIFIED = 5, 4, 6
SERVED = {"DTSV": "drive_through", "SGSV": "stop_go"}
# Live timing names a new stint's tyres in its own time: first as UNKNOWN (no age), then the
# compound and the set's age, seconds later (once 35 s: WET, then SOFT). Changes this soon
# after a set appears, before the car could have completed a lap on it, correct that set
# rather than start another.
SETTLE_S = 60.0
STATUS_LABELS = {
    "finished": "finished",
    "dnf": "DNF",
    "dsq": "DSQ",
    "nc": "NC",
    "running": "running",
}


@dataclass
class PitVisit:
    car_index: int
    lap: int  # the in-lap: the lap the car was on when it entered the pit lane
    pit_lane_ms: int
    stationary_ms: int
    exit_s: float  # session time of the first frame out of the pit lane
    kind: str = "tyres"  # or what it served: "drive_through", "stop_go"
    exit_tyre_age: int | None = None  # CarStatus's tyre age as the car left: the set fitted


@dataclass
class ReportState:
    """What the report needs beyond the lap timer's laps and cars, for one session."""

    penalties: list[dict[str, Any]] = field(default_factory=list)
    visits: list[PitVisit] = field(default_factory=list)
    reasons: dict[int, int] = field(default_factory=dict)  # car -> EA's result reason
    entrants: dict[int, dict[str, Any]] = field(default_factory=dict)  # race number, network id
    classification: dict[int, dict[str, Any]] = field(default_factory=dict)
    start_ages: dict[int, int] = field(default_factory=dict)  # car -> age of its first set
    # Live timing (no FinalClassification, untimed in- and out-laps): each car's sets as
    # CarStatus shows them, [{visual, age, start_lap, last_lap}] (see on_tyres).
    feed: bool = False
    sets: dict[int, list[dict[str, int]]] = field(default_factory=dict)
    ended: bool = False
    version: int = 0
    # Cars in the pit lane now: {lap, lane_ms, stop_ms, t (last frame), from_track}.
    _lane: dict[int, dict[str, Any]] = field(default_factory=dict)
    _laps: dict[int, int] = field(default_factory=dict)  # each car's current lap
    _age_due: dict[int, PitVisit] = field(default_factory=dict)  # visits awaiting a tyre age
    _in_pit: dict[int, bool] = field(default_factory=dict)  # live timing: each car's pit status
    # Live timing: cars that entered the pit lane since their last stop was timed -> the lap.
    _entered: dict[int, int] = field(default_factory=dict)
    # Live timing: cars just out of the pit lane -> (lap, session time, tyre age) at the exit.
    _new_set: dict[int, tuple[int, float, int | None]] = field(default_factory=dict)
    _t: float = 0.0  # session time of the newest LapData frame

    # ----- inputs ---------------------------------------------------------------------------

    def on_frame(self, frame: LapFrame) -> None:
        t = self._t = frame.session_time_s
        cars = frame.cars  # the field lists directly: this runs for every car of every frame
        active = cars["pit_lane_timer_active"]
        lanes = self._lane
        for index, lap in enumerate(cars["current_lap_num"][:MAX_CARS]):
            if lap <= 0:
                continue
            self._laps[index] = lap
            if not self.feed and not active[index] and index not in lanes:
                continue  # on track, not in the pit lane: nothing else to note
            if self.feed:
                # The feed starts a stint whenever a car leaves the pit lane.
                in_pit = frame.car("pit_status", index) > 0
                if self._in_pit.get(index) and not in_pit:
                    sets = self.sets.get(index)
                    self._new_set[index] = (lap, t, sets[-1]["age_now"] if sets else None)
                elif in_pit and self._in_pit.get(index) is False:
                    self._entered[index] = lap  # into the pit lane on its in-lap
                self._in_pit[index] = in_pit
            lane = self._lane.get(index)
            if frame.car("pit_lane_timer_active", index):
                if lane is None and self.feed:
                    # The feed times a stop once the car is out (the timers then show it for
                    # one row): its in-lap is the lap the car entered the pit lane on; without
                    # an entry since the car's last stop, it is that stop timed again.
                    entered = self._entered.pop(index, None)
                    again = next((v for v in reversed(self.visits) if v.car_index == index), None)
                    if entered is None and again is not None:
                        self.visits.remove(again)
                    in_lap = entered if entered is not None else again.lap if again else lap
                    lane = {"lap": in_lap, "lane_ms": 0, "stop_ms": 0, "from_track": True}
                    self._lane[index] = lane
                elif lane is None:
                    # Driven in from the track (an in-lap), not out of the garage or a queue.
                    from_track = frame.car("driver_status", index) == IN_LAP
                    lane = {"lap": lap, "lane_ms": 0, "stop_ms": 0, "from_track": from_track}
                    self._lane[index] = lane
                lane["lane_ms"] = max(lane["lane_ms"], frame.car("pit_lane_time_in_lane_ms", index))
                lane["stop_ms"] = max(lane["stop_ms"], frame.car("pit_stop_timer_ms", index))
                lane["t"] = t
            elif lane is not None:
                del self._lane[index]
                if lane["from_track"]:
                    # The timer's last value is one frame old: add that frame.
                    lane_ms = lane["lane_ms"] + round((t - lane["t"]) * 1000)
                    visit = PitVisit(index, lane["lap"], lane_ms, lane["stop_ms"], exit_s=t)
                    self.visits.append(visit)
                    self._age_due[index] = visit
                    self.version += 1

    def on_tyres(self, compounds: list[int | None], ages: list[int | None]) -> None:
        """CarStatus's tyres: a car's first set's age as it is first seen on a lap, and the
        set fitted at each pit visit as the car leaves (CarStatus follows LapData in a frame,
        so the exit frame's status already shows the new set).

        Live timing: the feed starts a stint as a car leaves the pit lane, and tells it in its
        own time (CarStatus may come first, still showing the old set): the first change of
        compound or age after the exit, before the car completes a lap, is the new set; so is
        any change of compound or drop of age, unless it comes within SETTLE_S of the set's
        appearing (the feed then corrects that set); an age rising by more than a lap at once
        corrects the set's start age. Each set is kept with the laps it was seen on."""
        for index, age in enumerate(ages[:MAX_CARS]):
            if age is None or index not in self._laps:
                continue
            if index not in self.start_ages:
                self.start_ages[index] = age
                self.version += 1
            visit = self._age_due.pop(index, None)
            if visit is not None:
                visit.exit_tyre_age = age
                self.version += 1
            if self.feed and index < len(compounds) and compounds[index]:
                self._feed_set(index, int(compounds[index] or 0), age)

    def _feed_set(self, index: int, visual: int, age: int) -> None:
        lap = self._laps[index]
        sets = self.sets.setdefault(index, [])
        last = sets[-1] if sets else None
        changed = last is not None and (visual, age) != (last["visual"], last["age_now"])
        fitted = False
        due = self._new_set.get(index) if last is not None else self._new_set.pop(index, None)
        if due is not None and last is not None:
            exit_lap, exit_t, exit_age = due
            if changed and self._t - exit_t < SETTLE_S:
                fitted = True  # the new stint, as the feed tells it
                del self._new_set[index]
            elif self._t - exit_t >= SETTLE_S:
                # Nothing new said: the same set went out again (the feed's TyresNotChanged),
                # a stint of its own from the exit, at the age it had then.
                del self._new_set[index]
                start_age = exit_age if exit_age is not None else last["age_now"]
                sets.append(
                    {"visual": last["visual"], "age": start_age, "age_now": start_age,
                     "start_lap": exit_lap, "last_lap": exit_lap, "t": exit_t}
                )  # fmt: skip
                self.version += 1
                last = sets[-1]
        settling = last is not None and lap == last["start_lap"] and self._t - last["t"] < SETTLE_S
        if not fitted and settling and (visual, age) != (last["visual"], last["age_now"]):
            last.update(visual=visual, age=age, age_now=age)
            self.version += 1
        elif last is None or fitted or visual != last["visual"] or age < last["age_now"]:
            sets.append(
                {"visual": visual, "age": age, "age_now": age, "start_lap": lap, "last_lap": lap,
                 "t": self._t}
            )  # fmt: skip
            self.version += 1
        elif (last["age_now"], last["last_lap"]) != (age, lap):
            if age > last["age_now"] + 1:
                # More than a lap at once: the feed correcting the set's age (a used set
                # first said to be new), not laps driven: the start age moves with it.
                last["age"] = age - (last["age_now"] - last["age"])
            last["age_now"], last["last_lap"] = age, lap
            self.version += 1

    def on_event(self, packet: dict[str, Any]) -> None:
        code = packet.get("code")
        t = float(packet.get("header", {}).get("session_time_s") or 0.0)
        if code == "PENA":
            index = int(packet["vehicle_idx"])
            if not 0 <= index < MAX_CARS:
                raise ValueError(f"PENA for car {index}, not one of 0..{MAX_CARS - 1}")
            other = int(packet.get("other_vehicle_idx", 255))
            self.penalties.append(
                {
                    "car_index": index,
                    "penalty_type": int(packet["penalty_type"]),
                    "infringement": int(packet["infringement_type"]),
                    "time_s": int(packet.get("time_s", 255)),
                    "lap": int(packet.get("lap_num", 0)),
                    "other_car_index": other if other < MAX_CARS else None,
                    "session_time_s": t,
                }
            )
        elif code in SERVED:
            index = int(packet["vehicle_idx"])
            if not 0 <= index < MAX_CARS:
                raise ValueError(f"{code} for car {index}, not one of 0..{MAX_CARS - 1}")
            # Sent as the car leaves the pit lane: the lap is that visit's in-lap.
            lane = self._lane.get(index)
            visit = next((v for v in reversed(self.visits) if v.car_index == index), None)
            if lane is not None:
                lap = lane["lap"]
            elif visit is not None and abs(visit.exit_s - t) < 0.5:
                lap = visit.lap
            else:
                lap = self._laps.get(index, 0)
            served: dict[str, Any] = {
                "car_index": index,
                "served": code,
                "lap": lap,
                "session_time_s": t,
            }
            if packet.get("stop_time_s") is not None:
                served["stop_time_s"] = float(packet["stop_time_s"])
            self.penalties.append(served)
        elif code == "RTMT" and packet.get("reason") is not None:
            self.reasons[int(packet["vehicle_idx"])] = int(packet["reason"])
        elif code == "FLBK":
            self.retract_after(float(packet["flashback_session_time_s"]))
        elif code == "SEND":
            self.ended = True
        else:
            return
        self.version += 1

    def retract_after(self, back_to: float) -> None:
        """A flashback: what happened after `back_to` did not."""
        self.penalties = [p for p in self.penalties if p["session_time_s"] <= back_to]
        self.visits = [v for v in self.visits if v.exit_s <= back_to]
        self._lane.clear()
        self._age_due.clear()

    def on_participants(self, packet: dict[str, Any]) -> None:
        active = int(packet.get("num_active_cars", MAX_CARS))
        for index, entry in enumerate(packet.get("participants", [])[:active]):
            if not isinstance(entry, dict):
                continue
            known = {
                "race_number": int(entry.get("race_number", 0)),
                "network_id": int(entry.get("network_id", 255)),
                "ai": bool(entry.get("ai_controlled", 0)),
            }
            if self.entrants.get(index) != known:
                self.entrants[index] = known
                self.version += 1

    def on_final_classification(self, packet: dict[str, Any]) -> None:
        entries = packet.get("classification_data", [])[: int(packet.get("num_cars", MAX_CARS))]
        self.classification = {
            index: entry
            for index, entry in enumerate(entries)
            if isinstance(entry, dict) and int(entry.get("position", 0)) > 0
        }
        self.ended = True
        self.version += 1

    # ----- persistence ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "penalties": self.penalties,
            "visits": [asdict(v) for v in self.visits],
            "reasons": {str(k): v for k, v in self.reasons.items()},
            "entrants": {str(k): v for k, v in self.entrants.items()},
            "classification": {str(k): v for k, v in self.classification.items()},
            "start_ages": {str(k): v for k, v in self.start_ages.items()},
            "feed": self.feed,
            "sets": {str(k): v for k, v in self.sets.items()},
            "ended": self.ended,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReportState:
        return cls(
            penalties=list(data.get("penalties", [])),
            visits=[PitVisit(**v) for v in data.get("visits", [])],
            reasons={int(k): v for k, v in data.get("reasons", {}).items()},
            entrants={int(k): v for k, v in data.get("entrants", {}).items()},
            classification={int(k): v for k, v in data.get("classification", {}).items()},
            start_ages={int(k): v for k, v in data.get("start_ages", {}).items()},
            feed=bool(data.get("feed", False)),
            sets={int(k): v for k, v in data.get("sets", {}).items()},
            ended=bool(data.get("ended", False)),
        )


# ----- the report -------------------------------------------------------------------------------


def _penalty_view(entry: dict[str, Any]) -> dict[str, Any]:
    if "served" in entry:
        what = "drive through served" if entry["served"] == "DTSV" else "stop go served"
        view = {"kind": "served", "what": what, "served": entry["served"], "lap": entry["lap"]}
        if "stop_time_s" in entry:
            view["stop_time_s"] = entry["stop_time_s"]
        return view
    penalty_type = entry["penalty_type"]
    if penalty_type in LAP_INVALIDATIONS:
        kind = "lap invalidated"
    elif penalty_type in (WARNING, 3):
        kind = "warning"
    else:
        kind = "penalty"
    return {
        "kind": kind,
        "penalty_type": penalty_type,
        "what": name_of(PENALTY_TYPE_NAMES, penalty_type),
        "infringement": entry["infringement"],
        "for": name_of(INFRINGEMENT_NAMES, entry["infringement"]),
        "time_s": entry["time_s"] if entry["time_s"] != 255 else None,
        "lap": entry["lap"],
        "other_car_index": entry.get("other_car_index"),
    }


def _stints(
    session: Session, key: Any, classified: dict[str, Any] | None, ages: list[int | None]
) -> list[dict]:
    """The game's own stints (FinalClassification) when the session is over, else the laps'.

    `ages`: the tyre age at the start of each stint, in order (the first set's, then the set
    fitted at each tyre stop); a stint beyond them has an unknown age (None)."""
    stints = _stint_laps(session, key, classified)
    for number, stint in enumerate(stints):
        stint["tyre_age_at_start"] = ages[number] if number < len(ages) else None
    return stints


def _feed_stints(sets: list[dict[str, int]]) -> list[dict]:
    """Live timing's stints: each set from the lap it was first seen on to the lap before the
    next set's (the last one to the last lap the car was seen on)."""
    stints = []
    for number, entry in enumerate(sets):
        end = sets[number + 1]["start_lap"] - 1 if number + 1 < len(sets) else entry["last_lap"]
        end = max(end, entry["start_lap"])
        stints.append(
            {
                "compound": None,
                "visual": TYRES.get(entry["visual"], str(entry["visual"])),
                "start_lap": entry["start_lap"],
                "end_lap": end,
                "laps": end - entry["start_lap"] + 1,
                "tyre_age_at_start": entry["age"],
            }
        )
    return stints


def _stint_laps(session: Session, key: Any, classified: dict[str, Any] | None) -> list[dict]:
    if classified and int(classified.get("num_tyre_stints", 0)) > 0:
        stints, start = [], 1
        count = int(classified["num_tyre_stints"])
        for actual, visual, end in zip(
            classified["tyre_stints_actual"][:count],
            classified["tyre_stints_visual"][:count],
            classified["tyre_stints_end_laps"][:count],
            strict=True,
        ):
            end = int(end) if int(end) != 255 else int(classified.get("num_laps", 0))
            stints.append(
                {
                    "compound": name_of(ACTUAL_COMPOUND_NAMES, int(actual)),
                    "visual": TYRES.get(int(visual), str(int(visual))),
                    "start_lap": start,
                    "end_lap": end,
                    "laps": end - start + 1,
                }
            )
            start = end + 1
        return stints
    stints: list[dict] = []
    laps = session.laps_of(key)
    for number in sorted(laps):
        lap = laps[number]
        if stints and stints[-1]["visual"] == lap.tyre and stints[-1]["end_lap"] == number - 1:
            stints[-1]["end_lap"] = number
            stints[-1]["laps"] += 1
        else:
            stints.append(
                {
                    "compound": None,
                    "visual": lap.tyre,
                    "start_lap": number,
                    "end_lap": number,
                    "laps": 1,
                }
            )
    return stints


def _pit_stops(state: ReportState, index: Any) -> list[dict[str, Any]]:
    """The car's pit stops; each still carries `exit_s` and `exit_tyre_age` (for the stints),
    which the report leaves out."""
    stops = [
        {
            "lap": v.lap,
            "kind": "tyres",
            "pit_lane_ms": v.pit_lane_ms,
            "stationary_ms": v.stationary_ms,
            "exit_s": v.exit_s,
            "exit_tyre_age": v.exit_tyre_age,
        }
        for v in state.visits
        if v.car_index == index
    ]
    # A DTSV/SGSV is sent in the frame the car leaves the pit lane: it names that visit.
    for served in (p for p in state.penalties if p.get("served") and p["car_index"] == index):
        for stop in stops:
            if abs(stop["exit_s"] - served["session_time_s"]) < 0.5 and stop["kind"] == "tyres":
                stop["kind"] = SERVED[served["served"]]
                if stop["kind"] == "drive_through":
                    stop["stationary_ms"] = 0
                elif "stop_time_s" in served:
                    stop["stationary_ms"] = round(served["stop_time_s"] * 1000)
                break
    return stops


def _laps_led(session: Session, eligible: list[Any]) -> dict[Any, int]:
    """Laps each car completed first: every race car starts its lap 1 at lights out, so the
    sum of its lap times is when it crossed the line (cars without a grid slot are left out)."""
    crossings: dict[int, tuple[int, Any]] = {}
    for key in eligible:
        elapsed = 0
        laps = session.laps_of(key)
        for number in range(1, max(laps, default=0) + 1):
            if number not in laps:
                break
            elapsed += laps[number].lap_time_ms
            if number not in crossings or elapsed < crossings[number][0]:
                crossings[number] = (elapsed, key)
    led: dict[Any, int] = {}
    for _, key in crossings.values():
        led[key] = led.get(key, 0) + 1
    return led


def build_report(session: Session, state: ReportState, rules: PointsRules) -> dict[str, Any]:
    standings = compute(session, rules)
    final = bool(session.final_order) or state.ended
    is_race = session.ranking == "race"
    game = session.source == "game"
    rows_by_key = {(row["car_index"] if game else row["driver"]): row for row in standings["rows"]}
    grid = sorted(
        (car.grid_position, key)
        for key, car in session.cars.items()
        if car.grid_position > 0 and is_race
    )
    eligible = [key for _, key in grid]
    led = _laps_led(session, eligible) if is_race and game else {}
    classification = []
    for key, row in rows_by_key.items():
        car = session.cars[key]
        classified = state.classification.get(key) if game else None
        laps = session.laps_of(key)
        status = STATUS_LABELS.get(car.status, car.status)
        if final and not laps and car.status not in ("finished", "dsq"):
            status = "DNS"
        reason = None
        if car.status in ("dnf", "dsq", "nc"):
            code = state.reasons.get(key)
            if classified is not None and "result_reason" in classified:
                code = int(classified["result_reason"])
            reason = name_of(RESULT_REASON_NAMES, code) if code is not None else None
        penalties = [_penalty_view(p) for p in state.penalties if game and p["car_index"] == key]
        penalty_s = sum(
            p["time_s"] for p in penalties if p.get("penalty_type") == TIME_PENALTY and p["time_s"]
        )
        if classified is not None:
            penalty_s = int(classified.get("penalties_time_s", penalty_s) or 0)
        total_ms = None
        if is_race and car.status == "finished":
            # The game's own race time once classified (a late joiner's runs from lights
            # out too), else the sum of the car's laps.
            count = max(laps, default=0)
            if classified is not None:
                total_ms = round(float(classified.get("total_race_time_s", 0.0)) * 1000)
            elif count and all(n in laps for n in range(1, count + 1)):
                total_ms = sum(lap.lap_time_ms for lap in laps.values())
        best = min(
            (lap for lap in laps.values() if lap.valid),
            key=lambda lap: lap.lap_time_ms,
            default=None,
        )
        entrant = state.entrants.get(key, {})
        stops = _pit_stops(state, key) if game else []
        ages = [state.start_ages.get(key)] + [
            s["exit_tyre_age"] for s in stops if s["kind"] == "tyres"
        ]
        for stop in stops:
            del stop["exit_s"], stop["exit_tyre_age"]
        classification.append(
            {
                "position": row["position"],
                "car_index": row["car_index"],
                "driver": row["driver"],
                "team": row["team"],
                "race_number": entrant.get("race_number"),
                "network_id": entrant.get("network_id"),
                "status": status,
                "reason": reason,
                "grid_position": car.grid_position or None,
                "laps": row["laps"],
                "total_time_ms": total_ms,
                "penalty_s": penalty_s,
                "time_with_penalties_ms": None if total_ms is None else total_ms + 1000 * penalty_s,
                "gap_ms": None,
                "gap_laps": 0,
                "laps_led": led.get(key, 0),
                "best_lap_ms": row["best_lap_ms"],
                "best_lap_number": best.lap if best else None,
                "best_sectors_ms": row["best_sectors_ms"],
                "pit_stop_count": row["pit_stops"],
                "points": row["points"],
                "stints": (
                    _feed_stints(state.sets.get(key, []))
                    if game and state.feed
                    else _stints(session, key, classified, ages)
                    if game
                    else []
                ),
                "pit_stops": stops,
                "penalties": penalties,
                "warnings": sum(1 for p in penalties if p["kind"] == "warning"),
                "laps_invalidated": sum(1 for p in penalties if p["kind"] == "lap invalidated"),
            }
        )
    _gaps(classification, is_race, standings["rows"])
    return {
        "session_uid": session.uid,
        "source": session.source,
        "session_type": session.session_type,
        "ranking": session.ranking,
        "track": session.track,
        "total_laps": session.total_laps,
        "game_year": session.game_year,
        "final": final,
        "grid": [
            {
                "position": position,
                "car_index": session.cars[key].car_index,
                "driver": session.cars[key].driver,
                "team": session.cars[key].team,
            }
            for position, key in grid
        ],
        "classification": classification,
        "fastest_lap": standings["fastest_lap"],
        "best_sectors": _best_sectors(session),
        "penalties": [
            {"driver": row["driver"], "car_index": row["car_index"], **p}
            for row in classification
            for p in row["penalties"]
            if p["kind"] != "lap invalidated"
        ],
    }


def _gaps(rows: list[dict[str, Any]], is_race: bool, standings: list[dict[str, Any]]) -> None:
    """Race: to the winner on time with penalties, or whole laps down; else the standings'."""
    if not rows:
        return
    if not is_race:
        for row, table in zip(rows, standings, strict=True):
            row["gap_ms"] = table["gap_ms"]
        return
    leader = rows[0]
    for row in rows:
        if row["laps"] < leader["laps"]:
            row["gap_laps"] = leader["laps"] - row["laps"]
        elif row["time_with_penalties_ms"] is not None and leader["time_with_penalties_ms"]:
            row["gap_ms"] = row["time_with_penalties_ms"] - leader["time_with_penalties_ms"]
        else:
            table = next((t for t in standings if t["position"] == row["position"]), None)
            row["gap_ms"] = table["gap_ms"] if table else None


def _best_sectors(session: Session) -> list[dict[str, Any] | None]:
    out: list[dict[str, Any] | None] = []
    for sector in range(3):
        timed = [lap for lap in session.laps if lap.valid and lap.sector_ms[sector] is not None]
        best = min(timed, key=lambda lap: (lap.sector_ms[sector], lap.id or 0), default=None)
        out.append(
            None
            if best is None
            else {
                "sector": sector + 1,
                "time_ms": best.sector_ms[sector],
                "driver": best.driver,
                "car_index": best.car_index,
                "lap": best.lap,
            }
        )
    return out

"""LapTimer: sessions, laps, standings and the commands, fed decoded packets (no sockets).

The feed (feed.py) calls the `on_*` methods with what arrives on the decoder's streams; the
command server calls the methods of `commands()`. Both come from different threads, so every
entry point takes the one lock. New laps and standings go out through the two publish callbacks.
"""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .detector import MAX_CARS, RESULT_NAMES, LapCompleted, LapDetector, LapFrame, LapsRetracted
from .laptime import format_lap_time, parse_lap_time
from .packets import session_uid
from .points import PointsRules
from .records import MANUAL, SESSION_TYPES, Car, Lap, Session, tyre_name
from .report import ReportState, build_report
from .standings import compute
from .store import Store

Publish = Callable[[dict[str, Any]], None]
EXPORT_HEADER = ["position", "driver", "team", "laps", "best lap", "gap", "points"]
MAX_NAME = 64


def _text(value: object, what: str, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > MAX_NAME:
        raise ValueError(f"{what} is longer than {MAX_NAME} characters")
    return value


class LapTimer:
    def __init__(
        self,
        store: Store,
        rules: PointsRules | None = None,
        publish_lap: Publish | None = None,
        publish_standings: Publish | None = None,
    ) -> None:
        self.store = store
        self.rules = rules or PointsRules()
        self._publish_lap = publish_lap or (lambda sample: None)
        self._publish_standings = publish_standings or (lambda sample: None)
        self._lock = threading.RLock()
        self.sessions: dict[str, Session] = {s.uid: s for s in store.load()}
        self._detectors: dict[str, LapDetector] = {}
        self._tyres: dict[str, list[int | None]] = {}
        self._dirty: set[str] = set()
        # Sessions of the live timing feed (packet_format 0): their laps come timed (FLAP
        # events), so LapData only moves positions and statuses, never makes a lap.
        self._feed_timed: set[str] = set()
        self.track = store.meta("track") or ""
        self.current = store.meta("current") or ""
        self.manual = store.meta("manual") or ""
        self.corrections = 0
        self.reports = {
            uid: ReportState.from_json(state) for uid, state in store.report_states().items()
        }
        self._reported: dict[str, tuple] = {}  # what each stored report was built from

    # ----------------------------------------------------------------- game input

    def _game_session(self, uid: str) -> Session:
        session = self.sessions.get(uid)
        if session is None:
            # A new sessionUID: a new session (or a restart, which the game gives a new uid).
            session = Session(uid=uid, source="game", session_type="Unknown", ranking="race")
            self._add_session(session)
        return session

    def _add_session(self, session: Session) -> None:
        self.sessions[session.uid] = session
        self.store.save_session(session)
        self.current = session.uid
        self.store.set_meta("current", session.uid)

    def on_lap_data(self, frame: LapFrame) -> None:
        with self._lock:
            session = self._game_session(frame.session_uid)
            events: list = []
            if session.uid not in self._feed_timed:
                detector = self._detectors.setdefault(session.uid, LapDetector())
                events = detector.feed(frame, self._tyres.get(session.uid), session.red_flag)
            state = self._report_state(session.uid)
            state.feed = session.uid in self._feed_timed
            state.on_frame(frame)
            for event in events:
                if isinstance(event, LapsRetracted):
                    self._retract(
                        session,
                        lambda lap, e=event: lap.car_index == e.car_index and lap.lap >= e.from_lap,
                    )
                else:
                    self._add_game_lap(session, event)
            self._update_cars(session, frame)

    def _update_cars(self, session: Session, frame: LapFrame) -> None:
        cars = frame.cars  # the field lists directly: this runs for every car of every frame
        rows = zip(
            cars["current_lap_num"],
            cars["result_status"],
            cars["num_pit_stops"],
            cars["grid_position"],
            cars["car_position"],
            strict=True,
        )
        for index, (lap_num, result, stops, grid, position) in enumerate(rows):
            if lap_num <= 0 or result < 1:
                continue
            car = session.cars.get(index) or self._car(session, index)
            status = RESULT_NAMES.get(result, "running")
            if session.final_order and status == "running":
                status = car.status  # the classification is final; late frames don't undo it
            if car.status != status or car.pit_stops != stops or car.grid_position != grid:
                car.status, car.pit_stops, car.grid_position = status, stops, grid
                self.store.save_car(session.uid, index, car)
                self._dirty.add(session.uid)
            if position != car.position:
                car.position = position
                self._dirty.add(session.uid)

    def _car(self, session: Session, index: int) -> Car:
        car = session.cars.get(index)
        if car is None:
            car = Car(car_index=index, driver=f"Car {index:02d}")
            session.cars[index] = car
            self.store.save_car(session.uid, index, car)
        return car

    def _add_game_lap(self, session: Session, event: LapCompleted, part: int = 0) -> None:
        car = self._car(session, event.car_index)
        # A lap completed again after a flashback replaces whatever stood under its number.
        self._retract(
            session, lambda lap: lap.car_index == event.car_index and lap.lap == event.lap
        )
        self._record(
            session,
            Lap(
                session_uid=session.uid,
                car_index=event.car_index,
                driver=car.driver,
                team=car.team,
                lap=event.lap,
                lap_time_ms=event.lap_time_ms,
                sector_ms=list(event.sector_ms),
                valid=event.valid,
                tyre=tyre_name(event.tyre),
                pit_in=event.pit_in,
                pit_out=event.pit_out,
                source="game",
                session_time_s=event.session_time_s,
                part=part,
            ),
        )

    def _add_feed_lap(self, session: Session, packet: dict[str, Any]) -> None:
        """A lap timed by the live timing feed (`FLAP`): recorded as the feed gives it."""
        index = int(packet["vehicle_idx"])
        if not 0 <= index < MAX_CARS:
            raise ValueError(f"FLAP for car {index}, not one of 0..{MAX_CARS - 1}")
        sectors = [None if s is None else int(s) for s in packet["sector_ms"]][:3]
        event = LapCompleted(
            car_index=index,
            lap=int(packet["lap"]),
            lap_time_ms=int(packet["lap_time_ms"]),
            sector_ms=tuple([*sectors, None, None, None][:3]),
            valid=True,
            pit_in=bool(packet.get("pit_in")),
            pit_out=bool(packet.get("pit_out")),
            tyre=int(packet.get("tyre") or 0) or None,
            session_time_s=float(packet["header"].get("session_time_s", 0.0)),
        )
        if event.lap_time_ms <= 0 or event.lap <= 0:
            raise ValueError(f"FLAP needs a lap number and a time, not {packet!r:.200}")
        self._add_game_lap(session, event, part=int(packet.get("part") or 0))

    def _delete_feed_lap(self, session: Session, index: int, number: int) -> None:
        """Race control deleted a lap: it stays, marked invalid (it no longer counts as best)."""
        gone = self._retract(
            session, lambda lap: lap.car_index == index and lap.lap == number, "deleted by feed"
        )
        for lap in gone:
            lap.id, lap.valid = None, False
            self._record(session, lap)

    def _record(self, session: Session, lap: Lap) -> Lap:
        lap.id = self.store.add_lap(lap)
        session.laps.append(lap)
        session.version += 1
        self._publish_lap(lap.sample())
        self._dirty.add(session.uid)
        return lap

    def _retract(
        self, session: Session, which: Callable[[Lap], bool], why: str = "retracted"
    ) -> list[Lap]:
        gone = [lap for lap in session.laps if which(lap)]
        if gone:
            self.store.remove_laps([lap.id for lap in gone if lap.id is not None], why)
            session.laps = [lap for lap in session.laps if not which(lap)]
            session.version += 1
            self._dirty.add(session.uid)
        return gone

    def _report_state(self, uid: str) -> ReportState:
        state = self.reports.get(uid)
        if state is None:
            state = self.reports[uid] = ReportState()
        return state

    def on_car_status(
        self,
        session_uid: str,
        compounds: list[int | None],
        ages: list[int | None] | None = None,
    ) -> None:
        with self._lock:
            self._tyres[session_uid] = compounds
            if ages is not None and session_uid in self.sessions:
                state = self._report_state(session_uid)
                state.feed = session_uid in self._feed_timed
                state.on_tyres(compounds, ages)

    def on_session(self, packet: dict[str, Any]) -> None:
        with self._lock:
            header = packet["header"]
            session = self._game_session(session_uid(packet))
            if header.get("packet_format") == 0:
                self._feed_timed.add(session.uid)
            number = int(packet.get("session_type", 0))
            name, ranking = SESSION_TYPES.get(number, (f"Session {number}", "practice"))
            track = str(packet.get("track_name") or packet.get("track_id", ""))
            year = header.get("game_year")
            total = int(packet.get("total_laps", 0))
            part = int(packet.get("session_part", 0))
            if part != session.part:
                session.part = part
                self._dirty.add(session.uid)
            known = (session.session_type, session.ranking, session.track, session.game_year)
            if (*known, session.total_laps) != (name, ranking, track, year, total):
                session.session_type, session.ranking, session.track = name, ranking, track
                session.game_year, session.total_laps = year, total
                self.store.save_session(session)
                self._dirty.add(session.uid)

    def on_participants(self, packet: dict[str, Any]) -> None:
        with self._lock:
            session = self._game_session(session_uid(packet))
            self._report_state(session.uid).on_participants(packet)
            for index, entry in enumerate(packet.get("participants", [])):
                if index >= int(packet.get("num_active_cars", 22)) or not isinstance(entry, dict):
                    continue
                driver = str(entry.get("name") or f"Car {index:02d}")
                team = str(entry.get("team_name") or entry.get("team_id", ""))
                car = self._car(session, index)
                if (car.driver, car.team) != (driver, team):
                    car.driver, car.team = driver, team
                    self.store.save_car(session.uid, index, car)
                    self._dirty.add(session.uid)

    def on_event(self, packet: dict[str, Any]) -> None:
        with self._lock:
            session = self._game_session(session_uid(packet))
            # The decoder puts an event's details beside its code.
            code = packet.get("code")
            self._report_state(session.uid).on_event(packet)
            self._dirty.add(session.uid)
            if code == "FLBK":
                # The game rewound to this time: laps finished after it no longer happened.
                back_to = float(packet["flashback_session_time_s"])
                self._detectors.setdefault(session.uid, LapDetector()).retract_after(back_to)
                self._retract(
                    session,
                    lambda lap: lap.session_time_s is not None and lap.session_time_s > back_to,
                )
            elif code == "RDFL":
                session.red_flag = True
                self._dirty.add(session.uid)
            elif code in ("LGOT", "SSTA") and session.red_flag:
                session.red_flag = False
                self._dirty.add(session.uid)
            elif code == "FLAP":
                self._feed_timed.add(session.uid)
                self._add_feed_lap(session, packet)
            elif code == "LDEL":
                self._delete_feed_lap(session, int(packet["vehicle_idx"]), int(packet["lap"]))
            elif code == "RTMT":
                index = int(packet["vehicle_idx"])
                if not 0 <= index < MAX_CARS:
                    raise ValueError(f"RTMT for car {index}, not one of 0..{MAX_CARS - 1}")
                car = self._car(session, index)
                car.status = "dnf"
                self.store.save_car(session.uid, car.car_index, car)
                self._dirty.add(session.uid)

    def on_final_classification(self, packet: dict[str, Any]) -> None:
        with self._lock:
            session = self._game_session(session_uid(packet))
            entries = packet.get("classification_data", [])[: int(packet.get("num_cars", 22))]
            self._report_state(session.uid).on_final_classification(packet)
            placed = []
            for index, entry in enumerate(entries):
                position = int(entry.get("position", 0))
                if position <= 0:
                    continue
                placed.append((position, index))
                car = self._car(session, index)
                car.status = RESULT_NAMES.get(int(entry.get("result_status", 3)), "finished")
                car.pit_stops = int(entry.get("num_pit_stops", car.pit_stops))
                car.position = position
                self.store.save_car(session.uid, index, car)
            session.final_order = [index for _, index in sorted(placed)]
            self.store.save_session(session)
            self._dirty.add(session.uid)

    def reconcile(self, session_uid: str, car_index: int, history: list[dict[str, Any]]) -> int:
        """Check this car's laps against the game's own SessionHistory; fix and count disagreements.

        `history` is the game's list (lap 1 first) of {lap_time_ms, sector_ms, valid} and, where
        the game's tyre stints tell them, {tyre, pit_in, pit_out}; laps still in progress (time
        0) and laps beyond what the detector has seen finish are skipped. A lap filled in takes
        its tyre and pit flags from there (a first lap outside races leaves the garage: an
        out-lap); a corrected lap keeps what the detector saw of them.
        """
        with self._lock:
            session = self.sessions.get(session_uid)
            if session is None:
                return 0
            done = session.laps_of(car_index)
            # Laps the detector saw finish; anything past them may be stale after a flashback.
            seen_up_to = max(done, default=0)

            def out_lap(number: int, entry: dict[str, Any]) -> bool:
                garage = number == 1 and session.ranking != "race"
                return garage or bool(entry.get("pit_out"))

            fixed = 0
            for number, entry in enumerate(history, start=1):
                time = int(entry["lap_time_ms"])
                if time <= 0 or number > seen_up_to:
                    continue
                sectors = [int(s) if s else None for s in entry["sector_ms"]]
                ours = done.get(number)
                history_tyre = tyre_name(entry.get("tyre"))
                # A lap seen live before the car's status arrived (a restarted timer) has its
                # times right but no tyre: the stints fill that in too.
                if (
                    ours
                    and (ours.lap_time_ms, ours.sector_ms, ours.valid)
                    == (time, sectors, entry["valid"])
                    and (ours.tyre or not history_tyre)
                ):
                    continue
                car = self._car(session, car_index)
                self._retract(
                    session,
                    lambda lap, n=number: lap.car_index == car_index and lap.lap == n,
                    "history",
                )
                self._record(
                    session,
                    Lap(
                        session_uid=session_uid,
                        car_index=car_index,
                        driver=car.driver,
                        team=car.team,
                        lap=number,
                        lap_time_ms=time,
                        sector_ms=sectors,
                        valid=bool(entry["valid"]),
                        tyre=ours.tyre if ours and ours.tyre else history_tyre,
                        pit_in=ours.pit_in if ours else bool(entry.get("pit_in")),
                        pit_out=ours.pit_out if ours else out_lap(number, entry),
                        source="game",
                        session_time_s=ours.session_time_s if ours else None,
                    ),
                )
                fixed += 1
            self.corrections += fixed
            return fixed

    def flush(self) -> None:
        """Publish the standings of every session that changed since the last flush."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            for uid in dirty:
                self._publish_standings(compute(self.sessions[uid], self.rules))
                self._store_report(uid)

    def _store_report(self, uid: str) -> None:
        """Rebuild and store the session's report when what it is built from has changed."""
        session, state = self.sessions[uid], self._report_state(uid)
        basis = (
            session.version,
            state.version,
            bool(session.final_order),
            tuple((car.status, car.grid_position, car.driver) for car in session.cars.values()),
        )
        if self._reported.get(uid) == basis:
            return
        self._reported[uid] = basis
        self.store.save_report(uid, build_report(session, state, self.rules), state.to_json())

    # ----------------------------------------------------------------- commands

    def commands(self) -> dict[str, Callable[..., Any]]:
        return {
            "ADD_LAP": self.add_lap,
            "DELETE_LAP": self.delete_lap,
            "SET_TRACK": self.set_track,
            "GET_TRACK": self.get_track,
            "GET_STANDINGS": self.get_standings,
            "GET_REPORT": self.get_report,
            "LIST_REPORTS": self.list_reports,
            "GET_LAPS": self.get_laps,
            "EXPORT": self.export,
            "RESET": self.reset,
            "STATUS": self.status,
        }

    def _manual_session(self) -> Session:
        session = self.sessions.get(self.manual)
        if session is None:
            number = sum(1 for s in self.sessions.values() if s.source == "manual") + 1
            session = Session(
                uid=f"manual-{number}",
                source="manual",
                session_type=MANUAL,
                ranking="time_trial",
                track=self.track,
            )
            self._add_session(session)
            self.manual = session.uid
            self.store.set_meta("manual", session.uid)
        return session

    def add_lap(self, driver: str, time: str | float, team: str = "") -> dict[str, Any]:
        """A hand-timed lap; returns it (with its id, which DELETE_LAP takes)."""
        driver = _text(driver, "driver")
        team = _text(team, "team", required=False)
        millis = parse_lap_time(time)
        with self._lock:
            session = self._manual_session()
            car = session.cars.get(driver)
            if car is None:
                car = Car(car_index=None, driver=driver, team=team, status="running")
                session.cars[driver] = car
            elif team and team != car.team:
                car.team = team
            self.store.save_car(session.uid, driver, car)
            number = 1 + sum(1 for lap in session.laps if lap.driver == driver)
            lap = self._record(
                session,
                Lap(
                    session_uid=session.uid,
                    car_index=None,
                    driver=driver,
                    team=car.team,
                    lap=number,
                    lap_time_ms=millis,
                    sector_ms=[None, None, None],
                    valid=True,
                    tyre="",
                    pit_in=False,
                    pit_out=False,
                    source="manual",
                ),
            )
            self.flush()
            return lap.sample()

    def delete_lap(self, id: int) -> dict[str, Any]:
        if isinstance(id, bool) or not isinstance(id, int):
            raise ValueError(f"DELETE_LAP needs the lap's integer id, not {id!r}")
        with self._lock:
            for session in self.sessions.values():
                gone = self._retract(session, lambda lap: lap.id == id, "deleted")
                if gone:
                    self.flush()
                    return gone[0].sample()
        raise ValueError(f"no lap with id {id}")

    def set_track(self, track: str) -> str:
        track = _text(track, "track")
        with self._lock:
            self.track = track
            self.store.set_meta("track", track)
            session = self.sessions.get(self.manual)
            if session is not None:
                session.track = track
                self.store.save_session(session)
                self._dirty.add(session.uid)
                self.flush()
            return track

    def get_track(self) -> str:
        with self._lock:
            return self.track

    def _session(self, session_uid: str | None) -> Session:
        uid = self.current if session_uid is None else str(session_uid)
        session = self.sessions.get(uid)
        if session is None:
            if session_uid is None:
                raise ValueError("no session yet: no game data and no lap typed in")
            raise ValueError(
                f"no session {session_uid!r}; have {', '.join(self.sessions) or 'none'}"
            )
        return session

    def get_standings(self, session_uid: str | None = None) -> dict[str, Any]:
        with self._lock:
            return compute(self._session(session_uid), self.rules)

    def get_report(self, session_uid: str | None = None) -> dict[str, Any]:
        """The session report (docs/DESIGN.md): the current session's unless one is named."""
        with self._lock:
            session = self._session(session_uid)
            return build_report(session, self._report_state(session.uid), self.rules)

    def list_reports(self) -> list[dict[str, Any]]:
        """Every session with a report, newest first: {session_uid, session_type, track, final}."""
        with self._lock:
            return [
                {
                    "session_uid": s.uid,
                    "session_type": s.session_type,
                    "track": s.track,
                    "total_laps": s.total_laps,
                    "final": bool(s.final_order) or self._report_state(s.uid).ended,
                }
                for s in reversed(list(self.sessions.values()))
            ]

    def get_laps(
        self, car: int | str | None = None, session_uid: str | None = None
    ) -> list[dict[str, Any]]:
        """Laps of the session, of one car (index) or driver (name) if given, in order."""
        with self._lock:
            laps = self._session(session_uid).laps
            if car is not None:
                if isinstance(car, bool) or not isinstance(car, int | str):
                    raise ValueError(f"car must be a car index or a driver name, not {car!r}")
                laps = [
                    lap
                    for lap in laps
                    if (lap.car_index if isinstance(car, int) else lap.driver) == car
                ]
            return [
                lap.sample()
                for lap in sorted(laps, key=lambda lap: (lap.car_index or 0, lap.lap, lap.id))
            ]

    def export(self, path: str, session_uid: str | None = None) -> dict[str, Any]:
        """Write the standings as CSV to `path` (atomically: a reader never sees half a file)."""
        if not isinstance(path, str) or not path.strip():
            raise ValueError("EXPORT needs a path")
        target = Path(path).expanduser()
        if not target.parent.is_dir():
            raise ValueError(f"cannot export to {target}: directory {target.parent} does not exist")
        with self._lock:
            table = compute(self._session(session_uid), self.rules)
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            with open(partial, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(EXPORT_HEADER)
                for row in table["rows"]:
                    gap = row["gap_ms"]
                    writer.writerow(
                        [
                            row["position"],
                            row["driver"],
                            row["team"],
                            row["laps"],
                            format_lap_time(row["best_lap_ms"]),
                            "" if gap is None or row["position"] == 1 else f"+{gap / 1000:.3f}",
                            row["points"],
                        ]
                    )
            os.replace(partial, target)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise ValueError(f"cannot export to {target}: {error.strerror}") from error
        return {
            "path": str(target),
            "rows": len(table["rows"]),
            "session_uid": table["session_uid"],
        }

    def reset(self) -> dict[str, Any]:
        """Start a fresh manual board and show it; every earlier session stays stored."""
        with self._lock:
            self.manual = ""
            session = self._manual_session()
            self._dirty.add(session.uid)
            self.flush()
            return {"session_uid": session.uid}

    def status(self) -> dict[str, Any]:
        with self._lock:
            current = self.sessions.get(self.current)
            return {
                "current_session": self.current or None,
                "session_type": current.session_type if current else None,
                "track": current.track if current else self.track,
                "sessions": len(self.sessions),
                "laps": len(current.laps) if current else 0,
                "laps_stored": sum(len(s.laps) for s in self.sessions.values()),
                "history_corrections": self.corrections,
                "database": str(self.store.path),
            }

"""SQLite persistence: every lap committed as it is made, so a restart loses nothing.

Nothing is ever deleted: a retracted game lap (flashback) or a deleted hand-typed lap is only
marked, so a mistaken DELETE_LAP can be undone from the file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

from .records import Car, Lap, Session

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    uid TEXT PRIMARY KEY, source TEXT NOT NULL, session_type TEXT NOT NULL, ranking TEXT NOT NULL,
    track TEXT NOT NULL DEFAULT '', game_year INTEGER, total_laps INTEGER NOT NULL DEFAULT 0,
    points_table TEXT NOT NULL DEFAULT '', final_order TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS cars (
    session_uid TEXT NOT NULL, key TEXT NOT NULL, car_index INTEGER, driver TEXT NOT NULL,
    team TEXT NOT NULL, status TEXT NOT NULL, pit_stops INTEGER NOT NULL,
    grid_position INTEGER NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (session_uid, key)
);
CREATE TABLE IF NOT EXISTS laps (
    id INTEGER PRIMARY KEY AUTOINCREMENT, session_uid TEXT NOT NULL, car_index INTEGER,
    driver TEXT NOT NULL, team TEXT NOT NULL, lap INTEGER NOT NULL,
    lap_time_ms INTEGER NOT NULL CHECK (lap_time_ms > 0),
    s1 INTEGER, s2 INTEGER, s3 INTEGER, valid INTEGER NOT NULL, tyre TEXT NOT NULL,
    pit_in INTEGER NOT NULL, pit_out INTEGER NOT NULL, source TEXT NOT NULL,
    session_time_s REAL, removed TEXT, part INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS laps_by_session ON laps (session_uid, removed);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
    session_uid TEXT PRIMARY KEY, final INTEGER NOT NULL, report TEXT NOT NULL,
    state TEXT NOT NULL
);
"""


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection used from the timer's thread and the command threads, under a lock.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        # WAL + synchronous=NORMAL: a commit survives a killed process (only an OS crash can
        # lose the last commits), at a fraction of the cost of a full sync per lap.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        # A database from before qualifying parts were kept: its laps are of no part (0).
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(laps)")}
        if "part" not in columns:
            self._db.execute("ALTER TABLE laps ADD COLUMN part INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    def save_session(self, session: Session) -> None:
        # An update keeps the row (and its rowid), so rowid order is creation order.
        self._run(
            "INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(uid) DO UPDATE SET "
            "session_type=excluded.session_type, ranking=excluded.ranking, track=excluded.track, "
            "game_year=excluded.game_year, total_laps=excluded.total_laps, "
            "points_table=excluded.points_table, final_order=excluded.final_order",
            (
                session.uid,
                session.source,
                session.session_type,
                session.ranking,
                session.track,
                session.game_year,
                session.total_laps,
                session.points_table,
                json.dumps(session.final_order),
            ),
        )

    def save_car(self, session_uid: str, key: object, car: Car) -> None:
        self._run(
            "INSERT OR REPLACE INTO cars VALUES (?,?,?,?,?,?,?,?,?)",
            (
                session_uid,
                str(key),
                car.car_index,
                car.driver,
                car.team,
                car.status,
                car.pit_stops,
                car.grid_position,
                car.position,
            ),
        )

    def add_lap(self, lap: Lap) -> int:
        s1, s2, s3 = lap.sector_ms
        cursor = self._run(
            "INSERT INTO laps (session_uid, car_index, driver, team, lap, lap_time_ms, s1, s2, s3,"
            " valid, tyre, pit_in, pit_out, source, session_time_s, part) VALUES "
            "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                lap.session_uid,
                lap.car_index,
                lap.driver,
                lap.team,
                lap.lap,
                lap.lap_time_ms,
                s1,
                s2,
                s3,
                int(lap.valid),
                lap.tyre,
                int(lap.pit_in),
                int(lap.pit_out),
                lap.source,
                lap.session_time_s,
                lap.part,
            ),
        )
        return int(cursor.lastrowid)

    def remove_laps(self, ids: list[int], why: str) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE laps SET removed=? WHERE id=?", [(why, lap_id) for lap_id in ids]
            )
            self._db.execute("COMMIT")

    def set_meta(self, key: str, value: str) -> None:
        self._run("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value))

    def meta(self, key: str) -> str | None:
        row = self._run("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def load(self) -> list[Session]:
        """Every session with its cars and its laps still standing, oldest session first."""
        sessions: dict[str, Session] = {}
        for row in self._run(
            "SELECT uid, source, session_type, ranking, track, game_year, total_laps,"
            " points_table, final_order FROM sessions ORDER BY rowid"
        ).fetchall():
            uid, source, kind, ranking, track, year, total, table, final = row
            sessions[uid] = Session(
                uid=uid,
                source=source,
                session_type=kind,
                ranking=ranking,
                track=track,
                game_year=year,
                total_laps=total,
                points_table=table,
                final_order=json.loads(final),
            )
        for row in self._run("SELECT * FROM cars").fetchall():
            uid, key, index, driver, team, status, stops, grid, position = row
            session = sessions.get(uid)
            if session is None:
                continue
            session.cars[index if session.source == "game" else key] = Car(
                car_index=index,
                driver=driver,
                team=team,
                status=status,
                pit_stops=stops,
                grid_position=grid,
                position=position,
            )
        for row in self._run(
            "SELECT id, session_uid, car_index, driver, team, lap, lap_time_ms, s1, s2, s3, valid,"
            " tyre, pit_in, pit_out, source, session_time_s, part FROM laps WHERE removed IS NULL"
            " ORDER BY id"
        ).fetchall():
            (lap_id, uid, index, driver, team, number, time, s1, s2, s3, valid, tyre, pin, pout,
             source, clock, part) = row  # fmt: skip
            session = sessions.get(uid)
            if session is None:
                continue
            session.laps.append(
                Lap(
                    session_uid=uid,
                    car_index=index,
                    driver=driver,
                    team=team,
                    lap=number,
                    lap_time_ms=time,
                    sector_ms=[s1, s2, s3],
                    valid=bool(valid),
                    tyre=tyre,
                    pit_in=bool(pin),
                    pit_out=bool(pout),
                    source=source,
                    session_time_s=clock,
                    part=part,
                    id=lap_id,
                )
            )
        return list(sessions.values())

    def save_report(self, session_uid: str, report: dict, state: dict) -> None:
        """The session's report as it stands (and the inputs it was built from)."""
        self._run(
            "INSERT OR REPLACE INTO reports VALUES (?,?,?,?)",
            (session_uid, int(bool(report["final"])), json.dumps(report), json.dumps(state)),
        )

    def report(self, session_uid: str) -> dict | None:
        row = self._run("SELECT report FROM reports WHERE session_uid=?", (session_uid,)).fetchone()
        return json.loads(row[0]) if row else None

    def report_states(self) -> dict[str, dict]:
        rows = self._run("SELECT session_uid, state FROM reports").fetchall()
        return {uid: json.loads(state) for uid, state in rows}


def list_reports(path: Path | str) -> list[dict]:
    """Every stored report's heading, newest session first (read-only: a viewer's view)."""
    with closing(_open_read_only(path)) as db:
        rows = db.execute(
            "SELECT s.uid, s.session_type, s.track, s.total_laps, r.final FROM reports r "
            "JOIN sessions s ON s.uid = r.session_uid ORDER BY s.rowid DESC"
        ).fetchall()
    return [
        {"session_uid": uid, "session_type": kind, "track": track, "total_laps": laps,
         "final": bool(final)}
        for uid, kind, track, laps, final in rows
    ]  # fmt: skip


def read_report(path: Path | str, session_uid: str | None = None) -> dict:
    """One stored report (the newest if no session is named); ValueError naming what exists."""
    with closing(_open_read_only(path)) as db:
        if session_uid is None:
            row = db.execute(
                "SELECT r.report FROM reports r JOIN sessions s ON s.uid = r.session_uid "
                "ORDER BY s.rowid DESC LIMIT 1"
            ).fetchone()
        else:
            row = db.execute(
                "SELECT report FROM reports WHERE session_uid=?", (str(session_uid),)
            ).fetchone()
    if row is None:
        have = ", ".join(r["session_uid"] for r in list_reports(path)) or "none"
        raise ValueError(f"no report for session {session_uid or '(latest)'}; have {have}")
    return json.loads(row[0])


def _open_read_only(path: Path | str) -> sqlite3.Connection:
    if not Path(path).is_file():
        raise ValueError(f"no lap timer database at {path}")
    return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)

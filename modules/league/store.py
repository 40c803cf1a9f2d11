"""The league's SQLite file: sessions attached to rounds (a copy of each final report, so the
standings never change under a league because a lap timer database moved) and the stewards'
decisions, each with who, when and why. Nothing is written unless it is valid."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from .config import League
from .standings import Attached, Decision

SCHEMA = """
CREATE TABLE IF NOT EXISTS attached (
    session_uid TEXT PRIMARY KEY, round TEXT NOT NULL, kind TEXT NOT NULL, report TEXT NOT NULL,
    by TEXT NOT NULL, at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, round TEXT NOT NULL, session_uid TEXT NOT NULL,
    driver TEXT NOT NULL, kind TEXT NOT NULL, value INTEGER NOT NULL, by TEXT NOT NULL,
    at TEXT NOT NULL, why TEXT NOT NULL
);
"""
DECISION_KINDS = ("time_penalty", "positions", "points", "dsq")


class LeagueStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def attached(self) -> list[Attached]:
        rows = self._db.execute(
            "SELECT round, kind, report FROM attached ORDER BY rowid"
        ).fetchall()
        return [Attached(round_, kind, json.loads(report)) for round_, kind, report in rows]

    def attach(self, league: League, round_name: str, kind: str, report: dict, by: str) -> None:
        league.round(round_name)  # ValueError naming the rounds
        uid = report["session_uid"]
        if not report.get("final"):
            raise ValueError(f"session {uid} is not over yet: attach it once it is final")
        for round_ in league.rounds:
            if any(ref.uid == uid for ref in round_.sessions):
                raise ValueError(f"session {uid} is already attached to round {round_.name!r} "
                                 "in the league file")  # fmt: skip
        row = self._db.execute(
            "SELECT round, by, at FROM attached WHERE session_uid=?", (uid,)
        ).fetchone()
        if row:
            raise ValueError(
                f"session {uid} is already attached to round {row[0]!r} (by {row[1]} at {row[2]})"
            )
        self._db.execute(
            "INSERT INTO attached VALUES (?,?,?,?,?,?)",
            (uid, round_name, kind, json.dumps(report), by, _now()),
        )

    def decide(self, league: League, decision: Decision) -> Decision:
        league.round(decision.round)
        if decision.kind not in DECISION_KINDS:
            raise ValueError(f"decision must be one of {', '.join(DECISION_KINDS)}")
        if decision.driver not in {d.name for d in league.drivers}:
            raise ValueError(f"no driver {decision.driver!r} in league {league.name!r}")
        if not decision.by.strip() or not decision.why.strip():
            raise ValueError("a decision needs who made it (--by) and why (--why)")
        sessions = [
            a.report["session_uid"]
            for a in self.attached()
            if a.round == decision.round and a.kind in ("race", "sprint")
        ]
        uid = decision.session_uid or (sessions[0] if len(sessions) == 1 else "")
        if uid not in sessions:
            raise ValueError(
                f"name the session of round {decision.round!r} the decision is on; attached: "
                + (", ".join(sessions) or "none")
            )
        self._db.execute(
            "INSERT INTO decisions (round, session_uid, driver, kind, value, by, at, why) "
            "VALUES (?,?,?,?,?,?,?,?)",
            (decision.round, uid, decision.driver, decision.kind, decision.value,
             decision.by, decision.at or _now(), decision.why),
        )  # fmt: skip
        return self.decisions()[-1]

    def decisions(self) -> list[Decision]:
        rows = self._db.execute(
            "SELECT round, session_uid, driver, kind, value, by, at, why, id FROM decisions "
            "ORDER BY id"
        ).fetchall()
        return [Decision(*row) for row in rows]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

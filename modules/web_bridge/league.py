"""The league on the dashboard: `/league` (driver and team standings, the stewards' decisions,
exports), `/admin/league` (attach sessions to rounds, enter decisions) and its REST under
/api/league. The bridge serves the league file given with --league; its database (attached
reports, decisions) is the one `raceplane league` uses, so page and command agree.

After every write the standings are recomputed and sent to every WebSocket client as a
`league` message: the public page and the championship overlay follow at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict
from html import escape
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from modules.league.cli import csv_table
from modules.league.config import League, load_league
from modules.league.standings import Attached, Decision, standings
from modules.league.store import LeagueStore

from .links import Link, Refused, Unreachable
from .state import Message

UID = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class AttachIn(BaseModel):
    round: str = Field(min_length=1, max_length=64)
    session_uid: str = UID
    kind: Literal["race", "sprint", "qualifying"] = "race"
    by: str = Field("admin", min_length=1, max_length=64, description="who attached it")


class DecisionIn(BaseModel):
    round: str = Field(min_length=1, max_length=64)
    driver: str = Field(min_length=1, max_length=64, description="the league driver's name")
    kind: Literal["time_penalty", "positions", "points", "dsq"]
    value: int = Field(1, ge=0, le=3600, description="seconds, places or points (dsq: ignored)")
    by: str = Field(min_length=1, max_length=64, description="who decided")
    why: str = Field(min_length=1, max_length=500, description="what for")
    session_uid: str = Field("", max_length=64, description="if the round has several sessions")


class LeagueService:
    """One league file and its database; every read and write under one lock."""

    def __init__(
        self,
        path: Path | str,
        db: Path | str | None,
        lap_timer: Link,
        publish: Callable[[list[Message]], None],
    ) -> None:
        self.path = Path(path)
        self.league: League = load_league(self.path)  # LeagueFileError: the bridge won't start
        self.db = Path(db) if db else self.path.with_suffix(".sqlite3")
        LeagueStore(self.db).close()  # created (and checked) now, not at the first request
        self.lap_timer = lap_timer
        self.publish = publish
        self._lock = threading.Lock()
        self._table: dict[str, Any] | None = None
        self._table_stamp = (0, 0)  # the database file's (mtime, size) the table was made from
        # Reports of the sessions the file lists, fetched once from the lap timer: they are
        # final when listed, so they do not change.
        self._listed: dict[str, dict[str, Any]] = {}

    def _store(self) -> LeagueStore:
        return LeagueStore(self.db)  # a connection per call: requests come on many threads

    def _report(self, uid: str) -> dict[str, Any]:
        try:
            return self.lap_timer.request("GET_REPORT", {"session_uid": uid})
        except Refused as error:
            raise ValueError(str(error)) from None
        except Unreachable as error:
            raise LookupError(f"lap timer not reachable: {error}") from None

    def _compute(self, store: LeagueStore) -> dict[str, Any]:
        attached = list(store.attached())
        for round_ in self.league.rounds:
            for ref in round_.sessions:
                if ref.uid not in self._listed:
                    self._listed[ref.uid] = self._report(ref.uid)
                attached.append(Attached(round_.name, ref.kind, self._listed[ref.uid]))
        table = standings(self.league, attached, store.decisions())
        table["decisions"] = [asdict(d) for d in store.decisions()]
        table["drivers_known"] = [d.name for d in self.league.drivers]
        table["attached"] = [
            {"round": a.round, "kind": a.kind, "session_uid": a.report["session_uid"]}
            for a in attached
        ]
        return table

    def _stamp(self) -> tuple[int, int]:
        stat = self.db.stat()
        return stat.st_mtime_ns, stat.st_size

    def table(self) -> dict[str, Any]:
        with self._lock:
            # `raceplane league` may have written to the same database meanwhile.
            if self._table is None or self._stamp() != self._table_stamp:
                store = self._store()
                try:
                    self._table = self._compute(store)
                finally:
                    store.close()
                self._table_stamp = self._stamp()
            return self._table

    def _write(self, change: Callable[[LeagueStore], Any]) -> tuple[Any, dict[str, Any]]:
        with self._lock:
            store = self._store()
            try:
                done = change(store)
                self._table = self._compute(store)
            finally:
                store.close()
            self._table_stamp = self._stamp()
            table = self._table
        self.publish([Message("league", table)])
        return done, table

    def attach(self, body: AttachIn) -> dict[str, Any]:
        self.league.round(body.round)  # before asking the lap timer: the round's name first
        report = self._report(body.session_uid)
        self._write(lambda store: store.attach(self.league, body.round, body.kind, report, body.by))
        return {"round": body.round, "session_uid": body.session_uid, "kind": body.kind}

    def decide(self, body: DecisionIn) -> dict[str, Any]:
        decision = Decision(
            body.round,
            body.session_uid,
            body.driver,
            body.kind,
            1 if body.kind == "dsq" else body.value,
            body.by.strip(),
            "",
            body.why.strip(),
        )
        made, _ = self._write(lambda store: store.decide(self.league, decision))
        return asdict(made)


# Which form field a refusal is about, by what its message says.
FIELDS = (
    ("no round", "round"),
    ("no driver", "driver"),
    ("name the session", "session_uid"),
    ("no session", "session_uid"),
    ("no report", "session_uid"),
    ("already attached", "session_uid"),
    ("not over yet", "session_uid"),
    ("who made it", "by"),
)


def _refused(error: ValueError) -> HTTPException:
    text = str(error)
    field = next((name for prefix, name in FIELDS if prefix in text), "body")
    return HTTPException(422, [{"loc": ["body", field], "msg": text, "type": "value_error"}])


def register_league(
    app: FastAPI,
    service: LeagueService | None,
    writer: list[Any],
    admin_page: Callable[..., Response],
    static: Path,
) -> None:
    """The league's routes; without --league they say how to give one (404)."""

    def need() -> LeagueService:
        if service is None:
            raise HTTPException(404, "no league: start the web bridge with --league LEAGUE.toml")
        return service

    def table() -> dict[str, Any]:
        try:
            return need().table()
        except LookupError as error:
            raise HTTPException(503, str(error)) from None
        except ValueError as error:
            raise HTTPException(502, f"a session the league file lists: {error}") from None

    @app.get("/api/league", tags=["league"])
    def league_standings() -> dict[str, Any]:
        """Driver and team standings, each session's league order, the stewards' decisions."""
        return table()

    @app.get("/api/league/standings.csv", tags=["league"], response_class=Response)
    def league_csv() -> Response:
        return Response(
            csv_table(table()),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="standings.csv"'},
        )

    @app.post("/api/league/attach", tags=["league"], status_code=201, dependencies=writer)
    def league_attach(body: AttachIn) -> dict[str, Any]:
        """Attach a finished session (from the lap timer) to a round."""
        try:
            return need().attach(body)
        except LookupError as error:
            raise HTTPException(503, str(error)) from None
        except ValueError as error:
            raise _refused(error) from None

    @app.post("/api/league/decisions", tags=["league"], status_code=201, dependencies=writer)
    def league_decide(body: DecisionIn) -> dict[str, Any]:
        """A stewards' decision (who, why; when is stamped): results and standings recomputed."""
        try:
            return need().decide(body)
        except LookupError as error:
            raise HTTPException(503, str(error)) from None
        except ValueError as error:
            raise _refused(error) from None

    @app.get("/league", include_in_schema=False)
    def league_page() -> HTMLResponse:
        if service is None:
            return HTMLResponse(_page("League", "<p>No league: start the web bridge with "
                                      "<code>--league LEAGUE.toml</code>.</p>"), 404)  # fmt: skip
        return HTMLResponse(_page(service.league.name, render_standings(table())))

    @app.get("/admin/league", include_in_schema=False, response_model=None)
    def league_admin(request: Request, token: str | None = None) -> Response:
        return admin_page(request, token, static / "league-admin.html")


def render_standings(table: dict[str, Any]) -> str:
    """The public page's body: drivers, teams, decisions (the page script keeps it live)."""
    e = escape
    held = table["rounds_held"]
    heads = "".join(f"<th>{e(r)}</th>" for r in held)
    drivers = "".join(
        f'<tr data-driver="{e(d["driver"])}"><td>{d["position"]}</td><td>{e(d["driver"])}</td>'
        f"<td>{e(d['team'])}</td><td class=num>{d['points']}</td>"
        + "".join(f"<td class=num>{_round_points(d, r)}</td>" for r in held)
        + f"<td class=num>{('-' + str(d['deducted'])) if d['deducted'] else ''}</td></tr>"
        for d in table["drivers"]
    )
    teams = "".join(
        f'<tr data-team="{e(t["team"])}"><td>{t["position"]}</td><td>{e(t["team"])}</td>'
        f"<td class=num>{t['points']}</td></tr>"
        for t in table["teams"]
    )
    decisions = "".join(
        f"<li>{e(d['round'])}: {e(d['driver'])}, {e(_decision_text(d))}: {e(d['why'])} "
        f"<small>({e(d['by'])}, {e(d['at'])})</small></li>"
        for d in table["decisions"]
    )
    return (
        f"<h1>{e(table['league'])}</h1>"
        f"<p>After {len(held)} of {len(table['rounds'])} rounds · "
        '<a href="/api/league/standings.csv">CSV</a> · <a href="/api/league">JSON</a></p>'
        '<h2>Drivers</h2><table id="drivers"><thead><tr><th>Pos</th><th>Driver</th><th>Team</th>'
        f"<th>Pts</th>{heads}<th>Deducted</th></tr></thead><tbody>{drivers}</tbody></table>"
        '<h2>Teams</h2><table id="teams"><thead><tr><th>Pos</th><th>Team</th><th>Pts</th></tr>'
        f"</thead><tbody>{teams}</tbody></table>"
        f'<h2>Stewards\' decisions</h2><ul id="decisions">{decisions or "<li>none</li>"}</ul>'
    )


def _round_points(driver: dict[str, Any], round_name: str) -> str:
    points = driver["rounds"][round_name]
    return f"({points})" if round_name in driver["dropped"] else str(points)


def _decision_text(decision: dict[str, Any]) -> str:
    value = decision["value"]
    return {
        "time_penalty": f"+{value} s",
        "positions": f"{value} places dropped",
        "points": f"{value} points deducted",
        "dsq": "disqualified",
    }[decision["kind"]]


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        '<link rel="stylesheet" href="/static/app.css">'
        '<script type="module" src="/static/js/league.js"></script></head>'
        f'<body class="results league"><main id="league">{body}</main></body></html>'
    )

"""Results pages: `/results` (the current session and earlier ones), each session's report as
JSON, CSV and a printable page. The lap timer builds and stores the reports; these routes ask it
(GET_REPORT, LIST_REPORTS) and render with modules.lap_timer.results."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from modules.lap_timer.results import heading, to_csv, to_html

from .links import Link, Refused, Unreachable

UID = Query(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


def register_results(app: FastAPI, lap_timer: Link) -> None:
    def ask(cmd: str, payload: dict[str, Any] | None = None) -> Any:
        try:
            return lap_timer.request(cmd, payload)
        except Refused as error:
            raise HTTPException(404, str(error)) from None
        except Unreachable as error:
            raise HTTPException(503, f"not reachable: {error}") from None

    def report(session_uid: str | None) -> dict[str, Any]:
        return ask("GET_REPORT", {"session_uid": session_uid} if session_uid else None)

    @app.get("/api/results", tags=["results"])
    def results_list() -> list[dict[str, Any]]:
        """Every session with results, newest first."""
        return ask("LIST_REPORTS")

    @app.get("/api/results/report", tags=["results"])
    def results_json(session_uid: str | None = UID) -> dict[str, Any]:
        """A session's report (the current session unless one is named)."""
        return report(session_uid)

    @app.get("/api/results/report.csv", tags=["results"], response_class=Response)
    def results_csv(session_uid: str | None = UID) -> Response:
        data = report(session_uid)
        name = f"results-{data['session_uid']}.csv"
        return Response(
            to_csv(data),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.get("/results/print", include_in_schema=False)
    def results_print(session_uid: str | None = UID) -> HTMLResponse:
        return HTMLResponse(to_html(report(session_uid)))

    @app.get("/results", include_in_schema=False)
    def results_page(session_uid: str | None = UID) -> HTMLResponse:
        sessions = ask("LIST_REPORTS")
        if not sessions:
            return HTMLResponse(_page("Results", "<p>No session yet.</p>", refresh=True))
        data = report(session_uid)
        uid = escape(data["session_uid"])
        links = "".join(
            f'<li><a href="/results?session_uid={escape(s["session_uid"])}">'
            f"{escape(s['session_type'])} at {escape(s['track'] or '?')}"
            f"{'' if s['final'] else ' (live)'}</a></li>"
            for s in sessions
        )
        # The printable page's body is the report itself: one renderer for both.
        body = to_html(data).split("<body>", 1)[1].rsplit("</body>", 1)[0]
        exports = (
            f'<p class="exports"><a href="/api/results/report.csv?session_uid={uid}">CSV</a> · '
            f'<a href="/api/results/report?session_uid={uid}">JSON</a> · '
            f'<a href="/results/print?session_uid={uid}">Printable</a></p>'
        )
        nav = f'<nav><h2>Sessions</h2><ul class="sessions">{links}</ul></nav>'
        return HTMLResponse(_page(heading(data), exports + body + nav, refresh=not data["final"]))


def _page(title: str, body: str, refresh: bool) -> str:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}'
        f"<title>{escape(title)}</title>"
        '<link rel="stylesheet" href="/static/app.css"></head>'
        f'<body class="results"><main>{body}</main></body></html>'
    )

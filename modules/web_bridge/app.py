"""The HTTP side: dashboard, admin page, REST under /api, the WebSocket at /ws.

FastAPI on uvicorn: FastAPI gives the OpenAPI description (/docs, /openapi.json) and request
validation that the REST API and its fuzz test rest on, and Starlette underneath gives the
WebSocket support the hub uses; uvicorn serves both from one event loop.

Safety: bound to loopback, everyone on this machine may write. Bound to any other address,
every write endpoint and /admin need the token: `Authorization: Bearer TOKEN`, or the cookie
`/admin?token=TOKEN` sets (SameSite=Strict, so other sites cannot ride on it).
"""

from __future__ import annotations

import hmac
import re
import tempfile
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, WebSocket
from fastapi import Path as PathParam
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field

from . import engineer
from .analysis import Recordings, add_routes
from .feeds import RING_SAMPLES, Feeds
from .hub import Hub
from .league import LeagueService, register_league
from .links import Link, Refused, Unreachable
from .logtail import LogTail
from .overlays import register_overlays
from .results import register_results

STATIC = Path(__file__).parent / "static"
COOKIE = "raceplane_token"
RECORDING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.xdf")
# Which form field a lap timer refusal is about, by how its message starts.
FIELD_OF_ERROR = (("lap time", "time"), ("driver", "driver"), ("team", "team"), ("track", "track"))


class LapIn(BaseModel):
    driver: str = Field(min_length=1, max_length=64, description="driver's name")
    time: str = Field(
        min_length=1, max_length=32, description="m:ss.sss, m.ss.sss, ss.sss or plain seconds"
    )
    team: str = Field("", max_length=64)


class TrackIn(BaseModel):
    track: str = Field(min_length=1, max_length=64)


class SourceIn(BaseModel):
    source: str = Field(
        description='"live" (the newest live session) or a producer from GET /api/source'
    )


class RecordIn(BaseModel):
    filename: str | None = Field(
        None, description="a plain file name ending in .xdf; default: a timestamped name"
    )


@dataclass
class Parts:
    """Everything the routes need, built by the bridge."""

    feeds: Feeds
    hub: Hub
    logs: LogTail
    lap_timer: Link
    recorder: Link
    token: str | None
    status: Any  # () -> dict: the bridge's own STATUS
    league: LeagueService | None = None  # --league


def field_error(field: str, message: str, status: int = 422) -> HTTPException:
    """An error in the shape FastAPI's own validation uses, so the admin page shows both alike."""
    return HTTPException(status, [{"loc": ["body", field], "msg": message, "type": "value_error"}])


def refusal(error: Refused, fields: tuple[str, ...]) -> HTTPException:
    text = str(error)
    for prefix, name in FIELD_OF_ERROR:
        if name in fields and text.lower().startswith(prefix):
            return field_error(name, text)
    return field_error(fields[0] if fields else "body", text)


def unreachable(error: Unreachable) -> HTTPException:
    return HTTPException(503, f"not reachable: {error}")


def create_app(parts: Parts) -> FastAPI:
    # /docs (Swagger UI) and /redoc load their scripts from files fastapi-offline installs,
    # not from a CDN: the docs work with no internet.
    app = FastAPIOffline(
        title="Raceplane web bridge",
        description="Live session data from LSL, and the admin writes to the lap timer and "
        "recorder. Bound beyond loopback, writes need `Authorization: Bearer TOKEN`.",
        version="1",
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def authorised(request: Request) -> bool:
        if parts.token is None:
            return True
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        given = given or request.cookies.get(COOKIE, "")
        return hmac.compare_digest(given.encode(), parts.token.encode())

    def require_token(request: Request) -> None:
        if not authorised(request):
            raise HTTPException(401, "this bridge needs a token for writes (Authorization: Bearer)")

    writer = [Depends(require_token)]
    # The raw data (what programs read) is guarded like the writes when bound beyond loopback;
    # the dashboard's own reads stay open.
    observer = [Depends(require_token)]

    @app.middleware("http")
    async def refuse_wrong_token(request: Request, call_next: Any) -> Response:
        """A request that brings a token the bridge does not know is refused, whatever it
        asks for: a client with a stale token hears so at once."""
        presented = parts.token is not None and request.headers.get("authorization")
        if presented and not authorised(request):
            return JSONResponse(
                {"detail": "wrong token for this web bridge (Authorization: Bearer)"}, 401
            )
        return await call_next(request)

    # ---- pages -----------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    def admin_page(request: Request, token: str | None, page: Path) -> Response:
        """An admin page: with the token (header or cookie) when bound beyond loopback;
        `?token=` sets the cookie and comes back to the page without it in the address."""
        if token is not None and parts.token is not None:
            if not hmac.compare_digest(token.encode(), parts.token.encode()):
                return HTMLResponse(_locked("wrong token", request.url.path), 401)
            response = RedirectResponse(request.url.path, 303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        if not authorised(request):
            why = "this page needs the bridge's token"
            return HTMLResponse(_locked(why, request.url.path), 401)
        return FileResponse(page)

    @app.get("/admin", include_in_schema=False, response_model=None)
    def admin(request: Request, token: str | None = None) -> Response:
        return admin_page(request, token, STATIC / "admin.html")

    # ---- reading ---------------------------------------------------------------------------

    @app.get("/api/session", tags=["session"])
    def session() -> dict[str, Any]:
        """Track, session type, lap x of y, weather, safety car, flags."""
        with parts.feeds.lock:
            return parts.feeds.state.session

    @app.get("/api/source", tags=["session"])
    def get_source() -> dict[str, Any]:
        """Whose session data is shown (`showing`, `replay`), what the user asked for
        (`wanted`: "live" or a producer), and every producer seen (`sources`)."""
        return parts.feeds.source_status()

    @app.post("/api/source", tags=["session"], dependencies=writer)
    def pick_source(body: SourceIn) -> dict[str, Any]:
        """Show another source: "live", or a producer such as a replay."""
        try:
            return parts.feeds.pick_source(body.source)
        except ValueError as error:
            raise field_error("source", str(error)) from None

    @app.get("/api/standings", tags=["session"])
    def standings(session_uid: str | None = Query(None, max_length=64)) -> dict[str, Any]:
        """The lap timer's standings table (the current session unless one is named)."""
        with parts.feeds.lock:
            state = parts.feeds.state
            table = state.standings.get(session_uid) if session_uid else state.current_standings()
        if table is not None:
            return table
        try:
            payload = {"session_uid": session_uid} if session_uid else None
            return parts.lap_timer.request("GET_STANDINGS", payload)
        except Refused as error:
            raise HTTPException(404, str(error)) from None
        except Unreachable as error:
            raise unreachable(error) from None

    @app.get("/api/tower", tags=["session"])
    def tower() -> list[dict[str, Any]]:
        """The timing tower as the dashboard shows it: live order, gaps, laps, tyres."""
        with parts.feeds.lock:
            return parts.feeds.state.tower()

    @app.get("/api/drivers", tags=["session"])
    def drivers() -> list[dict[str, Any]]:
        with parts.feeds.lock:
            return parts.feeds.state.participants

    @app.get("/api/events", tags=["session"])
    def events(limit: int = Query(50, ge=1, le=200)) -> list[dict[str, Any]]:
        with parts.feeds.lock:
            return list(parts.feeds.state.events)[-limit:]

    @app.get("/api/logs", tags=["session"])
    def logs(limit: int = Query(50, ge=1, le=200)) -> list[dict[str, Any]]:
        return parts.logs.recent(limit)

    @app.get("/api/laps", tags=["laps"])
    def laps(
        car: int | None = Query(None, ge=0, le=255, description="car index"),
        driver: str | None = Query(None, min_length=1, max_length=64),
        session_uid: str | None = Query(None, min_length=1, max_length=64),
    ) -> list[dict[str, Any]]:
        """Every lap of the session from the lap timer (with the ids DELETE takes)."""
        payload: dict[str, Any] = {}
        if car is not None or driver is not None:
            payload["car"] = car if car is not None else driver
        if session_uid is not None:
            payload["session_uid"] = session_uid
        try:
            return parts.lap_timer.request("GET_LAPS", payload)
        except Refused as error:
            raise HTTPException(404, str(error)) from None
        except Unreachable as error:
            raise unreachable(error) from None

    @app.get("/api/streams", tags=["observer"], dependencies=observer)
    def streams() -> list[dict[str, Any]]:
        """Every LSL stream the bridge watches."""
        return parts.feeds.describe()

    @app.get("/api/inputs", tags=["observer"])
    def inputs() -> dict[str, Any]:
        """Expected streams missing or gone quiet (the dashboard's banner), and each one's state."""
        return parts.feeds.inputs()

    @app.get("/api/channels", tags=["observer"], dependencies=observer)
    def channels(stream: str | None = Query(None, max_length=100)) -> dict[str, Any]:
        """The newest value of every numeric channel (of one stream if named)."""
        try:
            return parts.feeds.last_values(stream)
        except KeyError as error:
            raise HTTPException(404, error.args[0]) from None

    @app.get("/api/channels/{stream}/{channel}", tags=["observer"], dependencies=observer)
    def channel_since(
        stream: str,
        channel: str,
        since: float = Query(0.0, description="LSL time; samples stamped after it"),
        limit: int = Query(RING_SAMPLES, ge=1, le=RING_SAMPLES),
    ) -> dict[str, Any]:
        """A channel's samples since a time (those still in the bridge's 30 s ring)."""
        try:
            return parts.feeds.since(stream, channel, since, limit)
        except KeyError as error:
            raise HTTPException(404, error.args[0]) from None

    @app.get("/api/export.csv", tags=["laps"], response_class=Response)
    def export_csv(session_uid: str | None = Query(None, min_length=1, max_length=64)) -> Response:
        """The standings as CSV, written by the lap timer (it must share this machine's disk)."""
        with tempfile.TemporaryDirectory(prefix="raceplane-export-") as directory:
            path = Path(directory) / "standings.csv"
            payload: dict[str, Any] = {"path": str(path)}
            if session_uid:
                payload["session_uid"] = session_uid
            try:
                parts.lap_timer.request("EXPORT", payload)
            except Refused as error:
                raise HTTPException(404, str(error)) from None
            except Unreachable as error:
                raise unreachable(error) from None
            if not path.exists():
                raise HTTPException(502, "the lap timer wrote the CSV elsewhere (another host?)")
            text = path.read_text(encoding="utf-8")
        return Response(
            text,
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="standings.csv"'},
        )

    @app.get("/api/modules", tags=["admin"])
    def modules() -> dict[str, Any]:
        """STATUS of the bridge, the lap timer and the recorder."""
        result: dict[str, Any] = {"web_bridge": parts.status()}
        for link in (parts.lap_timer, parts.recorder):
            try:
                result[link.name] = {"up": True, **link.request("STATUS")}
            except (Refused, Unreachable) as error:
                result[link.name] = {"up": False, "error": str(error)}
        return result

    # ---- writing ---------------------------------------------------------------------------

    @app.post("/api/laps", tags=["laps"], status_code=201, dependencies=writer)
    def add_lap(lap: LapIn) -> dict[str, Any]:
        """A hand-timed lap on the lap timer's manual board; 422 says which field is wrong."""
        try:
            return parts.lap_timer.request("ADD_LAP", lap.model_dump())
        except Refused as error:
            raise refusal(error, ("time", "driver", "team")) from None
        except Unreachable as error:
            raise unreachable(error) from None

    @app.delete("/api/laps/{lap_id}", tags=["laps"], dependencies=writer)
    def delete_lap(lap_id: Annotated[int, PathParam(ge=1, le=2**62)]) -> dict[str, Any]:
        try:
            return parts.lap_timer.request("DELETE_LAP", {"id": lap_id})
        except Refused as error:
            raise HTTPException(404, str(error)) from None
        except Unreachable as error:
            raise unreachable(error) from None

    @app.put("/api/track", tags=["admin"], dependencies=writer)
    def set_track(body: TrackIn) -> dict[str, Any]:
        try:
            return {"track": parts.lap_timer.request("SET_TRACK", {"track": body.track})}
        except Refused as error:
            raise refusal(error, ("track",)) from None
        except Unreachable as error:
            raise unreachable(error) from None

    @app.post("/api/recorder/record", tags=["admin"], dependencies=writer)
    def record(body: RecordIn) -> dict[str, Any]:
        """Start the recorder (a new file in its save path)."""
        payload = {}
        if body.filename is not None:
            # Only a name: the web must not choose where on the recorder's disk a file lands.
            if not RECORDING_NAME.fullmatch(body.filename):
                raise field_error("filename", "a plain file name ending in .xdf (no folders)")
            payload["filename"] = body.filename
        try:
            return parts.recorder.request("RECORD", payload)
        except Refused as error:
            raise HTTPException(409, str(error)) from None
        except Unreachable as error:
            raise unreachable(error) from None

    @app.post("/api/recorder/stop", tags=["admin"], dependencies=writer)
    def stop_recording() -> dict[str, Any]:
        try:
            return parts.recorder.request("STOPRECORD")
        except Refused as error:
            raise HTTPException(409, str(error)) from None
        except Unreachable as error:
            raise unreachable(error) from None

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        await parts.hub.serve(ws)

    register_results(app, parts.lap_timer)
    register_league(app, parts.league, writer, admin_page, STATIC)
    register_overlays(app, STATIC)

    def lap_version() -> tuple[int, Any]:
        """Changes with every lap the lap timer publishes: the compare page's live refresh."""
        with parts.feeds.lock:
            laps = parts.feeds.state.laps
            return (len(laps), laps[-1].get("id") if laps else None)

    add_routes(app, Recordings(parts.recorder, lap_version), STATIC)

    engineer.register(app, parts.feeds)
    return app


def _locked(why: str, path: str = "/admin") -> str:
    return (
        "<!doctype html><meta charset=utf-8><title>Raceplane admin</title>"
        '<link rel=stylesheet href="/static/app.css"><main class="locked">'
        f"<h1>Admin locked</h1><p>{why}.</p><form method=get action={escape(path)}>"
        "<label>Token <input name=token type=password autocomplete=off></label>"
        "<button>Open</button></form></main>"
    )

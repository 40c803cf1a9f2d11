"""The compare page (/compare) and its REST: two laps of any drivers, of the session being
recorded now or of a recording in the recorder's save path, as speed/throttle/brake traces on
one distance axis with the delta between them.

The laps and traces come from `modules.analysis` opening the recorder's files (the one being
written is read up to its last whole chunk). The session being recorded is opened again only
when the lap timer has published a new lap since, so the page follows the race lap by lap.
plotly's JavaScript is served from the installed plotly package, never from a CDN.
`modules.analysis` (pandas, plotly: ~80 MB) is imported on the first analysis request, not at
start: a bridge whose compare page is never opened does not carry it (issue 18, footprint).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse

from .links import Refused, Unreachable

if TYPE_CHECKING:
    # pandas and plotly (through modules.analysis) cost the bridge 0.4 s of start and ~60 MB;
    # they are imported when the compare page is first used.
    from modules.analysis import Session

LIVE = "live"
RECORDING_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.xdf")
# The recorder's rotated parts: race.xdf, race.part0002.xdf, ... are one recording, "race.xdf".
PART = re.compile(r"(?P<base>.+?)\.part\d{4}\.xdf")
LAP_KEY = re.compile(r"(?P<car>\d{1,2})-(?P<lap>\d{1,3}|fastest)@(?P<uid>\d{1,20})")
CACHE = 4  # opened recordings kept
LIVE_REOPEN_S = 5.0


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class Recordings:
    """Opened recordings by name, the live one re-opened when a new lap has been published."""

    def __init__(self, recorder, lap_version) -> None:
        self.recorder = recorder
        self.lap_version = lap_version  # () -> something that changes with every new lap
        self._lock = threading.Lock()
        self._open: dict[str, tuple[Any, Session, float]] = {}

    def _status(self) -> dict[str, Any]:
        try:
            return self.recorder.request("STATUS")
        except Unreachable as error:
            raise HTTPException(503, f"the recorder is not reachable: {error}") from None
        except Refused as error:
            raise HTTPException(502, f"the recorder refused STATUS: {error}") from None

    def list(self) -> dict[str, Any]:
        status = self._status()
        live = [Path(f).name for f in status.get("files", [])] if status.get("recording") else []
        names = sorted(_recordings(Path(status.get("save_path", ""))), reverse=True)
        current = {_base(name) for name in live}
        return {"live": live, "recordings": [n for n in names if n not in current]}

    def files(self, name: str) -> tuple[list[Path], Any]:
        status = self._status()
        if name == LIVE:
            if not status.get("recording"):
                raise HTTPException(404, "the recorder is not recording: no live session to read")
            paths = [Path(f) for f in status.get("files", [])]
            return paths, (tuple(paths), self.lap_version())
        if not RECORDING_FILE.fullmatch(name):
            raise HTTPException(422, "a recording is a plain file name ending in .xdf")
        paths = _recordings(Path(status.get("save_path", ""))).get(name)
        if not paths:
            raise HTTPException(404, f"no recording {name} in the recorder's save path")
        stats = [(p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
        return paths, (tuple(paths), tuple(stats))

    def session(self, name: str) -> Session:
        from modules.analysis import RecordingError, open_recording

        paths, version = self.files(name)
        with self._lock:
            cached = self._open.get(name)
            if cached is not None and cached[0] == version:
                return cached[1]
            # The live file is read again at most every LIVE_REOPEN_S, however fast laps come
            # (22 cars finish a lap every few seconds; a race's file is hundreds of MB).
            if cached is not None and name == LIVE and time.monotonic() - cached[2] < LIVE_REOPEN_S:
                return cached[1]
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                raise HTTPException(
                    502, f"the recording is not on this machine's disk: {', '.join(missing)}"
                )
            from modules.analysis import RecordingError, open_recording

            try:
                session = open_recording(*paths)
                session.laps  # noqa: B018 - found once, here, under the lock
            except RecordingError as error:
                raise HTTPException(422, f"{name}: {error}") from None
            self._open[name] = (version, session, time.monotonic())
            while len(self._open) > CACHE:
                self._open.pop(next(iter(self._open)))
            return session


def _base(name: str) -> str:
    match = PART.fullmatch(name)
    return f"{match['base']}.xdf" if match else name


def _recordings(folder: Path) -> dict[str, list[Path]]:
    """Recordings in a folder by name, each with its parts in the order they were written."""
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("*.xdf")):
        if RECORDING_FILE.fullmatch(path.name):
            found.setdefault(_base(path.name), []).append(path)
    return found


def _lap_rows(session: Session) -> list[dict[str, Any]]:
    rows = []
    for lap in session.laps.itertuples():
        rows.append(
            {
                "key": f"{lap.CarIndex}-{lap.LapNumber}@{lap.SessionUID}",
                "driver": lap.Driver,
                "team": lap.Team,
                "car": int(lap.CarIndex),
                "lap": int(lap.LapNumber),
                "lap_time_s": lap.LapTime.total_seconds(),
                "valid": bool(lap.Valid),
                "compound": lap.Compound,
                "session_uid": lap.SessionUID,
            }
        )
    return rows


def _pick(session: Session, key: str):
    match = LAP_KEY.fullmatch(key)
    if match is None:
        raise HTTPException(422, f"a lap is CAR-LAP@SESSION or CAR-fastest@SESSION, not {key!r}")
    laps = session.laps
    mine = laps[(laps["CarIndex"] == int(match["car"])) & (laps["SessionUID"] == match["uid"])]
    if match["lap"] == "fastest":
        valid = mine[~mine["Deleted"]]
        pool = valid if len(valid) else mine
        if pool.empty:
            raise HTTPException(404, f"car {match['car']} has no laps yet")
        return pool.loc[pool["LapTime"].idxmin()]
    chosen = mine[mine["LapNumber"] == int(match["lap"])]
    if chosen.empty:
        raise HTTPException(404, f"car {match['car']} has no lap {match['lap']}")
    return chosen.iloc[-1]


def add_routes(app: FastAPI, recordings: Recordings, static: Path) -> None:
    @app.get("/compare", include_in_schema=False)
    def compare_page() -> FileResponse:
        return FileResponse(static / "compare.html")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_bundle() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript")

    @app.get("/api/analysis/recordings", tags=["analysis"])
    def analysis_recordings() -> dict[str, Any]:
        """The session being recorded (its files) and the recordings in the save path."""
        return recordings.list()

    @app.get("/api/analysis/laps", tags=["analysis"])
    def analysis_laps(
        recording: str = Query(LIVE, max_length=100, description="'live' or a file name"),
    ) -> dict[str, Any]:
        """Every lap of a recording (keys for /api/analysis/compare), and its warnings."""
        session = recordings.session(recording)
        return {"laps": _lap_rows(session), "warnings": session.warnings}

    @app.get("/api/analysis/compare", tags=["analysis"])
    def analysis_compare(
        a: str = Query(max_length=40, description="CAR-LAP@SESSION or CAR-fastest@SESSION"),
        b: str = Query(max_length=40),
        recording: str = Query(LIVE, max_length=100),
    ) -> dict[str, Any]:
        """Two laps' speed, throttle and brake on one distance axis, and b's delta to a."""
        session = recordings.session(recording)
        laps = [_pick(session, key) for key in (a, b)]
        telemetry = [session.telemetry(lap) for lap in laps]
        if not all(t["Speed"].notna().any() for t in telemetry):
            raise HTTPException(404, "no car telemetry for these laps in the recording")
        from modules.analysis.charts import compare_data

        data = compare_data(*telemetry)
        data["names"] = [f"{lap['Driver']} lap {lap['LapNumber']}" for lap in laps]
        data["lap_times_s"] = [lap["LapTime"].total_seconds() for lap in laps]
        return data

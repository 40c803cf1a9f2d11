"""The race engineer's page (`/engineer`) and its data: the engineer module's streams relayed.

`raceplane.engineer` ({type: cars} the picture of every car at the engineer's rate, {type: lap}
each lap as it ended) and `raceplane.pit_rejoin` (every running car's rejoin) go to every
WebSocket client as `engineer`, `engineer_lap` and `pit_rejoin` messages; the newest of each
is kept for a client that connects later and for `/api/engineer`, `/api/pit_rejoin`. The page
picks its car (a menu, or `/engineer?car=N`) and its rate itself. Without I/O but the routes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse

ENGINEER = "raceplane.engineer"
PIT_REJOIN = "raceplane.pit_rejoin"
STREAMS = frozenset((ENGINEER, PIT_REJOIN))
STATIC = Path(__file__).parent / "static"


class EngineerView:
    """The newest engineer picture and rejoin predictions; messages for the hub."""

    def __init__(self) -> None:
        self.picture: dict[str, Any] | None = None
        self.rejoin: dict[str, Any] | None = None

    def on_json(self, stream: str, obj: dict[str, Any]) -> list[tuple[str, Any]]:
        """(message type, data) to broadcast for one sample of either stream."""
        if stream == PIT_REJOIN:
            self.rejoin = obj
            return [("pit_rejoin", obj)]
        kind = obj.get("type")
        if kind == "cars":
            self.picture = obj
            return [("engineer", obj)]
        if kind == "lap":
            return [("engineer_lap", obj)]
        return []

    def snapshot(self) -> dict[str, Any]:
        return {"engineer": self.picture, "pit_rejoin": self.rejoin}


def register(app: FastAPI, feeds: Any) -> None:
    """The page and its two REST views, on the bridge's app (`feeds.state.engineer`)."""

    @app.get("/engineer", include_in_schema=False)
    def engineer_page() -> FileResponse:
        return FileResponse(STATIC / "engineer.html")

    @app.get("/api/engineer", tags=["engineer"])
    def engineer(car: int | None = Query(None, ge=0, le=21)) -> dict[str, Any]:
        """The engineer's newest picture: every car, or one (`?car=N`)."""
        with feeds.lock:
            picture = feeds.state.engineer.picture
        if picture is None:
            raise HTTPException(404, "no engineer picture yet: is the engineer module running?")
        if car is None:
            return picture
        one = picture.get("cars", {}).get(str(car))
        if one is None:
            raise HTTPException(404, f"car {car} is not in the session")
        return one

    @app.get("/api/pit_rejoin", tags=["engineer"])
    def pit_rejoin() -> dict[str, Any]:
        """Where every running car would rejoin if it pitted now."""
        with feeds.lock:
            rejoin = feeds.state.engineer.rejoin
        if rejoin is None:
            raise HTTPException(404, "no rejoin prediction yet: is the engineer module running?")
        return rejoin

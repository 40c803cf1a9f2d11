"""Broadcast overlays (OBS browser sources): `/overlay/<kind>` for the compact tower, the
interval/battle box of two cars, the fastest-lap banner, the session header and the
championship table. Transparent pages that follow the dashboard's WebSocket (/ws), so they are
as live as the dashboard. URL options, checked here (422 names a wrong one):

    rows=N      rows of the tower or championship table (1..22; default 10)
    car=I       the battle box's car (car index; default: the leader's chaser)
    other=I     the car it is measured against (default: the car ahead)
    theme=T     dark | light | team (light text on team colours)
    scale=X     0.25..4: the whole overlay scaled, for 720p to 4K scenes
    hold=S      seconds the fastest-lap banner stays up (0: until the next one; default 8)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

OPTIONS = {"rows", "car", "other", "theme", "scale", "hold"}


def register_overlays(app: FastAPI, static: Path) -> None:
    @app.get("/overlay/{kind}", include_in_schema=False)
    def overlay(
        request: Request,
        kind: Literal["tower", "battle", "fastest-lap", "header", "championship"] = PathParam(),
        rows: int = Query(10, ge=1, le=22),
        car: int | None = Query(None, ge=0, le=21),
        other: int | None = Query(None, ge=0, le=21),
        theme: Literal["dark", "light", "team"] = "dark",
        scale: float = Query(1.0, ge=0.25, le=4.0),
        hold: float = Query(8.0, ge=0, le=600),
    ) -> FileResponse:
        # The options are read again by the page's script; checked here so a typo in an OBS
        # source's address shows as an error, not as an overlay quietly ignoring it.
        unknown = sorted(set(request.query_params) - OPTIONS)
        if unknown:
            raise HTTPException(
                422,
                [
                    {"loc": ["query", name], "msg": f"unknown option; known: {sorted(OPTIONS)}",
                     "type": "value_error"}
                    for name in unknown
                ],
            )  # fmt: skip
        return FileResponse(static / "overlay.html")

"""`raceplane report FILE... [-o report.html]`: one self-contained HTML page of a recording.

The page carries plotly's JavaScript inline (from the installed package), so it opens with no
network at all: lap times, positions, gap to the leader, tyre strategy, the two fastest
drivers' fastest laps (speed, throttle, brake, delta) and the best sectors.
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from . import charts
from .session import Session, open_recording
from .sources import RecordingError


def two_fastest(session: Session) -> tuple | None:
    """The fastest lap of the fastest driver and of the next fastest driver, or None."""
    laps = session.laps
    valid = laps[~laps["Deleted"]]
    if valid.empty:
        return None
    best = valid.loc[valid.groupby("Driver")["LapTime"].idxmin()].sort_values("LapTime")
    if len(best) < 2:
        return None
    return best.iloc[0], best.iloc[1]


def build(session: Session) -> str:
    laps = session.laps
    sections: list[tuple[str, go.Figure | str]] = []
    if laps.empty:
        sections.append(("Laps", "<p class=note>This recording holds no completed laps.</p>"))
    else:
        sections += [
            ("Lap times", charts.lap_times(laps)),
            ("Positions", charts.positions(laps)),
            ("Gap to the leader", charts.gap_to_leader(laps)),
            ("Tyre strategy", charts.tyre_strategy(laps)),
        ]
        pair = two_fastest(session)
        if pair is None:
            sections.append(("Fastest laps", "<p class=note>Fewer than two drivers.</p>"))
        else:
            first, second = pair
            telemetry = [session.telemetry(lap) for lap in pair]
            if all(t["Speed"].notna().any() for t in telemetry):
                names = (
                    f"{first['Driver']} lap {first['LapNumber']}",
                    f"{second['Driver']} lap {second['LapNumber']}",
                )
                sections.append(("Fastest laps", charts.compare_figure(*telemetry, names)))
            else:
                sections.append(
                    (
                        "Fastest laps",
                        "<p class=note>No car telemetry in this recording "
                        "(live timing without car data): no traces to compare.</p>",
                    )
                )
        sections.append(("Sectors", charts.sectors(laps)))
    return _page(session, sections)


def _page(session: Session, sections: list[tuple[str, go.Figure | str]]) -> str:
    parts = []
    for title, body in sections:
        content = (
            body
            if isinstance(body, str)
            else body.to_html(full_html=False, include_plotlyjs=False, config={"responsive": True})
        )
        parts.append(f'<section class="chart"><h2>{html.escape(title)}</h2>{content}</section>')
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in session.warnings)
    warned = f"<ul class=warnings>{warnings}</ul>" if warnings else ""
    laps = session.laps
    summary = (
        f"{len(laps)} laps, {laps['Driver'].nunique()} drivers" if not laps.empty else "no laps"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Raceplane report: {html.escape(session.name)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:1rem 2rem;color:#222}"
        ".chart{margin:1.5rem 0}.note{color:#666}.warnings{color:#a40}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{html.escape(session.name)}</h1><p>{html.escape(session.kind)} recording, "
        f"{summary}</p>{warned}{''.join(parts)}</body></html>"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="raceplane report",
        description="Write one HTML page (works offline) of a recording's laps and telemetry.",
    )
    parser.add_argument(
        "files",
        nargs="+",
        type=Path,
        help="an XDF file or its parts, a capture, a live-timing file",
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("report.html"))
    args = parser.parse_args(argv)
    try:
        session = open_recording(*args.files)
        page = build(session)
    except RecordingError as error:
        print(f"raceplane report: {error}", file=sys.stderr)
        return 1
    args.output.write_text(page, encoding="utf-8")
    for warning in session.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {args.output} ({len(session.laps)} laps)")
    return 0

"""A session report as a league publishes it: CSV, a printable HTML page, plain text; and
`raceplane results [SESSION]`, which prints one (from the lap timer, or its database file).

The formats are plain functions of the report dict (docs/DESIGN.md), no I/O.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from html import escape
from typing import Any

from .laptime import format_lap_time

CSV_HEADER = [
    "position", "driver", "team", "race number", "status", "reason", "grid", "laps", "time",
    "penalties (s)", "gap", "laps led", "best lap", "best lap number", "pit stops", "stints",
    "penalties", "points",
]  # fmt: skip


def time_text(millis: int | None) -> str:
    """`1:23:45.678` / `23:45.678` for a race time, `''` for none."""
    if millis is None:
        return ""
    hours, rest = divmod(int(millis), 3_600_000)
    text = format_lap_time(rest)
    return f"{hours}:{text.zfill(9)}" if hours else text


def gap_text(row: dict[str, Any]) -> str:
    if row["gap_laps"]:
        return f"+{row['gap_laps']} lap{'s' if row['gap_laps'] > 1 else ''}"
    if row["gap_ms"] is None or row["position"] == 1:
        return ""
    return f"+{row['gap_ms'] / 1000:.3f}"


def status_text(row: dict[str, Any]) -> str:
    return f"{row['status']} ({row['reason']})" if row.get("reason") else row["status"]


def stints_text(row: dict[str, Any]) -> str:
    return " ".join(
        f"{s['visual'] or '?'}{'/' + s['compound'] if s['compound'] else ''} {s['laps']}L"
        for s in row["stints"]
    )


def stops_text(row: dict[str, Any]) -> str:
    return " ".join(
        f"L{s['lap']} {s['kind'].replace('_', ' ')} {s['pit_lane_ms'] / 1000:.1f}s"
        f"/{s['stationary_ms'] / 1000:.1f}s"
        for s in row["pit_stops"]
    )


def penalties_text(row: dict[str, Any]) -> str:
    return "; ".join(
        _penalty_text(p) for p in row["penalties"] if p["kind"] not in ("lap invalidated",)
    )


def _penalty_text(p: dict[str, Any]) -> str:
    if p["kind"] == "served":
        return f"L{p['lap']} {p['what']}"
    seconds = f" {p['time_s']}s" if p.get("time_s") else ""
    return f"L{p['lap']} {p['what']}{seconds} ({p['for']})"


def to_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row in report["classification"]:
        writer.writerow(
            [
                row["position"], row["driver"], row["team"], row["race_number"] or "",
                row["status"], row["reason"] or "", row["grid_position"] or "", row["laps"],
                time_text(row["total_time_ms"]), row["penalty_s"] or "", gap_text(row),
                row["laps_led"], format_lap_time(row["best_lap_ms"]),
                row["best_lap_number"] or "", stops_text(row), stints_text(row),
                penalties_text(row), row["points"],
            ]
        )  # fmt: skip
    return out.getvalue()


def heading(report: dict[str, Any]) -> str:
    laps = f", {report['total_laps']} laps" if report.get("total_laps") else ""
    state = "final" if report["final"] else "provisional"
    return f"{report['session_type']} at {report['track'] or 'unknown track'}{laps} ({state})"


def to_text(report: dict[str, Any]) -> str:
    lines = [heading(report), f"session {report['session_uid']}", ""]
    lines.append(
        f"{'pos':>3} {'driver':<22} {'status':<14} {'laps':>4} {'time':>12} {'gap':>10} "
        f"{'best':>9} {'led':>3} {'pts':>4}"
    )
    for row in report["classification"]:
        lines.append(
            f"{row['position']:>3} {row['driver'][:22]:<22} {status_text(row)[:14]:<14} "
            f"{row['laps']:>4} {time_text(row['total_time_ms']):>12} {gap_text(row):>10} "
            f"{format_lap_time(row['best_lap_ms']):>9} {row['laps_led']:>3} {row['points']:>4}"
        )
    fastest = report.get("fastest_lap")
    if fastest:
        lines += [
            "",
            f"fastest lap: {fastest['driver']} {format_lap_time(fastest['lap_time_ms'])} "
            f"(lap {fastest['lap']})",
        ]
    if report["grid"]:
        lines += [
            "",
            "grid: " + ", ".join(f"{g['position']} {g['driver']}" for g in report["grid"]),
        ]
    stops = [(row["driver"], stops_text(row)) for row in report["classification"]]
    if any(text for _, text in stops):
        lines += ["", "pit stops (pit lane / stationary):"]
        lines += [f"  {driver}: {text}" for driver, text in stops if text]
    if report["penalties"]:
        lines += ["", "penalties and warnings:"]
        lines += [f"  {p['driver']}: {_penalty_text(p)}" for p in report["penalties"]]
    return "\n".join(lines) + "\n"


def to_html(report: dict[str, Any]) -> str:
    """A standalone printable page (no scripts, no external files)."""
    e = escape
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{e(str(value))}</td>"
            for value in (
                row["position"],
                row["driver"],
                row["team"],
                status_text(row),
                row["grid_position"] or "",
                row["laps"],
                time_text(row["total_time_ms"]),
                f"+{row['penalty_s']}s" if row["penalty_s"] else "",
                gap_text(row),
                row["laps_led"],
                format_lap_time(row["best_lap_ms"]),
                stints_text(row),
                stops_text(row),
                row["points"],
            )
        )
        + "</tr>"
        for row in report["classification"]
    )
    penalties = "".join(
        f"<li>{e(p['driver'])}: {e(_penalty_text(p))}</li>" for p in report["penalties"]
    )
    grid = "".join(f"<li>{g['position']}. {e(g['driver'])}</li>" for g in report["grid"])
    fastest = report.get("fastest_lap")
    fastest_text = (
        f"<p>Fastest lap: {e(fastest['driver'])} {format_lap_time(fastest['lap_time_ms'])} "
        f"(lap {fastest['lap']})</p>"
        if fastest
        else ""
    )
    sectors = "".join(
        f"<li>S{s['sector']}: {e(s['driver'])} {s['time_ms'] / 1000:.3f}</li>"
        for s in report["best_sectors"]
        if s
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(heading(report))}</title>
<style>
body {{ font: 12px/1.4 system-ui, sans-serif; margin: 1.5em; color: #111; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ccc; padding: 2px 6px; text-align: left; }}
th {{ background: #eee; }}
@media print {{ body {{ margin: 0; }} }}
</style></head><body>
<h1>{e(heading(report))}</h1>
<p>Session {e(report["session_uid"])}</p>
<table><thead><tr><th>Pos</th><th>Driver</th><th>Team</th><th>Status</th><th>Grid</th>
<th>Laps</th><th>Time</th><th>Pen.</th><th>Gap</th><th>Led</th><th>Best</th><th>Stints</th>
<th>Pit stops (lane/stationary)</th><th>Pts</th></tr></thead>
<tbody>{rows}</tbody></table>
{fastest_text}
<h2>Best sectors</h2><ul>{sectors}</ul>
<h2>Starting grid</h2><ol class="grid">{grid}</ol>
<h2>Penalties and warnings</h2><ul>{penalties or "<li>none</li>"}</ul>
</body></html>
"""


FORMATS = {"text": to_text, "csv": to_csv, "html": to_html}


def main(argv: list[str] | None = None) -> int:
    """`raceplane results [SESSION]`: print a session report (the latest unless named)."""
    parser = argparse.ArgumentParser(
        prog="raceplane results",
        description="Print a session's results: grid, classification, stints, pit stops, "
        "penalties, points. From the lap timer's database (--db), else from the running lap "
        "timer (--lap-timer HOST:PORT).",
    )
    parser.add_argument("session", nargs="?", help="session uid (default: the latest)")
    parser.add_argument("--format", choices=[*FORMATS, "json"], default="text")
    parser.add_argument("--db", help="the lap timer's SQLite file (earlier sessions too)")
    parser.add_argument("--lap-timer", default="127.0.0.1:8103", help="HOST:PORT")
    parser.add_argument("--list", action="store_true", help="list the sessions with results")
    args = parser.parse_args(argv)
    try:
        report = _fetch(args)
    except (ValueError, OSError) as error:
        print(f"raceplane results: {error}", file=sys.stderr)
        return 1
    if args.list:
        for entry in report:
            state = "final" if entry["final"] else "provisional"
            print(f"{entry['session_uid']}  {entry['session_type']}  {entry['track']}  {state}")
    elif args.format == "json":
        print(json.dumps(report, indent=1))
    else:
        sys.stdout.write(FORMATS[args.format](report))
    return 0


def _fetch(args: argparse.Namespace) -> Any:
    if args.db:
        from .store import list_reports, read_report

        return list_reports(args.db) if args.list else read_report(args.db, args.session)
    from dareplane_utils.client.module_client import ModuleClient, ModuleError
    from modules.web_bridge.links import parse_address

    host, port = parse_address(args.lap_timer)
    try:
        with ModuleClient(host, port, timeout=10.0).connect() as client:
            if args.list:
                return client.request("LIST_REPORTS")
            return client.request(
                "GET_REPORT", {"session_uid": args.session} if args.session else None
            )
    except ModuleError as error:
        raise ValueError(error.error) from None
    except ConnectionError as error:
        raise ValueError(f"no lap timer at {host}:{port} ({error}); or give --db FILE") from None

"""Plain-text rendering of module status for a terminal (no I/O)."""

from __future__ import annotations

from typing import Any

_COLUMNS = (
    "module",
    "kind",
    "state",
    "up",
    "pid",
    "uptime",
    "cpu%",
    "mem MB",
    "restarts",
    "address",
    "note",
)


def status_row(status: dict[str, Any]) -> list[str]:
    return [
        status["key"],
        status["kind"],
        status["state"],
        "yes" if status["up"] else "no",
        _or_dash(status["pid"]),
        _duration(status["uptime_s"]),
        _or_dash(status["cpu_percent"], "{:.0f}"),
        _or_dash(status["memory_mb"], "{:.0f}"),
        str(status["restarts"]),
        status["address"],
        status["error"],
    ]


def render_table(statuses: list[dict[str, Any]]) -> str:
    rows = [list(_COLUMNS), *(status_row(status) for status in statuses)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def status_line(status: dict[str, Any]) -> str:
    """One line for a module whose state just changed, as `raceplane up` prints them."""
    pid = f" pid {status['pid']}" if status["pid"] else ""
    note = f"  ({status['error']})" if status["error"] else ""
    return f"  {status['key']:<20} {status['state']:<9}{pid}  {status['address']}{note}"


def _or_dash(value: Any, form: str = "{}") -> str:
    return "-" if value is None else form.format(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"

"""What the viewer shows, without I/O: which records pass the filters, and how a record reads."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

COLORS = {
    "DEBUG": "\x1b[2m",  # dim
    "INFO": "\x1b[32m",  # green
    "WARNING": "\x1b[33m",  # yellow
    "ERROR": "\x1b[31m",  # red
    "CRITICAL": "\x1b[1;41;97m",  # bold white on red
}
RESET = "\x1b[0m"
BOLD = "\x1b[1m"
# Shown on the record's line already, or machinery no person watching a session needs.
_HIDDEN = frozenset(
    [
        "timestamp",
        "name",
        "levelname",
        "message",
        "host",
        "process",
        "processName",
        "threadName",
        "module",
        "funcName",
        "lineno",
        "exc_info",
        "stack_info",
        "taskName",
    ]
)
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time (naive means UTC) or an age like `90s`, `10m`, `2h`, `1d`."""
    match = _RELATIVE.match(text.strip())
    if match:
        now = now or datetime.now(tz=UTC)
        return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use ISO 8601 or an age like 10m)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def level_number(name: str) -> int:
    number = logging.getLevelName(name.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown level {name!r} (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    return number


def record_time(record: dict[str, Any]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(record.get("timestamp")))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class RecordFilter:
    """A record passes when it matches every criterion given."""

    modules: list[str] = field(default_factory=list)  # logger names; "lap_timer" has children
    min_level: int = logging.NOTSET
    since: datetime | None = None
    until: datetime | None = None
    pattern: re.Pattern[str] | None = None  # searched in message and traceback

    def matches(self, record: dict[str, Any]) -> bool:
        if self.modules:
            name = str(record.get("name", ""))
            if not any(name == m or name.startswith(m + ".") for m in self.modules):
                return False
        if self.min_level:
            level = logging.getLevelName(str(record.get("levelname", "")).upper())
            if not isinstance(level, int) or level < self.min_level:
                return False
        if self.since or self.until:
            moment = record_time(record)
            if moment is None:
                return False
            if (self.since and moment < self.since) or (self.until and moment > self.until):
                return False
        if self.pattern is not None:
            text = f"{record.get('message', '')}\n{record.get('exc_info') or ''}"
            if not self.pattern.search(text):
                return False
        return True


def render(record: dict[str, Any], color: bool) -> str:
    """One line per record (local time, level, module[pid]@host, message, extras), then the
    traceback whole, indented."""
    moment = record_time(record)
    clock = moment.astimezone().strftime("%H:%M:%S.%f")[:-3] if moment else "??:??:??.???"
    level = str(record.get("levelname", "?"))
    where = f"{record.get('name', '?')}[{record.get('process', '?')}]"
    if record.get("host"):
        where += f"@{record['host']}"
    extras = " ".join(f"{key}={value}" for key, value in record.items() if key not in _HIDDEN)
    message = str(record.get("message", ""))
    lines = [f"{clock} {level:<8} {where}: {message}" + (f"  {extras}" if extras else "")]
    for key in ("exc_info", "stack_info"):
        if record.get(key):
            lines += ["    " + line for line in str(record[key]).splitlines()]
    if color:
        paint = COLORS.get(level.upper(), "")
        lines[0] = (
            f"{clock} {paint}{level:<8}{RESET} {BOLD}{where}{RESET}: "
            + (f"{paint}{message}{RESET}" if level.upper() != "INFO" else message)
            + (f"  \x1b[2m{extras}{RESET}" if extras else "")
        )
        lines[1:] = [f"{COLORS['ERROR']}{line}{RESET}" for line in lines[1:]]
    return "\n".join(lines)

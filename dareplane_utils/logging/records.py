"""What a log record is in Raceplane, and how any record that arrives becomes one (no I/O).

A record is a JSON object with python-json-logger's field names: `timestamp` (ISO 8601, UTC),
`name` (the module's logger), `levelname`, `message` (formatted), `host`, `process`,
`processName`, `threadName`, `module`, `funcName`, `lineno`, `exc_info` (the traceback text,
when there is one), `stack_info`, plus every `extra=` field. Our sender writes exactly that.
dareplane-utils' socket handler sends a LogRecord's raw attributes instead (`msg` unformatted
with `args`, `created` as epoch seconds, and after its str() fallback every non-int as text);
`normalize` turns those into the same shape.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import socket
import time
from datetime import UTC, datetime
from typing import Any

# Fields every record carries (besides timestamp, host, extras and tracebacks), in file order.
FORMAT_FIELDS = (
    "name",
    "levelname",
    "message",
    "process",
    "processName",
    "threadName",
    "module",
    "funcName",
    "lineno",
)
REQUIRED = frozenset(("timestamp", "name", "levelname", "message", "host"))
# Attributes of a LogRecord itself, so anything else in a raw record is an `extra=` field.
LOGRECORD_ATTRS = frozenset(
    [*logging.makeLogRecord({}).__dict__, "message", "asctime", "taskName", "host", "timestamp"]
)
# dareplane-utils' fallback turns None into the text "None".
_NONE_TEXTS = (None, "None", "")
# A conversion like "%99999999s" would make the server build a huge string for one record.
_HUGE_WIDTH = re.compile(r"%[-#0 +]*(?:\*|\d{5,})|%[-#0 +]*\d*\.(?:\*|\d{5,})")

HOST = socket.gethostname()


def iso_utc(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).isoformat()


def format_message(msg: Any, args: Any) -> tuple[str, str | None]:
    """`msg % args` the way LogRecord.getMessage does; on failure keep both, and say why."""
    text = msg if isinstance(msg, str) else str(msg)
    args = _decode_args(args)
    if not args:
        return text, None
    if _HUGE_WIDTH.search(text):
        return f"{text} {args!r}", "format string asks for a huge field width"
    try:
        return text % args, None
    except Exception as error:  # a record must survive any mismatch of msg and args
        return f"{text} {args!r}", f"{type(error).__name__}: {error}"


def _decode_args(args: Any) -> Any:
    if isinstance(args, list):
        return tuple(args)
    if isinstance(args, str):
        # The handler's str() fallback sends repr(tuple); literal_eval evaluates no code.
        if args in ("()", "None", ""):
            return ()
        try:
            value = ast.literal_eval(args)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return (args,)
        return value if isinstance(value, tuple | dict) else (value,)
    if args is None:
        return ()
    return args


def normalize(obj: dict[str, Any], peer_host: str | None = None) -> dict[str, Any]:
    """A record in Raceplane's shape, from whatever object arrived on the wire."""
    if "msg" in obj or "message" not in obj:
        record = _from_raw_logrecord(obj)
    else:
        record = dict(obj)
        record["message"] = str(record["message"])
    record.setdefault("timestamp", iso_utc(time.time()))
    record.setdefault("name", "unknown")
    record.setdefault("levelname", "INFO")
    if record.get("host") in _NONE_TEXTS:
        record["host"] = peer_host or "unknown"
    return record


def _from_raw_logrecord(obj: dict[str, Any]) -> dict[str, Any]:
    message, error = format_message(obj.get("msg", ""), obj.get("args"))
    record: dict[str, Any] = {"timestamp": _timestamp(obj.get("created"))}
    for field in FORMAT_FIELDS:
        record[field] = obj.get(field)
    record["message"] = message
    if record["levelname"] in _NONE_TEXTS:
        level = int(_number(obj.get("levelno"), logging.INFO))
        record["levelname"] = logging.getLevelName(level)
    record["host"] = obj.get("host")
    if error is not None:
        record["format_error"] = error
        record["msg"], record["args"] = obj.get("msg"), obj.get("args")
    traceback = _text(obj.get("exc_text")) or _text(obj.get("exc_info"))
    if traceback:
        record["exc_info"] = traceback
    stack = _text(obj.get("stack_info"))
    if stack:
        record["stack_info"] = stack
    for key, value in obj.items():
        if key not in LOGRECORD_ATTRS:
            record[key] = value
    if record["timestamp"] is None:  # no usable time: the arrival time, and the raw value kept
        record["timestamp"], record["created"] = iso_utc(time.time()), obj.get("created")
    return record


def _timestamp(created: Any) -> str | None:
    """ISO 8601 of an epoch `created`; now if there is none; None if it is not a time (NaN,
    infinite, or outside the years 1-9999)."""
    try:
        return iso_utc(_number(created, time.time()))
    except (OverflowError, OSError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return None if value in _NONE_TEXTS else str(value)


def _number(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


_TRACEBACKS = logging.Formatter()


def snapshot(record: logging.LogRecord) -> dict[str, Any]:
    """A LogRecord's attributes as they are now, for another thread to render later: the
    message formatted (args may change once the logging call returns) and the traceback as
    text. A msg % args that fails still gives a record, saying why in `format_error`."""
    attributes = record.__dict__.copy()  # a dict copy is the cheapest snapshot
    try:
        attributes["msg"] = record.getMessage()
    except Exception as error:
        attributes["msg"] = f"{record.msg!r} % {record.args!r}"
        attributes["format_error"] = f"{type(error).__name__}: {error}"
    attributes["args"] = None
    if record.exc_info:
        text = record.exc_text or _TRACEBACKS.formatException(record.exc_info)
        attributes["exc_text"], attributes["exc_info"] = text, None
    return attributes


def revive(attributes: dict[str, Any]) -> logging.LogRecord:
    """A LogRecord again from snapshot()'s attributes (they are all there)."""
    record = logging.LogRecord.__new__(logging.LogRecord)
    record.__dict__ = attributes
    return record


def to_line(record: dict[str, Any]) -> bytes:
    """One JSON Lines line (json.dumps never emits a raw newline)."""
    return json.dumps(record, ensure_ascii=False, default=str).encode() + b"\n"


def local_record(name: str, levelname: str, message: str, **extra: Any) -> dict[str, Any]:
    """A record made by a Raceplane process about itself (the log server, a sender's drops)."""
    return {
        "timestamp": iso_utc(time.time()),
        "name": name,
        "levelname": levelname,
        "message": message,
        "host": HOST,
        "process": os.getpid(),
        **extra,
    }

"""`raceplane logs` / `python -m dareplane_utils.logging.viewer`: read or follow the log.

raceplane logs -f                       follow the log server live (last 20 records first)
raceplane logs logs/raceplane.jsonl     read a file (the server's default file if none given)
raceplane logs -f --module lap_timer --level warning --grep 'lap \\d+'
raceplane logs --since 10m --json | jq .message
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from dareplane_utils.logging.display import RecordFilter, level_number, parse_time, render
from dareplane_utils.logging.framing import encode_frame
from dareplane_utils.logging.logfile import DEFAULT_LOGFILE
from dareplane_utils.logging.server import BACKLOG_RECORDS, DEFAULT_PORT

_RETRY_S = 1.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raceplane logs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", type=Path, help=f"JSON Lines files ({DEFAULT_LOGFILE})")
    parser.add_argument("-f", "--follow", action="store_true", help="follow the log server live")
    parser.add_argument(
        "--host",
        default=os.environ.get("RACEPLANE_LOG_HOST", "127.0.0.1"),
        help="log server (env RACEPLANE_LOG_HOST)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("RACEPLANE_LOG_PORT", DEFAULT_PORT)),
        help="log server port (env RACEPLANE_LOG_PORT)",
    )
    parser.add_argument(
        "-n", "--lines", type=int, default=None, help="only the last N records (-f: 20)"
    )
    parser.add_argument(
        "-m", "--module", action="append", default=[], help="logger name (repeatable)"
    )
    parser.add_argument("-l", "--level", type=level_number, default=0, help="minimum level")
    parser.add_argument("--since", type=parse_time, help="ISO time or age (10m, 2h)")
    parser.add_argument("--until", type=parse_time, help="ISO time or age")
    parser.add_argument("-g", "--grep", type=re.compile, help="regex on message and traceback")
    parser.add_argument("--json", action="store_true", help="print the records as JSON Lines")
    colors = parser.add_mutually_exclusive_group()
    colors.add_argument("--color", action="store_true", default=None, help="always colour")
    colors.add_argument("--no-color", dest="color", action="store_false", help="never colour")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.follow and args.files:
        parser.error("give FILEs to read or -f to follow the server, not both")
    record_filter = RecordFilter(args.module, args.level, args.since, args.until, args.grep)
    color = args.color
    if color is None:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    printer = _Printer(record_filter, args.json, color, sys.stdout)
    try:
        if args.follow:
            backlog = 20 if args.lines is None else args.lines
            follow(args.host, args.port, backlog, printer)
            return 0
        return read_files(args.files or [DEFAULT_LOGFILE], args.lines, printer)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `| head` closed the pipe: that is a normal way to stop
        sys.stdout = None  # type: ignore[assignment]
        return 0


class _Printer:
    def __init__(self, record_filter: RecordFilter, as_json: bool, color: bool, out: TextIO):
        self.filter = record_filter
        self.as_json = as_json
        self.color = color
        self.out = out

    def accepts(self, line: str, origin: str) -> dict | None:
        """The record on `line` if it passes the filters; complains about lines that are not."""
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            if line.strip():
                print(f"{origin}: not a JSON record, skipped", file=sys.stderr)
            return None
        return record if self.filter.matches(record) else None

    def show(self, line: str, record: dict) -> None:
        self.out.write(line.rstrip("\n") if self.as_json else render(record, self.color))
        self.out.write("\n")


def read_files(paths: Iterable[Path], last: int | None, printer: _Printer) -> int:
    shown: deque[tuple[str, dict]] | None = deque(maxlen=last) if last is not None else None
    for path in paths:
        try:
            handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
        except OSError as error:
            print(f"raceplane logs: cannot read {path}: {error.strerror}", file=sys.stderr)
            return 1
        with handle:
            for number, line in enumerate(handle, 1):
                record = printer.accepts(line, f"{path}:{number}")
                if record is None:
                    continue
                if shown is None:
                    printer.show(line, record)
                else:
                    shown.append((line, record))
    for line, record in shown or ():
        printer.show(line, record)
    return 0


def follow(host: str, port: int, backlog: int, printer: _Printer) -> None:
    """Print the server's records as they come; wait for it, and reconnect, as needed."""
    hello = {"raceplane": "follow", "backlog": backlog}
    waiting_said = False
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=2.0)
        except OSError:
            if not waiting_said:
                print(f"(waiting for the log server at {host}:{port})", file=sys.stderr)
                waiting_said = True
            time.sleep(_RETRY_S)
            continue
        waiting_said = False
        with sock, sock.makefile("r", encoding="utf-8", errors="replace") as reader:
            try:
                sock.sendall(encode_frame(hello))
                sock.settimeout(None)
                for line in reader:
                    record = printer.accepts(line, f"{host}:{port}")
                    if record is not None:
                        printer.show(line, record)
                        printer.out.flush()
            except ConnectionError:
                pass
        print(f"(log server at {host}:{port} went away; reconnecting)", file=sys.stderr)
        waiting_said = True
        # A restarted server holds only records this viewer has not seen: ask for all of them.
        hello = {"raceplane": "follow", "backlog": BACKLOG_RECORDS}


if __name__ == "__main__":
    sys.exit(main())

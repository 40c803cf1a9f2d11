"""`raceplane record` and `raceplane inspect`: the recorder for a person at a terminal."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from modules.recorder.engine import Recorder, RecorderSettings
from modules.recorder.loader import load
from modules.recorder.xdf import XdfError


def record_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="raceplane record",
        description=(
            "Record LSL streams to an XDF file until Ctrl-C, --duration, or --idle-timeout "
            "without data."
        ),
    )
    parser.add_argument("file", type=Path, help="XDF file to write")
    parser.add_argument(
        "--streams",
        action="append",
        metavar="PATTERN",
        help="stream name glob (repeatable; default raceplane.*)",
    )
    parser.add_argument(
        "--append", action="store_true", help="continue an existing file instead of replacing it"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=0.0,
        metavar="S",
        help="record for S seconds, then stop",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=0.0,
        metavar="S",
        help="stop after S seconds without new data, once data has arrived",
    )
    # The old spelling, which read as a duration; kept so existing scripts work.
    parser.add_argument("--timeout", dest="idle_timeout", type=float, help=argparse.SUPPRESS)
    parser.add_argument(
        "--rotate-seconds", type=float, default=0.0, help="start a new file after this long"
    )
    parser.add_argument(
        "--rotate-mb", type=float, default=0.0, help="start a new file after this many MB"
    )
    args = parser.parse_args(argv)
    settings = RecorderSettings(
        patterns=args.streams or ["raceplane.*"],
        rotate_seconds=args.rotate_seconds,
        rotate_bytes=int(args.rotate_mb * 1e6),
    )
    recorder = Recorder(settings)
    try:
        recorder.record(str(args.file.resolve()), append=args.append)
    except ValueError as error:
        print(f"raceplane record: {error}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _interrupt)
    interactive = sys.stdout.isatty()
    started = time.monotonic()
    last_samples, last_data = 0, started
    try:
        while True:
            time.sleep(0.5)
            status = recorder.status()
            now = time.monotonic()
            if status["samples"] != last_samples:
                last_samples, last_data = status["samples"], now
            print(progress(status), end="\r" if interactive else "\n", flush=True)
            if status["error"] or not status["recording"]:
                break
            if args.duration and now - started >= args.duration:
                print(f"\nrecorded for {args.duration:g} s; stopping", flush=True)
                break
            if args.idle_timeout and last_samples and now - last_data >= args.idle_timeout:
                print(f"\nno data for {args.idle_timeout:g} s; stopping", flush=True)
                break
    except KeyboardInterrupt:
        pass
    status = recorder.stop_record()
    print(f"\n{progress(status)}; files: {', '.join(status['files'])}", flush=True)
    for message in status["errors"]:
        print(f"warning: {message}", file=sys.stderr)
    if status["error"]:
        print(f"raceplane record: {status['error']}", file=sys.stderr)
        return 1
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM ends a recording as cleanly as Ctrl-C does."""
    raise KeyboardInterrupt


def progress(status: dict[str, Any]) -> str:
    return (
        f"{status['duration_s']:8.1f} s  {status['samples']:>12,} samples  "
        f"{status['bytes'] / 1e6:9.2f} MB  {len(status['streams'])} streams"
    )


def inspect_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="raceplane inspect",
        description="Print the streams of XDF files (several files: joined, in the order given).",
    )
    parser.add_argument("files", type=Path, nargs="+", help="XDF files, in chronological order")
    args = parser.parse_args(argv)
    try:
        recording = load(*args.files)
    except (OSError, XdfError) as error:
        print(f"raceplane inspect: {error}", file=sys.stderr)
        return 1
    rows = [["name", "type", "channels", "format", "samples", "duration_s", "rate_hz"]]
    for stream in recording.streams:
        stamps = stream.time_stamps
        duration = float(stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
        rate = (len(stamps) - 1) / duration if duration > 0 else 0.0
        rows.append(
            [
                stream.name,
                stream.stream_type,
                str(stream.layout.channel_count),
                stream.layout.channel_format,
                str(len(stamps)),
                f"{duration:.3f}",
                f"{rate:.2f}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            print("  ".join("-" * w for w in widths))
    for key, value in recording.session.items():
        print(f"session {key}: {value if len(value) < 200 else value[:200] + '...'}")
    for warning in recording.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0

"""`raceplane livetiming`: record the official F1 live timing feed in FastF1's file format, and
replay such files onto Raceplane's streams (the command a person types; the supervised module
is `python -m modules.livetiming`).

    raceplane livetiming save FILE [--append] [--timeout S] [--publish]
    raceplane livetiming replay FILE... [--speed N | --flat-out [--no-ack]] [--ack HOST:PORT]

Flat out sends as fast as the slowest consumer takes the samples and ends when the consumers
have applied everything: those named with --ack, else the lap timers of the stack whose control
room answers at --control-room (raceplane up's, 127.0.0.1:8100); with neither, as fast as
publishing goes (said on stderr).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dareplane_utils.logging.logger import get_logger
from dareplane_utils.module_cli import ConfigError, load_toml
from modules.acknowledge import CONTROL_ROOM, AcknowledgementError, flat_out_consumers

from .client import ClientOptions, add_connection_options
from .publish import Publisher
from .replay import ACK_READERS_S, ACK_WINDOW, replay
from .saving import READ_STREAMS, Saver, save_to, wait_for_readers
from .topics import TOPICS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raceplane livetiming",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="TOML defaults ([save] / [replay] tables)")
    parser.add_argument("--log-host", default=os.environ.get("RACEPLANE_LOG_HOST", "127.0.0.1"))
    parser.add_argument(
        "--log-port", type=int, default=int(os.environ.get("RACEPLANE_LOG_PORT", "9020"))
    )
    sub = parser.add_subparsers(dest="command", required=True)

    save = sub.add_parser("save", help="record the live feed into FILE (FastF1's format)")
    save.add_argument("file", type=Path)
    save.add_argument("--append", action="store_true", help="append to FILE instead of replacing")
    save.add_argument(
        "--timeout", type=float, default=60.0, help="exit after S seconds without data (0: never)"
    )
    add_connection_options(save)
    save.add_argument("--topics", nargs="+", default=list(TOPICS), metavar="TOPIC")
    save.add_argument("--publish", action="store_true", help="also publish on raceplane.* streams")
    save.add_argument(
        "--wait-s",
        type=float,
        default=0.0,
        help="with --publish: first wait up to S s for readers of the lap timer's streams",
    )

    rep = sub.add_parser("replay", help="publish saved files on raceplane.* streams")
    rep.add_argument("files", type=Path, nargs="+", help="one session's files, any order")
    rep.add_argument("--speed", type=float, default=1.0, help="N times as fast as recorded")
    rep.add_argument(
        "--flat-out",
        action="store_true",
        help="as fast as the consumers (--ack, else the stack's lap timers) take it",
    )
    rep.add_argument(
        "--wait-s",
        type=float,
        default=0.0,
        help="first wait up to S s for readers of the lap timer's streams",
    )
    rep.add_argument(
        "--linger-s", type=float, default=1.0, help="keep the streams open S s after the end"
    )
    rep.add_argument(
        "--ack",
        metavar="HOST:PORT",
        action="append",
        help="a consumer reporting STATUS inputs.applied (the lap timer's command port): stay "
        "at most a window ahead of it and end when it has applied everything (repeatable)",
    )
    rep.add_argument(
        "--control-room",
        metavar="HOST:PORT",
        default=CONTROL_ROOM,
        help="flat out without --ack: acknowledge the lap timers of the stack run from here",
    )
    rep.add_argument(
        "--no-ack", action="store_true", help="flat out without waiting for any consumer"
    )
    for command in (save, rep):
        command.add_argument(
            "--delay", type=float, default=0.0, help="broadcast delay: publish everything S s late"
        )
    return parser


def _apply_config(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.config is None:
        return args
    try:
        table = load_toml(args.config)
    except ConfigError as error:
        parser.error(str(error))
    section = table.get(args.command, {})
    settings = {k.replace("-", "_"): v for k, v in section.items()}
    unknown = sorted(set(settings) - set(vars(args)))
    if unknown:
        parser.error(f"{args.config}: [{args.command}] unknown option(s) {', '.join(unknown)}")
    typed = set(argv)
    for key, value in settings.items():
        if f"--{key.replace('_', '-')}" not in typed:
            setattr(args, key, value)
    return args


def _stop_on_signals(stop: Any) -> None:
    def handler(signum: int, frame: Any) -> None:
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def save(args: argparse.Namespace, logger: logging.Logger) -> int:
    try:
        writer = save_to(args.file, args.append)
    except ValueError as error:
        print(f"raceplane livetiming: {error}", file=sys.stderr)
        return 1
    options = ClientOptions(
        url=args.url,
        topics=tuple(args.topics),
        access_token=args.token or None,
        backoff_s=args.backoff_s,
        backoff_max_s=args.backoff_max_s,
        server_timeout_s=args.server_timeout_s,
        ping_interval_s=args.ping_interval_s,
        rollover_s=args.rollover_min * 60.0,
        idle_timeout_s=args.timeout,
    )
    publisher = Publisher(delay_s=args.delay) if args.publish else None
    saver = Saver(writer, options, logger, publisher, args.wait_s)
    _stop_on_signals(saver.stop)
    summary = saver.summary(saver.run())
    if publisher is not None:
        while publisher.held():
            time.sleep(0.05)  # what the delay still holds goes out before the streams close
        publisher.close()
    print(summary)
    if saver.writer.lines:
        return 0
    stats = saver.client.stats
    why = (
        f"could not reach the feed at {args.url}: {stats.last_error or 'no answer'}"
        if not stats.connections
        else "the feed sent nothing"
    )
    print(f"raceplane livetiming: saved nothing; {why}", file=sys.stderr)
    return 1


def run_replay(args: argparse.Namespace, logger: logging.Logger) -> int:
    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        print(f"raceplane livetiming: no such file: {', '.join(missing)}", file=sys.stderr)
        return 1
    if not args.flat_out and args.speed <= 0:
        print("raceplane livetiming: --speed must be > 0", file=sys.stderr)
        return 2
    publisher = Publisher(
        f"replay:{os.getpid()}", delay_s=args.delay
    )  # the bridge shows a replay when asked
    stop = threading.Event()
    _stop_on_signals(stop.set)
    consumer = None
    named = [args.ack] if isinstance(args.ack, str) else args.ack  # a config file gives one
    try:
        if named or (args.flat_out and not args.no_ack):
            consumer = flat_out_consumers(
                named,
                args.control_room,
                ACK_WINDOW,
                stop,
                READ_STREAMS,
                note=lambda text: print(f"raceplane livetiming: {text}", file=sys.stderr),
            )
        wait_for_readers(publisher, args.wait_s, logger, stop)
        if consumer is not None:
            for name in READ_STREAMS:  # open, so the consumer can find them
                publisher.outlet(name)
            unread = consumer.wait_for_readers(args.wait_s or ACK_READERS_S)
            if unread:
                logger.warning("%s does not read %s", consumer.address, ", ".join(unread))
        report = replay(
            args.files, publisher.publish, logger, args.speed, args.flat_out, stop, ack=consumer
        )
    except (ValueError, AcknowledgementError) as error:
        print(f"raceplane livetiming: {error}", file=sys.stderr)
        return 1
    finally:
        if consumer is not None:
            consumer.close()
    while publisher.held() and not stop.is_set():
        stop.wait(0.05)  # what the delay still holds goes out before the streams close
    if consumer is None:
        stop.wait(args.linger_s)
    publisher.close()
    for file in report.files:
        line = f"{file.path}: {file.kept} of {file.lines} lines replayed"
        if file.overlapping:
            line += f", {file.overlapping} overlapping earlier files"
        if file.bad_lines:
            line += f", {file.bad_lines} unreadable (first: {file.first_error})"
        print(line)
    print(
        f"{report.messages} messages -> {report.samples} samples, {report.refused} refused"
        + (" (stopped)" if report.stopped else "")
        + (f", all applied by {consumer.address}" if consumer and not report.stopped else "")
    )
    unreadable = [file for file in report.files if file.bad_lines == file.lines]
    for file in unreadable:
        print(
            f"raceplane livetiming: {file.path} is not live timing data"
            + (f" (first line: {file.first_error})" if file.lines else " (empty)"),
            file=sys.stderr,
        )
    return 1 if unreadable else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _apply_config(build_parser(), argv)
    logger = get_logger("livetiming", log_host=args.log_host, log_port=args.log_port)
    if args.command == "save":
        return save(args, logger)
    return run_replay(args, logger)


if __name__ == "__main__":
    sys.exit(main())

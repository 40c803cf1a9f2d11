"""The lap timer: laps, sectors, standings and points from the decoder's streams, plus a
manual lap board; every lap kept in SQLite. Commands: ADD_LAP, DELETE_LAP, SET_TRACK, GET_TRACK,
GET_STANDINGS, GET_LAPS, EXPORT, RESET, STATUS."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from dareplane_utils.default_server.server import DefaultServer
from dareplane_utils.logging.logger import get_logger
from dareplane_utils.module_cli import module_parser, parse_module_args

from .feed import Feed, Outputs
from .points import RACE, SPRINT, PointsRules
from .store import Store
from .timer import LapTimer


def custom_table(text: str) -> tuple[str, list[int]]:
    """`league=10,8,6` -> ("league", [10, 8, 6])."""
    name, sep, values = text.partition("=")
    try:
        points = [int(v) for v in values.split(",")] if sep and values.strip() else []
    except ValueError:
        points = []
    if not name.strip() or not points or any(p < 0 for p in points):
        raise argparse.ArgumentTypeError(f"{text!r}: give a table as NAME=P1,P2,... (integers)")
    return name.strip(), points


def main(argv: list[str] | None = None) -> int:
    parser = module_parser("lap_timer", 8103, __doc__)
    parser.add_argument("--db", type=Path, default=Path("lap_timer.sqlite3"), help="SQLite file")
    parser.add_argument(
        "--points-table", default="race", help="table for race sessions: race, sprint or custom"
    )
    parser.add_argument(
        "--custom-points",
        type=custom_table,
        action="append",
        default=[],
        metavar="NAME=P1,P2,...",
        help="a league's own points table (repeatable)",
    )
    parser.add_argument(
        "--fastest-lap-point",
        choices=("auto", "on", "off"),
        default="auto",
        help="the point for the fastest lap in the top 10 (auto: games of 2019-2024)",
    )
    args = parse_module_args(parser, argv)
    try:
        # A TOML list arrives unparsed as the default; parse it like the command line would.
        tables = dict(custom_table(t) if isinstance(t, str) else t for t in args.custom_points)
        rules = PointsRules(
            tables={"race": RACE, "sprint": SPRINT, **tables},
            table=args.points_table,
            fastest_lap_point=args.fastest_lap_point,
        )
    except (ValueError, argparse.ArgumentTypeError) as error:
        parser.error(str(error))
    try:
        store = Store(args.db)
    except (sqlite3.Error, OSError) as error:
        parser.error(f"cannot open the lap database {args.db}: {error}")
    logger = get_logger("lap_timer", log_host=args.log_host, log_port=args.log_port)
    outputs = Outputs(f"lap_timer:{args.port}")
    timer = LapTimer(store, rules, outputs.publish_lap, outputs.publish_standings)
    feed = Feed(timer, logger)
    commands = timer.commands()
    commands["STATUS"] = lambda: {**timer.status(), "inputs": feed.status()}
    server = DefaultServer(
        port=args.port, ip=args.host, pcommand_map=commands, name="lap_timer", logger=logger
    )
    server.init_server()
    feed.start()
    logger.info("lap timer on %s:%d, database %s", args.host, args.port, args.db)
    try:
        server.start_listening()
    finally:
        feed.stop()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

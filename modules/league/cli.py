"""`raceplane league ...`: check a league file, attach sessions to rounds, enter stewards'
decisions, print the standings.

    raceplane league check LEAGUE.toml
    raceplane league attach LEAGUE.toml ROUND SESSION [--kind race|sprint|qualifying] --db LAPS
    raceplane league decide LEAGUE.toml ROUND DRIVER (--time-penalty S | --positions N |
                            --points N | --dsq) --by WHO --why TEXT [--session UID]
    raceplane league decisions LEAGUE.toml
    raceplane league standings LEAGUE.toml [--db LAPS] [--format text|csv|json]

The league's own database (attached reports, decisions) is LEAGUE.sqlite3 beside the file
unless --league-db says otherwise. LAPS is the lap timer's database (reports of its sessions).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from modules.lap_timer.store import read_report

from .config import League, load_league
from .standings import Attached, Decision, standings
from .store import LeagueStore


def league_db(args: argparse.Namespace) -> Path:
    return Path(args.league_db) if args.league_db else Path(args.league).with_suffix(".sqlite3")


def compute(league: League, store: LeagueStore, laps_db: str | None) -> dict[str, Any]:
    """Standings over the sessions the file lists (from the lap timer's database) and those
    attached by command."""
    attached = list(store.attached())
    for round_ in league.rounds:
        for ref in round_.sessions:
            if laps_db is None:
                raise ValueError(
                    f"round {round_.name!r} lists session {ref.uid}: give the lap timer's --db"
                )
            attached.append(Attached(round_.name, ref.kind, read_report(laps_db, ref.uid)))
    return standings(league, attached, store.decisions())


def text_table(table: dict[str, Any]) -> str:
    held = table["rounds_held"]
    lines = [f"{table['league']}: after {len(held)} of {len(table['rounds'])} rounds", ""]
    lines.append(f"{'pos':>3} {'driver':<22} {'pts':>5}  " + " ".join(f"{r[:8]:>8}" for r in held))
    for row in table["drivers"]:
        cells = " ".join(
            f"{('(' + str(row['rounds'][r]) + ')') if r in row['dropped'] else row['rounds'][r]:>8}"
            for r in held
        )
        deducted = f"  -{row['deducted']} deducted" if row["deducted"] else ""
        lines.append(
            f"{row['position']:>3} {row['driver'][:22]:<22} {row['points']:>5}  {cells}{deducted}"
        )
    if table["teams"]:
        lines += ["", "teams:"]
        lines += [f"{t['position']:>3} {t['team']:<22} {t['points']:>5}" for t in table["teams"]]
    return "\n".join(lines) + "\n"


def csv_table(table: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["position", "driver", "team", "points", *table["rounds_held"], "dropped", "deducted"]
    )
    for row in table["drivers"]:
        writer.writerow(
            [row["position"], row["driver"], row["team"], row["points"],
             *(row["rounds"][r] for r in table["rounds_held"]), " ".join(row["dropped"]),
             row["deducted"]]
        )  # fmt: skip
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="raceplane league", description=__doc__.split("\n")[0])
    parser.add_argument("--league-db", help="the league's database (default: beside the file)")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a league file")
    check.add_argument("league")
    attach = commands.add_parser("attach", help="attach a finished session to a round")
    attach.add_argument("league")
    attach.add_argument("round")
    attach.add_argument("session")
    attach.add_argument("--kind", choices=("race", "sprint", "qualifying"), default="race")
    attach.add_argument("--db", required=True, help="the lap timer's database")
    attach.add_argument("--by", default="admin", help="who attached it")
    decide = commands.add_parser("decide", help="a stewards' decision on a round's session")
    decide.add_argument("league")
    decide.add_argument("round")
    decide.add_argument("driver")
    what = decide.add_mutually_exclusive_group(required=True)
    what.add_argument("--time-penalty", type=int, metavar="S", help="seconds added")
    what.add_argument("--positions", type=int, metavar="N", help="places dropped")
    what.add_argument("--points", type=int, metavar="N", help="championship points deducted")
    what.add_argument("--dsq", action="store_true", help="disqualified from the session")
    decide.add_argument("--by", required=True, help="who decided")
    decide.add_argument("--why", required=True, help="what for")
    decide.add_argument("--session", default="", help="the session (if the round has several)")
    listing = commands.add_parser("decisions", help="the stewards' decisions")
    listing.add_argument("league")
    table = commands.add_parser("standings", help="driver and team standings")
    table.add_argument("league")
    table.add_argument("--db", help="the lap timer's database (for sessions the file lists)")
    table.add_argument("--format", choices=("text", "csv", "json"), default="text")
    args = parser.parse_args(argv)
    try:
        league = load_league(args.league)  # nothing below runs, or is stored, if it is wrong
        if args.command == "check":
            print(f"{args.league}: league {league.name!r}, {len(league.rounds)} rounds, "
                  f"{len(league.drivers)} drivers: ok")  # fmt: skip
            return 0
        store = LeagueStore(league_db(args))
        try:
            return _run(args, league, store)
        finally:
            store.close()
    except ValueError as error:
        print(f"raceplane league: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, league: League, store: LeagueStore) -> int:
    if args.command == "attach":
        report = read_report(args.db, args.session)
        store.attach(league, args.round, args.kind, report, args.by)
        print(f"session {args.session} attached to {args.round!r} as {args.kind}")
    elif args.command == "decide":
        kind, value = (
            ("time_penalty", args.time_penalty) if args.time_penalty is not None
            else ("positions", args.positions) if args.positions is not None
            else ("points", args.points) if args.points is not None
            else ("dsq", 1)
        )  # fmt: skip
        decision = store.decide(
            league,
            Decision(args.round, args.session, args.driver, kind, value, args.by, "", args.why),
        )
        print(json.dumps(asdict(decision)))
    elif args.command == "decisions":
        for decision in store.decisions():
            print(json.dumps(asdict(decision)))
    else:
        result = compute(league, store, args.db)
        if args.format == "json":
            print(json.dumps(result, indent=1))
        else:
            sys.stdout.write(csv_table(result) if args.format == "csv" else text_table(result))
    return 0

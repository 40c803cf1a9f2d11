"""The game simulator: plays the F1 game, sending its UDP telemetry for a simulated session.

Commands (DefaultServer, port 8101): START {session options}, RESTART {session options}, STOP,
STATUS, TRUTH {session_uid?}, REPLAY {path, speed, flat_out}. The options below are START's
defaults; --autostart starts a session at launch, --replay FILE replays a capture at launch.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from dareplane_utils.default_server.server import DefaultServer
from dareplane_utils.logging.logger import get_logger
from dareplane_utils.module_cli import module_parser, parse_module_args
from modules.game_sim.control import GameSim, Settings
from modules.game_sim.race import SESSION_TYPES
from modules.game_sim.tracks import TRACKS


def build_parser() -> argparse.ArgumentParser:
    parser = module_parser("game_sim", 8101, __doc__)
    defaults = Settings()
    parser.add_argument("--session", choices=sorted(SESSION_TYPES), default=defaults.session)
    parser.add_argument("--track", choices=sorted(TRACKS), default=defaults.track)
    parser.add_argument(
        "--laps", type=int, default=defaults.laps, help="race laps (flying laps in qualifying)"
    )
    parser.add_argument("--cars", type=int, choices=(20, 22), default=defaults.cars)
    parser.add_argument(
        "--rate", type=int, default=defaults.rate, help="per-frame packet rate, 10..120 Hz"
    )
    parser.add_argument("--format", type=int, choices=(2024, 2025, 2026), default=defaults.format)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--retirements", type=int, default=defaults.retirements)
    parser.add_argument("--safety-car", action="store_true", help="deploy a safety car once")
    parser.add_argument(
        "--flashback-at-s",
        type=float,
        default=defaults.flashback_at_s,
        help="session time of a flashback (0: none)",
    )
    parser.add_argument(
        "--flashback-s", type=float, default=defaults.flashback_s, help="how far it goes back"
    )
    parser.add_argument(
        "--red-flag-at-lap",
        type=int,
        default=defaults.red_flag_at_lap,
        help="red-flag the race when the leader is on this lap (0: never)",
    )
    parser.add_argument(
        "--late-joiners",
        type=int,
        default=defaults.late_joiners,
        help="cars (the last slots) that join after the start",
    )
    parser.add_argument(
        "--penalties",
        type=int,
        default=defaults.penalties,
        help="race cars given a penalty: time, drive-through, stop-go in turn",
    )
    parser.add_argument(
        "--speed", type=float, default=defaults.speed, help="times faster than real time"
    )
    parser.add_argument("--flat-out", action="store_true", help="no waiting between frames")
    parser.add_argument("--target-host", default=defaults.target_host)
    parser.add_argument("--target-port", type=int, default=defaults.target_port)
    parser.add_argument("--autostart", action="store_true", help="start a session at launch")
    parser.add_argument("--replay", type=Path, default=None, help="replay this capture at launch")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse_module_args(build_parser(), argv)
    logger = get_logger("game_sim", log_host=args.log_host, log_port=args.log_port)
    settings = Settings(
        session=args.session,
        track=args.track,
        laps=args.laps,
        cars=args.cars,
        rate=args.rate,
        seed=args.seed,
        retirements=args.retirements,
        safety_car=args.safety_car,
        flashback_at_s=args.flashback_at_s,
        flashback_s=args.flashback_s,
        red_flag_at_lap=args.red_flag_at_lap,
        late_joiners=args.late_joiners,
        penalties=args.penalties,
        format=args.format,
        speed=args.speed,
        flat_out=args.flat_out,
        target_host=args.target_host,
        target_port=args.target_port,
    )
    try:
        settings.session_options().validate()
        game = GameSim(settings, logger)
    except ValueError as error:
        print(f"game_sim: {error}", file=sys.stderr)
        return 2
    server = DefaultServer(
        port=args.port, ip=args.host, pcommand_map=game.commands(), name="game_sim", logger=logger
    )
    server.init_server()
    try:
        if args.replay is not None:
            _track(server, "REPLAY", game.replay(str(args.replay), args.speed, args.flat_out))
        elif args.autostart:
            _track(server, "START", game.start())
    except ValueError as error:
        logger.error("cannot %s: %s", "replay" if args.replay else "start", error)
        server.shutdown()
        return 2
    server.start_listening()
    return 0


def _track(
    server: DefaultServer, name: str, work: tuple[threading.Thread, threading.Event]
) -> None:
    # Work started at launch is the server's to stop, like work a command started.
    server.threads[f"{name}#launch"] = work


if __name__ == "__main__":
    sys.exit(main())

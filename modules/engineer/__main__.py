"""The race engineer: every car's tyres (wear, its fit per stint, temperatures), fuel against
laps to go, ERS, damage, 2026 aero and overtake mode, the cars around it, the delta to its best
lap, and where it would rejoin after a stop, from the decoder's streams; published on
`raceplane.engineer` and `raceplane.pit_rejoin`. Commands: STATUS, PICTURE {car?}."""

from __future__ import annotations

import sys
from typing import Any

from dareplane_utils.default_server.server import DefaultServer
from dareplane_utils.logging.logger import get_logger
from dareplane_utils.module_cli import module_parser, parse_module_args

from .feed import Feed, Outputs
from .model import DEFAULT_WEAR_TARGET, Engineer


def main(argv: list[str] | None = None) -> int:
    parser = module_parser("engineer", 8107, __doc__)
    parser.add_argument(
        "--rate-hz", type=float, default=20.0, help="how often the picture of every car is sent"
    )
    parser.add_argument(
        "--wear-target",
        type=float,
        default=DEFAULT_WEAR_TARGET,
        help="tyre wear (%%) whose lap the stint fit predicts",
    )
    args = parse_module_args(parser, argv)
    if not 0.2 <= args.rate_hz <= 120:
        parser.error(f"--rate-hz must be 0.2..120, not {args.rate_hz}")
    logger = get_logger("engineer", log_host=args.log_host, log_port=args.log_port)
    engineer = Engineer(args.wear_target)
    feed = Feed(engineer, Outputs(f"engineer:{args.port}"), logger, args.rate_hz)

    def picture(car: int | None = None) -> dict[str, Any]:
        if car is not None and (not isinstance(car, int) or not 0 <= car < 22):
            raise ValueError(f"car must be a car index 0..21, not {car!r}")
        with feed.lock:
            return engineer.picture() if car is None else engineer.car_picture(car)

    server = DefaultServer(
        port=args.port,
        ip=args.host,
        pcommand_map={"STATUS": feed.status, "PICTURE": picture},
        name="engineer",
        logger=logger,
    )
    server.init_server()
    feed.start()
    logger.info("engineer on %s:%d", args.host, args.port)
    try:
        server.start_listening()
    finally:
        feed.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

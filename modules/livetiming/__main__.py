"""The live timing module: saves the F1 live timing feed (FastF1's file format) and replays
saved files onto Raceplane's streams, commanded by the control room. Commands: SAVE {path,
publish?, timeout?, append?}, REPLAY {paths, speed? | flat_out?, wait_s?}, SET_DELAY {seconds},
STOP, STATUS.
(A person types `raceplane livetiming save|replay`.)"""

from __future__ import annotations

import sys

from dareplane_utils.default_server.server import DefaultServer
from dareplane_utils.logging.logger import get_logger
from dareplane_utils.module_cli import module_parser, parse_module_args

from .client import ClientOptions, add_connection_options
from .publish import Publisher
from .service import LiveTiming

PORT = 8106


def main(argv: list[str] | None = None) -> int:
    parser = module_parser("livetiming", PORT, __doc__)
    add_connection_options(parser)
    parser.add_argument(
        "--timeout", type=float, default=0.0, help="SAVE ends after S s without data (0: never)"
    )
    parser.add_argument(
        "--wait-s",
        type=float,
        default=5.0,
        help="publishing first waits up to S s for readers of the lap timer's streams",
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=0.0,
        help="broadcast delay: hold everything published by S s (SET_DELAY changes it)",
    )
    args = parse_module_args(parser, argv)
    logger = get_logger("livetiming", log_host=args.log_host, log_port=args.log_port)
    options = ClientOptions(
        url=args.url,
        access_token=args.token or None,
        backoff_s=args.backoff_s,
        backoff_max_s=args.backoff_max_s,
        server_timeout_s=args.server_timeout_s,
        ping_interval_s=args.ping_interval_s,
        rollover_s=args.rollover_min * 60.0,
        idle_timeout_s=args.timeout,
    )
    try:
        publisher = Publisher(f"livetiming:{args.port}", delay_s=args.delay)
    except ValueError as error:
        parser.error(str(error))
    service = LiveTiming(options, publisher, logger, args.wait_s)
    server = DefaultServer(
        port=args.port,
        ip=args.host,
        pcommand_map=service.commands(),
        name="livetiming",
        logger=logger,
    )
    server.init_server()
    logger.info("live timing on %s:%d, feed %s", args.host, args.port, args.url)
    try:
        server.start_listening()
    finally:
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

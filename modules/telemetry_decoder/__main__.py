"""The telemetry decoder: F1 game UDP telemetry (formats 2024, 2025, 2026) to LSL streams.

Listens for the game's UDP datagrams, checks and decodes every packet type, and publishes
every field on the stream catalogue (modules/stream_catalogue.py). Commands: CAPTURE_START
{"path": FILE}, CAPTURE_STOP, STATUS."""

from __future__ import annotations

from dareplane_utils.default_server.server import DefaultServer
from dareplane_utils.logging.logger import get_logger
from dareplane_utils.module_cli import module_parser, parse_module_args
from modules.telemetry_decoder.service import RCVBUF_BYTES, Decoder


def main(argv: list[str] | None = None) -> int:
    parser = module_parser("telemetry_decoder", 8102, __doc__)
    parser.add_argument(
        "--udp-host",
        default="127.0.0.1",
        help="address to receive the game's UDP on (127.0.0.1: a game on this machine; "
        "0.0.0.0: every interface, for a console or another PC)",
    )
    parser.add_argument("--udp-port", type=int, default=20777, help="UDP port the game sends to")
    parser.add_argument(
        "--rcvbuf-bytes", type=int, default=RCVBUF_BYTES, help="UDP socket receive buffer"
    )
    parser.add_argument("--capture", default=None, help="capture raw UDP to this file from start")
    args = parse_module_args(parser, argv)
    logger = get_logger("telemetry_decoder", log_host=args.log_host, log_port=args.log_port)
    try:
        decoder = Decoder(logger, args.udp_host, args.udp_port, args.rcvbuf_bytes)
    except OSError as error:
        logger.error("%s", error)
        return 1
    server = DefaultServer(
        port=args.port,
        ip=args.host,
        pcommand_map=decoder.commands(),
        name="telemetry_decoder",
        logger=logger,
    )
    try:
        try:
            server.init_server()
        except OSError as error:
            logger.error("%s", error)
            return 1
        if args.capture:
            decoder.capture_start(args.capture)
        decoder.start()
        server.start_listening()
    finally:
        decoder.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Records Raceplane's LSL streams to XDF files (what LabRecorder writes), commanded over TCP.

Commands: RECORD {filename?, append?, <session parameter>...}, STOPRECORD (also STOP),
SELECT {patterns}, SET_SAVE_PATH {path}, UPDATE, STATUS.

A recording keeps its intent in a state file (default: .recorder-PORT.state.json in the save
path) until it ends in order; a recorder killed mid-recording resumes it when started again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dareplane_utils.default_server.server import DefaultServer
from dareplane_utils.logging.logger import get_logger
from dareplane_utils.module_cli import module_parser, parse_module_args
from modules.recorder.engine import EXPECTED, Recorder, RecorderSettings
from modules.recorder.retention import Retention


def main(argv: list[str] | None = None) -> int:
    parser = module_parser("recorder", 8104, __doc__)
    parser.add_argument(
        "--save-path", type=Path, default=Path("recordings"), help="directory for recordings"
    )
    parser.add_argument(
        "--streams",
        action="append",
        default=None,
        metavar="PATTERN",
        help="stream name glob (repeatable; default raceplane.*)",
    )
    parser.add_argument(
        "--expect",
        action="append",
        default=None,
        metavar="STREAM",
        help="a stream a recording must hold, reported when missing or quiet (repeatable; "
        "default: the decoder's main streams)",
    )
    parser.add_argument(
        "--rotate-seconds",
        type=float,
        default=0.0,
        help="start a new file after this long (0: never)",
    )
    parser.add_argument(
        "--rotate-mb", type=float, default=0.0, help="start a new file after this size (0: never)"
    )
    parser.add_argument(
        "--keep-files",
        type=int,
        default=0,
        help="keep only the newest N recordings in the save path, deleting older ones (0: all)",
    )
    parser.add_argument(
        "--keep-gb",
        type=float,
        default=0.0,
        help="keep only the newest recordings up to this many GB in the save path (0: all)",
    )
    parser.add_argument(
        "--max-channels", type=int, default=65_536, help="refuse streams wider than this"
    )
    parser.add_argument(
        "--max-string-bytes", type=int, default=65_536, help="drop string samples longer than this"
    )
    parser.add_argument(
        "--setup", type=Path, default=None, help="setup file to store in every recording"
    )
    parser.add_argument(
        "--record", default=None, metavar="FILE", help="start recording FILE right away"
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="where a recording keeps its intent (default: SAVE_PATH/.recorder-PORT.state.json)",
    )
    args = parse_module_args(parser, argv)
    session: dict[str, str] = {}
    if args.setup is not None:
        try:
            session = {"setup_file": str(args.setup), "setup": args.setup.read_text()}
        except OSError as error:
            parser.error(f"cannot read --setup {args.setup}: {error.strerror}")
    settings = RecorderSettings(
        save_path=args.save_path,
        patterns=args.streams or ["raceplane.*"],
        rotate_seconds=args.rotate_seconds,
        rotate_bytes=int(args.rotate_mb * 1e6),
        max_channels=args.max_channels,
        max_string_bytes=args.max_string_bytes,
        session=session,
        state_file=args.state_file or args.save_path / f".recorder-{args.port}.state.json",
        retention=Retention(keep_files=args.keep_files, keep_bytes=int(args.keep_gb * 1e9)),
        expected=tuple(args.expect) if args.expect else EXPECTED,
    )
    logger = get_logger("recorder", log_host=args.log_host, log_port=args.log_port)
    recorder = Recorder(settings, logger)
    server = DefaultServer(
        port=args.port,
        ip=args.host,
        pcommand_map=recorder.commands(),
        name="recorder",
        logger=logger,
    )
    # A recording cut off by a crash goes on before anyone can ask; --record is for a fresh one.
    if recorder.resume() is None and args.record:
        try:
            recorder.record(args.record)
        except ValueError as error:
            parser.error(str(error))
    server.init_server()
    try:
        server.start_listening()
    finally:
        recorder.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

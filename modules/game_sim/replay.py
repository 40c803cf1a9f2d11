"""Replay a raw UDP capture (modules/f1_udp/capture.py) to a UDP target.

    raceplane replay FILE [--speed N | --flat-out] [--target-host H] [--target-port P]

Datagrams go out in file order at their recorded pace (the gaps between receive times), N
times faster, or flat out. The game simulator's REPLAY command and `--replay` option use the
same code.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from modules.f1_udp.capture import CaptureError, CaptureParser, read_capture
from modules.game_sim.sender import Counters, Pace, send_paced


def check_capture(path: Path | str) -> Path:
    """Refuse early what cannot be replayed: a missing file, or one that is not a capture."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no capture file at {path}")
    with open(path, "rb") as handle:
        try:
            CaptureParser().feed(handle.read(64))
        except CaptureError as error:
            raise ValueError(f"{path}: {error}") from None
    return path


def capture_frames(path: Path | str, problems: list[str]) -> Iterator[tuple[float, list[bytes]]]:
    """(receive time, [datagram]) for every datagram; a cut-short tail is noted, not fatal."""
    try:
        for datagram in read_capture(path):
            yield datagram.time_s, [datagram.payload]
    except CaptureError as error:
        problems.append(str(error))


def replay(
    path: Path | str,
    target: tuple[str, int],
    pace: Pace,
    stop: threading.Event | None = None,
    counters: Counters | None = None,
    problems: list[str] | None = None,
) -> bool:
    """Send a whole capture; True if it ran to the end, False if stopped."""
    return send_paced(
        capture_frames(check_capture(path), problems if problems is not None else []),
        target,
        pace,
        stop or threading.Event(),
        counters or Counters(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="raceplane replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="a raw UDP capture")
    parser.add_argument("--speed", type=float, default=1.0, help="times faster than recorded")
    parser.add_argument("--flat-out", action="store_true", help="send as fast as possible")
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--target-port", type=int, default=20777)
    args = parser.parse_args(argv)
    counters, problems = Counters(), []
    try:
        replay(
            args.file,
            (args.target_host, args.target_port),
            Pace(args.speed, args.flat_out),
            None,
            counters,
            problems,
        )
    except ValueError as error:
        print(f"raceplane replay: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    for problem in problems:
        print(f"raceplane replay: warning: {problem}", file=sys.stderr)
    target = f"{args.target_host}:{args.target_port}"
    print(f"sent {counters.packets} datagrams ({counters.bytes} bytes) to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

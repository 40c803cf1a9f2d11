"""Replay a raw UDP capture (modules/f1_udp/capture.py) to a UDP target.

    raceplane replay FILE [--speed N | --flat-out [--ack HOST:PORT | --no-ack]]
                     [--target-host H] [--target-port P] [--control-room HOST:PORT]

Datagrams go out in file order at their recorded pace (the gaps between receive times), N
times faster, or flat out. With `--ack` (the lap timer's command port) flat out keeps at most a
window of game frames ahead of what that consumer has applied (STATUS inputs.applied: session
uid and overall frame identifier, which every datagram's header carries), so the stages
between (the decoder's UDP socket above all) never hold more than a window, and it ends when
the consumer has applied the last frame sent. Flat out without `--ack` acknowledges the lap
timers of the running stack (its control room at `--control-room`, raceplane up's by default),
after they report reading every stream they need; with none there (or `--no-ack`) it sends as
fast as sending goes. The game simulator's REPLAY command and `--replay` option use the same
code.
"""

from __future__ import annotations

import argparse
import struct
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from modules.acknowledge import (
    CONTROL_ROOM,
    AcknowledgementError,
    ConsumerAck,
    Consumers,
    flat_out_consumers,
)
from modules.f1_udp.capture import CaptureError, CaptureParser, read_capture
from modules.f1_udp.layouts import HEADER_DTYPE
from modules.game_sim.sender import Counters, Pace, send_paced
from modules.lap_timer.inputs import STREAMS as LAP_TIMER_STREAMS
from modules.stream_catalogue import STREAMS

# Game frames a flat-out replay may be ahead of the acknowledging consumer: ~7 datagrams of
# ~1.3 kB a frame, so ~2.3 MB in flight, well inside the decoder's 8 MB socket buffer.
ACK_WINDOW_FRAMES = 256
# How long a consumer (started late) is given to report reading every stream it needs.
ACK_READERS_S = 30.0
# The packets whose frames the lap timer applies (only those are waited for).
ACK_PACKETS = frozenset(
    int(STREAMS[name].packet_id)
    for name in LAP_TIMER_STREAMS
    if STREAMS[name].packet_id is not None
)
_PACKET_ID = HEADER_DTYPE.fields["packetId"][1]
_UID = struct.Struct("<Q"), HEADER_DTYPE.fields["sessionUID"][1]
_OVERALL = struct.Struct("<I"), HEADER_DTYPE.fields["overallFrameIdentifier"][1]


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


def sequence(datagram: bytes) -> tuple[str, int] | None:
    """(session uid, overall frame identifier) of a datagram the lap timer applies, else None."""
    if len(datagram) < HEADER_DTYPE.itemsize or datagram[_PACKET_ID] not in ACK_PACKETS:
        return None
    uid = _UID[0].unpack_from(datagram, _UID[1])[0]
    return str(uid), _OVERALL[0].unpack_from(datagram, _OVERALL[1])[0]


def acknowledged(
    frames: Iterable[tuple[float, list[bytes]]], ack: ConsumerAck | Consumers
) -> Iterator[tuple[float, list[bytes]]]:
    """`frames`, each handed on once the consumer has room for it; after the last, until the
    consumer has applied everything sent (a generator: send_paced pulls, so it sends)."""
    for at_s, datagrams in frames:
        keys = [key for key in map(sequence, datagrams) if key is not None]
        if keys and not ack.wait_for_room(*keys[-1]):
            return
        yield at_s, datagrams
        for key in keys:
            ack.sent(*key)
    ack.finish()


def replay(
    path: Path | str,
    target: tuple[str, int],
    pace: Pace,
    stop: threading.Event | None = None,
    counters: Counters | None = None,
    problems: list[str] | None = None,
    ack: ConsumerAck | Consumers | None = None,
) -> bool:
    """Send a whole capture; True if it ran to the end, False if stopped. With `ack`, flat out
    waits for room behind that consumer and for it to apply the last frame sent."""
    stop = stop or threading.Event()
    frames: Iterable[tuple[float, list[bytes]]] = capture_frames(
        check_capture(path), problems if problems is not None else []
    )
    if ack is not None:
        ack.stop = stop
        frames = acknowledged(frames, ack)
    finished = send_paced(frames, target, pace, stop, counters or Counters())
    return finished and not stop.is_set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="raceplane replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="a raw UDP capture")
    parser.add_argument("--speed", type=float, default=1.0, help="times faster than recorded")
    parser.add_argument(
        "--flat-out",
        action="store_true",
        help="as fast as the consumers (--ack, else the stack's lap timers) take it",
    )
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--target-port", type=int, default=20777)
    parser.add_argument(
        "--ack",
        metavar="HOST:PORT",
        action="append",
        help="a consumer reporting STATUS inputs.applied (the lap timer's command port): stay "
        "at most a window of frames ahead of it and end when it has applied everything "
        "(repeatable)",
    )
    parser.add_argument(
        "--control-room",
        metavar="HOST:PORT",
        default=CONTROL_ROOM,
        help="flat out without --ack: acknowledge the lap timers of the stack run from here",
    )
    parser.add_argument(
        "--no-ack", action="store_true", help="flat out without waiting for any consumer"
    )
    args = parser.parse_args(argv)
    counters, problems = Counters(), []
    ack = None
    stop = threading.Event()
    try:
        if args.ack or (args.flat_out and not args.no_ack):
            ack = flat_out_consumers(
                args.ack,
                args.control_room,
                ACK_WINDOW_FRAMES,
                stop,
                LAP_TIMER_STREAMS,
                note=lambda text: print(f"raceplane replay: {text}", file=sys.stderr),
            )
        if ack is not None:
            # A consumer started late reads nothing pushed before it subscribed: wait for it.
            unread = ack.wait_for_readers(ACK_READERS_S)
            if unread:
                print(f"raceplane replay: {ack.address} does not read {', '.join(unread)}")
        replay(
            args.file,
            (args.target_host, args.target_port),
            Pace(args.speed, args.flat_out),
            stop,
            counters,
            problems,
            ack,
        )
    except ValueError as error:
        print(f"raceplane replay: {error}", file=sys.stderr)
        return 2
    except AcknowledgementError as error:
        print(f"raceplane replay: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        if ack is not None:
            ack.close()
    for problem in problems:
        print(f"raceplane replay: warning: {problem}", file=sys.stderr)
    target = f"{args.target_host}:{args.target_port}"
    applied = f"; all applied by {ack.address}" if ack is not None else ""
    print(f"sent {counters.packets} datagrams ({counters.bytes} bytes) to {target}{applied}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

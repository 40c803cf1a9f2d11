"""The socket edge: put a stream of (session time, datagram) on a UDP target at a chosen pace.

Used for both simulated sessions and capture replays. Pace: `speed` times real time, or flat
out (no waiting at all). Waiting happens on the stop event, so STOP ends a paced run at once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

SEND_BUFFER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Pace:
    speed: float = 1.0  # 1 is real time, 4 is four times faster
    flat_out: bool = False

    def __post_init__(self) -> None:
        if not self.flat_out and not (0.01 <= self.speed <= 1000):
            raise ValueError(f"speed must be 0.01..1000 (or flat out), not {self.speed}")


@dataclass
class Counters:
    packets: int = 0
    bytes: int = 0
    errors: int = 0
    last_error: str | None = None


def open_socket(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    return sock


def send_paced(
    frames: Iterable[tuple[float, list[bytes]]],
    target: tuple[str, int],
    pace: Pace,
    stop: threading.Event,
    counters: Counters,
) -> bool:
    """Send each frame's datagrams when its time (seconds from the first frame) comes.

    Returns True when the stream ran out, False when `stop` ended it. A frame taken from
    `frames` is always sent, even when `stop` comes while it waits for its time: a simulated
    frame has happened (TRUTH has it) once made, so it must reach the wire. A refused send
    (nobody listening yet: ICMP port unreachable) is counted and skipped, as the game does.
    """
    sock = open_socket(target[0])
    try:
        started = time.monotonic()
        first: float | None = None
        for at_s, datagrams in frames:
            stopping = stop.is_set()
            if not stopping and not pace.flat_out:
                first = at_s if first is None else first
                delay = started + (at_s - first) / pace.speed - time.monotonic()
                stopping = delay > 0 and stop.wait(delay)
            for datagram in datagrams:
                try:
                    sock.sendto(datagram, target)
                except OSError as error:
                    counters.errors += 1
                    counters.last_error = f"{type(error).__name__}: {error}"
                    continue
                counters.packets += 1
                counters.bytes += len(datagram)
            if stopping:
                return False
        return True
    finally:
        sock.close()

"""Draw world positions (x, z) as a PNG: a look at the circuit the cars actually drove.

    python -m modules.game_sim.picture --track monza --out monza.png

runs a short race flat out, without sockets, and plots every car's world position from the
Motion packets it would send. A tiny PNG writer (zlib + the PNG chunk layout) keeps this free
of plotting dependencies.
"""

from __future__ import annotations

import argparse
import struct
import zlib
from pathlib import Path

import numpy as np

from modules.f1_udp.packets import PacketId, parse_packet
from modules.game_sim.broadcast import Broadcaster
from modules.game_sim.race import RaceSim, SessionOptions


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an (h, w, 3) uint8 array as a PNG."""
    height, width, _ = image.shape
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def plot(xs: np.ndarray, zs: np.ndarray, size: int = 600, margin: int = 20) -> np.ndarray:
    """White canvas, positions in dark grey, north up; equal scale on both axes."""
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    span = max(np.ptp(xs), np.ptp(zs), 1.0)
    scale = (size - 2 * margin) / span
    cols = ((xs - xs.min()) * scale + margin).astype(int)
    rows = (size - 1 - ((zs - zs.min()) * scale + margin)).astype(int)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            image[np.clip(rows + dr, 0, size - 1), np.clip(cols + dc, 0, size - 1)] = (40, 40, 40)
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--track", default="monza")
    parser.add_argument("--laps", type=int, default=1)
    parser.add_argument("--cars", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("track.png"))
    args = parser.parse_args(argv)
    sim = RaceSim(SessionOptions(track=args.track, laps=args.laps, cars=args.cars, rate=20))
    broadcaster = Broadcaster(sim)
    xs: list[np.ndarray] = []
    zs: list[np.ndarray] = []
    while not sim.over:
        for datagram in broadcaster.step():
            packet = parse_packet(datagram)
            if packet["header"]["packetId"] == PacketId.MOTION:
                motion = packet["carMotionData"][: args.cars]
                xs.append(motion["worldPositionX"].copy())
                zs.append(motion["worldPositionZ"].copy())
    args.out.write_bytes(png_bytes(plot(np.concatenate(xs), np.concatenate(zs))))
    print(f"{args.out}: {sum(len(x) for x in xs)} positions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Packet ids, spec-stated sizes, dtype look-up, and building/reading whole packets.

Dispatch is always on (packetFormat, packetId) from the header - never on the game year,
because a game sends older formats when asked to.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from modules.f1_udp.layouts import (
    FORMATS,
    HEADER_DTYPE,
    HEADER_SIZE,
    UnknownPacketError,
    build_packet_dtypes,
)


class PacketId(IntEnum):
    MOTION = 0
    SESSION = 1
    LAP_DATA = 2
    EVENT = 3
    PARTICIPANTS = 4
    CAR_SETUPS = 5
    CAR_TELEMETRY = 6
    CAR_STATUS = 7
    FINAL_CLASSIFICATION = 8
    LOBBY_INFO = 9
    CAR_DAMAGE = 10
    SESSION_HISTORY = 11
    TYRE_SETS = 12
    MOTION_EX = 13
    TIME_TRIAL = 14
    LAP_POSITIONS = 15  # from 2025
    CAR_TELEMETRY_2 = 16  # from 2026


# Sizes as EA's specification states them, typed in from the spec text; the dtypes are checked
# against these below, so a layout mistake fails at import rather than on the wire.
_STATED_SIZES = {
    2024: (1349, 753, 1285, 45, 1350, 1133, 1352, 1239, 1020, 1306, 953, 1460, 231, 237, 101),
    2025: (1349, 753, 1285, 45, 1284, 1133, 1352, 1239, 1042, 954, 1041, 1460, 231, 273, 101,
           1131),
    2026: (1325, 926, 1399, 45, 1470, 1233, 1448, 1445, 1134, 1062, 1133, 1460, 231, 273, 104,
           1231, 269),
}  # fmt: skip
PACKET_SIZES: dict[tuple[int, int], int] = {
    (fmt, packet_id): size
    for fmt, sizes in _STATED_SIZES.items()
    for packet_id, size in enumerate(sizes)
}

PACKET_DTYPES: dict[tuple[int, int], np.dtype] = {
    (fmt, packet_id): dtype
    for fmt in FORMATS
    for packet_id, dtype in build_packet_dtypes(fmt).items()
}

for _key, _dtype in PACKET_DTYPES.items():
    if _dtype.itemsize != PACKET_SIZES.get(_key):
        raise AssertionError(
            f"layout {_key} is {_dtype.itemsize} bytes, spec says {PACKET_SIZES.get(_key)}"
        )
assert PACKET_DTYPES.keys() == PACKET_SIZES.keys()


def packet_dtype(packet_format: int, packet_id: int) -> np.dtype:
    """The layout of packet `packet_id` in `packet_format`; UnknownPacketError if there is none."""
    try:
        return PACKET_DTYPES[(int(packet_format), int(packet_id))]
    except KeyError:
        if packet_format not in FORMATS:
            why = f"unknown packet format {packet_format} (known: {', '.join(map(str, FORMATS))})"
        else:
            why = f"unknown packet id {packet_id} in packet format {packet_format}"
        raise UnknownPacketError(why) from None


def new_packet(packet_format: int, packet_id: int) -> np.ndarray:
    """A zeroed packet (a 0-d structured array) with format, id, year and version filled in.

    Fields are set by EA's names: `p["lapData"]["currentLapNum"][3] = 2`; `p.tobytes()` is the
    datagram.
    """
    packet = np.zeros((), dtype=packet_dtype(packet_format, packet_id))
    header = packet["header"]
    header["packetFormat"] = packet_format
    header["gameYear"] = packet_format % 100
    header["gameMajorVersion"] = 1
    header["packetVersion"] = 1
    header["packetId"] = packet_id
    header["secondaryPlayerCarIndex"] = 255  # the spec's "no second player"
    return packet


def fill_header(
    packet: np.ndarray,
    *,
    session_uid: int,
    session_time: float,
    frame_identifier: int,
    overall_frame_identifier: int | None = None,
    player_car_index: int = 0,
) -> np.ndarray:
    """Set the per-datagram header fields of `packet` (in place); returns `packet`."""
    header = packet["header"]
    header["sessionUID"] = session_uid
    header["sessionTime"] = session_time
    header["frameIdentifier"] = frame_identifier
    header["overallFrameIdentifier"] = (
        frame_identifier if overall_frame_identifier is None else overall_frame_identifier
    )
    header["playerCarIndex"] = player_car_index
    return packet


def read_header(data: bytes | bytearray | memoryview) -> np.ndarray:
    """The header of a datagram (0-d structured array); ValueError if it is shorter than one."""
    if len(data) < HEADER_SIZE:
        raise ValueError(f"datagram of {len(data)} bytes is shorter than a header ({HEADER_SIZE})")
    return np.frombuffer(data, dtype=HEADER_DTYPE, count=1)[0]


def parse_packet(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Read one datagram as its packet type (a read-only 0-d view on `data`).

    Raises UnknownPacketError for an unknown (format, id) and ValueError for a wrong size.
    """
    header = read_header(data)
    dtype = packet_dtype(header["packetFormat"], header["packetId"])
    if len(data) != dtype.itemsize:
        raise ValueError(
            f"packet format {header['packetFormat']} id {header['packetId']} is "
            f"{dtype.itemsize} bytes, datagram has {len(data)}"
        )
    return np.frombuffer(data, dtype=dtype, count=1).reshape(())

"""F1 game UDP telemetry packets (formats 2024, 2025, 2026) as numpy structured dtypes.

from modules.f1_udp import PacketId, new_packet, fill_header, parse_packet
p = new_packet(2025, PacketId.LAP_DATA)
fill_header(p, session_uid=7, session_time=1.5, frame_identifier=90)
p["lapData"]["currentLapNum"][0] = 2
datagram = p.tobytes()
parse_packet(datagram)["lapData"]["currentLapNum"][0]   # 2
"""

from modules.f1_udp.events import (
    EVENT_DETAILS,
    EVENT_DETAILS_OFFSET,
    EventCode,
    event_details,
    event_details_dtype,
    set_event,
)
from modules.f1_udp.layouts import (
    FORMATS,
    HEADER_DTYPE,
    HEADER_SIZE,
    MAX_CARS,
    UnknownPacketError,
)
from modules.f1_udp.packets import (
    PACKET_DTYPES,
    PACKET_SIZES,
    PacketId,
    fill_header,
    new_packet,
    packet_dtype,
    parse_packet,
    read_header,
)

__all__ = [
    "EVENT_DETAILS",
    "EVENT_DETAILS_OFFSET",
    "FORMATS",
    "HEADER_DTYPE",
    "HEADER_SIZE",
    "MAX_CARS",
    "PACKET_DTYPES",
    "PACKET_SIZES",
    "EventCode",
    "PacketId",
    "UnknownPacketError",
    "event_details",
    "event_details_dtype",
    "fill_header",
    "new_packet",
    "packet_dtype",
    "parse_packet",
    "read_header",
    "set_event",
]

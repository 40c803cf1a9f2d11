"""Event packet codes and the layout of each code's details (the spec's EventDataDetails union).

An Event packet carries a 4-character code and 12 bytes of details whose meaning depends on
the code. Each code's details are a packed struct at the start of those 12 bytes; codes with
no details (SSTA, SEND, ...) have an empty layout.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from modules.f1_udp.layouts import EVENT_DETAILS_SIZE, F32, FORMATS, U8, U32, UnknownPacketError

EVENT_CODE_OFFSET = 29  # right after the header
EVENT_DETAILS_OFFSET = EVENT_CODE_OFFSET + 4


class EventCode(StrEnum):
    SESSION_STARTED = "SSTA"
    SESSION_ENDED = "SEND"
    FASTEST_LAP = "FTLP"
    RETIREMENT = "RTMT"
    DRS_ENABLED = "DRSE"
    DRS_DISABLED = "DRSD"
    TEAM_MATE_IN_PITS = "TMPT"
    CHEQUERED_FLAG = "CHQF"
    RACE_WINNER = "RCWN"
    PENALTY = "PENA"
    SPEED_TRAP = "SPTP"
    START_LIGHTS = "STLG"
    LIGHTS_OUT = "LGOT"
    DRIVE_THROUGH_SERVED = "DTSV"
    STOP_GO_SERVED = "SGSV"
    FLASHBACK = "FLBK"
    BUTTON_STATUS = "BUTN"
    RED_FLAG = "RDFL"
    OVERTAKE = "OVTK"
    SAFETY_CAR = "SCAR"
    COLLISION = "COLL"


def _details(fmt: int) -> dict[EventCode, np.dtype]:
    vehicle = [("vehicleIdx", U8)]
    layouts: dict[EventCode, list[tuple]] = {
        EventCode.FASTEST_LAP: [("vehicleIdx", U8), ("lapTime", F32)],
        EventCode.RETIREMENT: vehicle + ([("reason", U8)] if fmt >= 2025 else []),
        EventCode.DRS_DISABLED: [("reason", U8)] if fmt >= 2025 else [],
        EventCode.TEAM_MATE_IN_PITS: vehicle,
        EventCode.RACE_WINNER: vehicle,
        EventCode.PENALTY: [
            ("penaltyType", U8),
            ("infringementType", U8),
            ("vehicleIdx", U8),
            ("otherVehicleIdx", U8),
            ("time", U8),
            ("lapNum", U8),
            ("placesGained", U8),
        ],
        EventCode.SPEED_TRAP: [
            ("vehicleIdx", U8),
            ("speed", F32),
            ("isOverallFastestInSession", U8),
            ("isDriverFastestInSession", U8),
            ("fastestVehicleIdxInSession", U8),
            ("fastestSpeedInSession", F32),
        ],
        EventCode.START_LIGHTS: [("numLights", U8)],
        EventCode.DRIVE_THROUGH_SERVED: vehicle,
        EventCode.STOP_GO_SERVED: vehicle + ([("stopTime", F32)] if fmt >= 2025 else []),
        EventCode.FLASHBACK: [("flashbackFrameIdentifier", U32), ("flashbackSessionTime", F32)],
        EventCode.BUTTON_STATUS: [("buttonStatus", U32)],
        EventCode.OVERTAKE: [("overtakingVehicleIdx", U8), ("beingOvertakenVehicleIdx", U8)],
        EventCode.SAFETY_CAR: [("safetyCarType", U8), ("eventType", U8)],
        EventCode.COLLISION: [("vehicle1Idx", U8), ("vehicle2Idx", U8)]
        + ([("severity", U8)] if fmt >= 2026 else []),
    }
    out = {code: np.dtype(layouts.get(code, [])) for code in EventCode}
    assert all(d.itemsize <= EVENT_DETAILS_SIZE for d in out.values())
    return out


EVENT_DETAILS: dict[int, dict[EventCode, np.dtype]] = {fmt: _details(fmt) for fmt in FORMATS}


def event_details_dtype(packet_format: int, code: str | bytes) -> np.dtype:
    """The details layout of event `code` in `packet_format` (empty dtype: no details)."""
    text = code.decode("ascii", "replace") if isinstance(code, bytes) else code
    try:
        return EVENT_DETAILS[packet_format][EventCode(text)]
    except (KeyError, ValueError):
        raise UnknownPacketError(
            f"unknown event code {text!r} for packet format {packet_format}"
        ) from None


def event_details(packet: np.ndarray) -> np.ndarray:
    """The details of a parsed Event packet as a 0-d array of its code's layout (may be empty)."""
    fmt = int(packet["header"]["packetFormat"])
    dtype = event_details_dtype(fmt, bytes(packet["eventStringCode"]))
    if not dtype.itemsize:
        return np.zeros((), dtype)
    raw = np.ascontiguousarray(packet["eventDetails"]).tobytes()
    return np.frombuffer(raw, dtype=dtype, count=1).reshape(())


def set_event(packet: np.ndarray, code: str, **details: float) -> np.ndarray:
    """Write event `code` and its details (by EA's names) into an Event packet, in place.

    Details not given are zero; a name the code's layout lacks raises KeyError.
    """
    fmt = int(packet["header"]["packetFormat"])
    dtype = event_details_dtype(fmt, code)
    values = np.zeros((), dtype)
    for name, value in details.items():
        if dtype.names is None or name not in dtype.names:
            raise KeyError(f"event {code} of format {fmt} has no detail {name!r}")
        values[name] = value
    packet["eventStringCode"] = code.encode("ascii")
    packed = np.zeros(EVENT_DETAILS_SIZE, np.uint8)
    packed[: dtype.itemsize] = np.frombuffer(values.tobytes(), np.uint8)
    packet["eventDetails"] = packed
    return packet

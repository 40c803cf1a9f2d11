"""Reading the decoder's JSON packets into what LapTimer takes (no I/O)."""

from __future__ import annotations

from typing import Any

# lapValidBitFlags of SessionHistory: bit 0 is the whole lap.
LAP_VALID = 0x01


def session_history_laps(packet: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """(car index, [{lap_time_ms, sector_ms, valid}] lap 1 first) of a SessionHistory packet."""
    car = int(packet["car_idx"])
    entries = packet["lap_history_data"][: int(packet["num_laps"])]
    laps = [
        {
            "lap_time_ms": int(entry["lap_time_ms"]),
            # The decoder has already joined each sector's minutes and ms parts.
            "sector_ms": [int(entry[f"sector{n}_time_ms"]) for n in (1, 2, 3)],
            "valid": bool(int(entry["lap_valid_bit_flags"]) & LAP_VALID),
        }
        for entry in entries
    ]
    return car, laps


def session_uid(packet: dict[str, Any]) -> str:
    uid = packet.get("header", {}).get("session_uid")
    if uid is None:
        raise ValueError("packet has no header.session_uid")
    return str(uid)

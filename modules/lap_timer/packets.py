"""Reading the decoder's JSON packets into what LapTimer takes (no I/O)."""

from __future__ import annotations

from typing import Any

# lapValidBitFlags of SessionHistory: bit 0 is the whole lap.
LAP_VALID = 0x01


def session_history_laps(packet: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """(car index, [{lap_time_ms, sector_ms, valid, tyre, pit_in, pit_out}] lap 1 first) of a
    SessionHistory packet.

    The tyre stints say the rest: a stint's `end_lap` is the last lap on that set (255: the
    set on now), so a stint ending before the car's last lap marks an in-lap (`pit_in`) and
    the lap after it an out-lap (`pit_out`); `tyre` is the visual compound of the lap's stint
    (None where the packet has no stints).
    """
    car = int(packet["car_idx"])
    entries = packet["lap_history_data"][: int(packet["num_laps"])]
    stints = packet.get("tyre_stints_history_data", [])[: int(packet.get("num_tyre_stints", 0))]
    ends = [int(stint["end_lap"]) for stint in stints]
    laps = []
    for number, entry in enumerate(entries, start=1):
        stint = next((i for i, end in enumerate(ends) if number <= end), None)
        laps.append(
            {
                "lap_time_ms": int(entry["lap_time_ms"]),
                # The decoder has already joined each sector's minutes and ms parts.
                "sector_ms": [int(entry[f"sector{n}_time_ms"]) for n in (1, 2, 3)],
                "valid": bool(int(entry["lap_valid_bit_flags"]) & LAP_VALID),
                "tyre": None if stint is None else int(stints[stint]["tyre_visual_compound"]),
                "pit_in": stint is not None and stint < len(ends) - 1 and number == ends[stint],
                "pit_out": stint is not None and stint > 0 and number == ends[stint - 1] + 1,
            }
        )
    return car, laps


def session_uid(packet: dict[str, Any]) -> str:
    uid = packet.get("header", {}).get("session_uid")
    if uid is None:
        raise ValueError("packet has no header.session_uid")
    return str(uid)

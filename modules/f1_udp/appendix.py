"""Readable names for the spec's enumerations (its appendices and field comments).

Streams keep the numbers; these names go beside them where a person reads the data
(`"track_id": 11, "track_name": "Monza"`). An id missing here is shown as "unknown <id>".
"""

from __future__ import annotations

TRACK_NAMES = {
    0: "Melbourne", 1: "Paul Ricard", 2: "Shanghai", 3: "Sakhir", 4: "Catalunya", 5: "Monaco",
    6: "Montreal", 7: "Silverstone", 8: "Hockenheim", 9: "Hungaroring", 10: "Spa", 11: "Monza",
    12: "Singapore", 13: "Suzuka", 14: "Abu Dhabi", 15: "Texas", 16: "Brazil", 17: "Austria",
    18: "Sochi", 19: "Mexico", 20: "Baku", 21: "Sakhir Short", 22: "Silverstone Short",
    23: "Texas Short", 24: "Suzuka Short", 25: "Hanoi", 26: "Zandvoort", 27: "Imola",
    28: "Portimao", 29: "Jeddah", 30: "Miami", 31: "Las Vegas", 32: "Losail",
    39: "Silverstone (Reverse)", 40: "Austria (Reverse)", 41: "Zandvoort (Reverse)",
}  # fmt: skip

SESSION_TYPE_NAMES = {
    0: "Unknown", 1: "Practice 1", 2: "Practice 2", 3: "Practice 3", 4: "Short Practice",
    5: "Qualifying 1", 6: "Qualifying 2", 7: "Qualifying 3", 8: "Short Qualifying",
    9: "One-Shot Qualifying", 10: "Sprint Shootout 1", 11: "Sprint Shootout 2",
    12: "Sprint Shootout 3", 13: "Short Sprint Shootout", 14: "One-Shot Sprint Shootout",
    15: "Race", 16: "Race 2", 17: "Race 3", 18: "Time Trial",
}  # fmt: skip

TEAM_NAMES = {
    0: "Mercedes", 1: "Ferrari", 2: "Red Bull Racing", 3: "Williams", 4: "Aston Martin",
    5: "Alpine", 6: "RB", 7: "Haas", 8: "McLaren", 9: "Sauber", 41: "F1 Generic",
    104: "F1 Custom Team",
}  # fmt: skip

# m_actualTyreCompound (F1 Modern, Classic, F2) and m_visualTyreCompound (F1 Modern).
ACTUAL_COMPOUND_NAMES = {
    16: "C5", 17: "C4", 18: "C3", 19: "C2", 20: "C1", 21: "C0", 22: "C6", 7: "inter", 8: "wet",
    9: "dry (classic)", 10: "wet (classic)", 11: "super soft (F2)", 12: "soft (F2)",
    13: "medium (F2)", 14: "hard (F2)", 15: "wet (F2)",
}  # fmt: skip
VISUAL_COMPOUND_NAMES = {16: "soft", 17: "medium", 18: "hard", 7: "inter", 8: "wet"}

RESULT_STATUS_NAMES = {
    0: "invalid", 1: "inactive", 2: "active", 3: "finished", 4: "did not finish",
    5: "disqualified", 6: "not classified", 7: "retired",
}  # fmt: skip
DRIVER_STATUS_NAMES = {0: "in garage", 1: "flying lap", 2: "in lap", 3: "out lap", 4: "on track"}
PIT_STATUS_NAMES = {0: "none", 1: "pitting", 2: "in pit area"}
WEATHER_NAMES = {
    0: "clear", 1: "light cloud", 2: "overcast", 3: "light rain", 4: "heavy rain", 5: "storm"
}  # fmt: skip
SAFETY_CAR_STATUS_NAMES = {0: "none", 1: "full", 2: "virtual", 3: "formation lap"}


def name_of(table: dict[int, str], value: int) -> str:
    """The readable name of `value` in `table`, or "unknown <value>"."""
    return table.get(int(value), f"unknown {int(value)}")

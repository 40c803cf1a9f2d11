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
# m_resultReason (FinalClassification, 2025 on) and the RTMT event's reason.
RESULT_REASON_NAMES = {
    0: "invalid", 1: "retired", 2: "finished", 3: "terminal damage", 4: "inactive",
    5: "not enough laps completed", 6: "black flagged", 7: "red flagged",
    8: "mechanical failure", 9: "session skipped", 10: "session simulated",
}  # fmt: skip
# The PENA event's penaltyType and infringementType.
PENALTY_TYPE_NAMES = {
    0: "drive through", 1: "stop go", 2: "grid penalty", 3: "penalty reminder",
    4: "time penalty", 5: "warning", 6: "disqualified", 7: "removed from formation lap",
    8: "parked too long timer", 9: "tyre regulations", 10: "this lap invalidated",
    11: "this and next lap invalidated", 12: "this lap invalidated without reason",
    13: "this and next lap invalidated without reason",
    14: "this and previous lap invalidated",
    15: "this and previous lap invalidated without reason", 16: "retired",
    17: "black flag timer",
}  # fmt: skip
INFRINGEMENT_NAMES = {
    0: "blocking by slow driving", 1: "blocking by wrong way driving",
    2: "reversing off the start line", 3: "big collision", 4: "small collision",
    5: "collision failed to hand back position single",
    6: "collision failed to hand back position multiple", 7: "corner cutting gained time",
    8: "corner cutting overtake single", 9: "corner cutting overtake multiple",
    10: "crossed pit exit lane", 11: "ignoring blue flags", 12: "ignoring yellow flags",
    13: "ignoring drive through", 14: "too many drive throughs",
    15: "drive through reminder serve within n laps", 16: "drive through reminder serve this lap",
    17: "pit lane speeding", 18: "parked for too long", 19: "ignoring tyre regulations",
    20: "too many penalties", 21: "multiple warnings", 22: "approaching disqualification",
    23: "tyre regulations select single", 24: "tyre regulations select multiple",
    25: "lap invalidated corner cutting", 26: "lap invalidated running wide",
    27: "corner cutting ran wide gained time minor",
    28: "corner cutting ran wide gained time significant",
    29: "corner cutting ran wide gained time extreme", 30: "lap invalidated wall riding",
    31: "lap invalidated flashback used", 32: "lap invalidated reset to track",
    33: "blocking the pitlane", 34: "jump start", 35: "safety car to car collision",
    36: "safety car illegal overtake", 37: "safety car exceeding allowed pace",
    38: "virtual safety car exceeding allowed pace", 39: "formation lap below allowed speed",
    40: "formation lap parking", 41: "retired mechanical failure",
    42: "retired terminally damaged", 43: "safety car falling too far back",
    44: "black flag timer", 45: "unserved stop go penalty", 46: "unserved drive through penalty",
    47: "engine component change", 48: "gearbox change", 49: "parc ferme change",
    50: "league grid penalty", 51: "retry penalty", 52: "illegal time gain",
    53: "mandatory pitstop", 54: "attribute assigned",
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

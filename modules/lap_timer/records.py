"""The lap timer's records: laps, cars (or hand-timed drivers) and sessions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Tyre compounds by the spec's visual compound number (F1 2019 on).
TYRES = {16: "soft", 17: "medium", 18: "hard", 7: "inter", 8: "wet"}

# m_sessionType of the F1 24/25 spec: its readable name and how the lap timer ranks it.
SESSION_TYPES = {
    0: ("Unknown", "practice"),
    1: ("Practice 1", "practice"),
    2: ("Practice 2", "practice"),
    3: ("Practice 3", "practice"),
    4: ("Short Practice", "practice"),
    5: ("Qualifying 1", "qualifying"),
    6: ("Qualifying 2", "qualifying"),
    7: ("Qualifying 3", "qualifying"),
    8: ("Short Qualifying", "qualifying"),
    9: ("One-Shot Qualifying", "qualifying"),
    10: ("Sprint Shootout 1", "qualifying"),
    11: ("Sprint Shootout 2", "qualifying"),
    12: ("Sprint Shootout 3", "qualifying"),
    13: ("Short Sprint Shootout", "qualifying"),
    14: ("One-Shot Sprint Shootout", "qualifying"),
    15: ("Race", "race"),
    16: ("Race 2", "race"),
    17: ("Race 3", "race"),
    18: ("Time Trial", "time_trial"),
}
MANUAL = "Hot Lap Board"


def tyre_name(compound: int | None) -> str:
    if compound is None or compound == 0:
        return ""
    return TYRES.get(compound, str(compound))


@dataclass
class Lap:
    session_uid: str
    car_index: int | None
    driver: str
    team: str
    lap: int
    lap_time_ms: int
    sector_ms: list[int | None]
    valid: bool
    tyre: str
    pit_in: bool
    pit_out: bool
    source: str  # "game" | "manual"
    session_time_s: float | None = None
    part: int = 0  # the live feed's qualifying part (1..3) it was driven in; 0 none
    id: int | None = None

    def sample(self) -> dict[str, Any]:
        """The `raceplane.laps` sample (ARCHITECTURE's contract, plus the row id)."""
        return {
            "session_uid": self.session_uid,
            "car_index": self.car_index,
            "driver": self.driver,
            "team": self.team,
            "lap": self.lap,
            "lap_time_ms": self.lap_time_ms,
            "sector_ms": list(self.sector_ms),
            "valid": self.valid,
            "tyre": self.tyre,
            "pit_in": self.pit_in,
            "pit_out": self.pit_out,
            "source": self.source,
            "part": self.part,
            "id": self.id,
        }


@dataclass
class Car:
    """A competitor: a game car slot, or a driver on the manual board (car_index None)."""

    car_index: int | None
    driver: str
    team: str = ""
    status: str = "inactive"  # until the game shows the car on track
    position: int = 0  # the game's running position; 0 when unknown
    pit_stops: int = 0
    grid_position: int = 0


@dataclass
class Session:
    uid: str
    source: str  # "game" | "manual"
    session_type: str  # readable: "Race", "Qualifying 1", "Time Trial", MANUAL ...
    ranking: str  # "race" | "qualifying" | "time_trial" | "practice"
    track: str = ""
    game_year: int | None = None
    total_laps: int = 0
    points_table: str = ""  # for races; "" means the configured default
    # key: car index (game) or driver name (manual)
    cars: dict[Any, Car] = field(default_factory=dict)
    laps: list[Lap] = field(default_factory=list)
    # The game's FinalClassification order (car indexes), once it has been received.
    final_order: list[int] = field(default_factory=list)
    red_flag: bool = False
    part: int = 0  # the live feed's SessionPart: qualifying 1..3 (Q1..Q3); 0 none
    version: int = 0  # bumped on every change to `laps`
    _index: dict[Any, dict[int, Lap]] = field(default_factory=dict, repr=False, compare=False)
    _indexed: int = -1

    def key_of(self, lap: Lap) -> Any:
        return lap.car_index if self.source == "game" else lap.driver

    def laps_of(self, key: Any) -> dict[int, Lap]:
        """One competitor's laps by number (read only; rebuilt only after `laps` changed)."""
        if self._indexed != self.version:
            index: dict[Any, dict[int, Lap]] = {}
            for lap in self.laps:
                index.setdefault(self.key_of(lap), {})[lap.lap] = lap
            self._index, self._indexed = index, self.version
        return self._index.get(key, {})

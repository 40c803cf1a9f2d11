"""Championship points: race and sprint tables, the fastest-lap point, custom tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

RACE = (25, 18, 15, 12, 10, 8, 6, 4, 2, 1)
SPRINT = (8, 7, 6, 5, 4, 3, 2, 1)

# The fastest-lap bonus point existed from 2019 to 2024; games of those years award it.
FASTEST_LAP_YEARS = range(2019, 2025)


@dataclass(frozen=True)
class PointsRules:
    """Which table a race session uses, and whether the fastest lap scores."""

    tables: Mapping[str, Sequence[int]] = field(
        default_factory=lambda: {"race": RACE, "sprint": SPRINT}
    )
    table: str = "race"
    # "auto": by the game's year; "on"/"off" force it.
    fastest_lap_point: str = "auto"
    fastest_lap_max_position: int = 10

    def __post_init__(self) -> None:
        if self.table not in self.tables:
            raise ValueError(f"points table {self.table!r} unknown; have {sorted(self.tables)}")
        if self.fastest_lap_point not in ("auto", "on", "off"):
            raise ValueError(
                f"fastest_lap_point must be auto, on or off, not {self.fastest_lap_point!r}"
            )
        for name, values in self.tables.items():
            if any(not isinstance(v, int | float) or v < 0 for v in values):
                raise ValueError(f"points table {name!r} must be a list of non-negative numbers")

    def fastest_lap_counts(self, game_year: int | None, table: str) -> bool:
        if self.fastest_lap_point == "off" or table == "sprint":
            return False
        if self.fastest_lap_point == "on":
            return True
        if game_year is None:
            return False
        year = game_year + 2000 if game_year < 100 else game_year
        return year in FASTEST_LAP_YEARS


def award(
    order: Sequence[object],
    classified: set[object],
    table: Sequence[int],
    fastest_lap_holder: object | None = None,
    fastest_lap_max_position: int = 10,
) -> dict[object, int | float]:
    """Points per key of a finishing `order`; only `classified` keys score.

    The fastest-lap point goes to its holder only if they are classified within
    `fastest_lap_max_position` (pass None to give no such point).
    """
    points: dict[object, int | float] = {key: 0 for key in order}
    scoring = [key for key in order if key in classified]
    for key, value in zip(scoring, table, strict=False):
        points[key] = value
    if (
        fastest_lap_holder in classified
        and fastest_lap_holder in scoring[:fastest_lap_max_position]
    ):
        points[fastest_lap_holder] += 1
    return points

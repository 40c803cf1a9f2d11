"""Pit loss and where a car would rejoin: no I/O.

Pit loss is what a stop costs against staying out, as it stands when the car rejoins: its gap
to the leader just after leaving the pit lane less its gap just before entering it. It is
measured from this session's stops, green and safety car apart (under the safety car the field
laps slowly, so a stop costs less); until a stop has been measured the track's default stands
in, and under the safety car that default scaled down.

Where a car would rejoin if it pitted now: its gap to the leader plus the loss, against every
other running car's gap to the leader, each carried on to the pit exit at the rate it has been
changing over the last green laps (the field spreads: a slow car ahead falls back on the way):
the position that gives, the cars just ahead and behind, and the gaps to them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

# Seconds a green-flag stop costs at each track (EA's track id), as the simulator's pit lanes
# have it; FALLBACK_LOSS_S elsewhere. A session's own stops replace them.
DEFAULT_LOSS_S = {0: 29.0, 5: 29.0, 6: 28.0, 7: 30.0, 11: 35.0, 17: 26.5, 32: 26.0}
FALLBACK_LOSS_S = 25.0
SC_LOSS_FACTOR = 0.55  # a stop under the safety car costs about this share of a green one


def default_loss_s(track_id: int | None) -> float:
    return (
        DEFAULT_LOSS_S.get(track_id, FALLBACK_LOSS_S) if track_id is not None else FALLBACK_LOSS_S
    )


@dataclass
class PitLoss:
    track_id: int | None = None
    green: list[float] = field(default_factory=list)
    safety_car: list[float] = field(default_factory=list)

    def add_stop(self, loss_s: float, under_sc: bool) -> None:
        (self.safety_car if under_sc else self.green).append(loss_s)

    def loss_s(self, under_sc: bool) -> tuple[float, str]:
        """(seconds, where from: "measured" or "default")."""
        if under_sc and self.safety_car:
            return statistics.median(self.safety_car), "measured"
        if self.green:
            green, source = statistics.median(self.green), "measured"
        else:
            green, source = default_loss_s(self.track_id), "default"
        return (green * SC_LOSS_FACTOR if under_sc else green), source


@dataclass(frozen=True)
class Rival:
    car_index: int
    gap_to_leader_ms: float
    trend_ms_per_lap: float = 0.0  # how its gap to the leader has been changing, green laps

    def at(self, horizon_laps: float) -> Rival:
        """This rival `horizon_laps` on, its gap carried on at its trend."""
        gap = self.gap_to_leader_ms + self.trend_ms_per_lap * horizon_laps
        return Rival(self.car_index, gap, self.trend_ms_per_lap)


def predict_rejoin(
    car_index: int,
    gap_to_leader_ms: float,
    loss_s: float,
    rivals: list[Rival],
    horizon_laps: float = 0.0,
) -> dict[str, Any]:
    """Where `car_index` comes out if it pits now (`rivals`: the running cars). Everyone's gap
    is carried on at its trend to the pit exit, `horizon_laps` from now: the field spreads."""
    own = next((r for r in rivals if r.car_index == car_index), None)
    trend = own.trend_ms_per_lap if own is not None else 0.0
    projected = gap_to_leader_ms + trend * horizon_laps + loss_s * 1000.0
    others = [r.at(horizon_laps) for r in rivals if r.car_index != car_index]
    ahead = [r for r in others if r.gap_to_leader_ms <= projected]
    behind = [r for r in others if r.gap_to_leader_ms > projected]
    just_ahead = max(ahead, key=lambda r: r.gap_to_leader_ms, default=None)
    just_behind = min(behind, key=lambda r: r.gap_to_leader_ms, default=None)
    return {
        "position": len(ahead) + 1,
        "gap_to_leader_ms": round(projected),
        # Every car it would rejoin behind, and by how much: the ghost's and a check's.
        "ahead_gaps_ms": {str(r.car_index): round(projected - r.gap_to_leader_ms) for r in ahead},
        "ahead": None
        if just_ahead is None
        else {
            "car_index": just_ahead.car_index,
            "gap_ms": round(projected - just_ahead.gap_to_leader_ms),
        },
        "behind": None
        if just_behind is None
        else {
            "car_index": just_behind.car_index,
            "gap_ms": round(just_behind.gap_to_leader_ms - projected),
        },
    }

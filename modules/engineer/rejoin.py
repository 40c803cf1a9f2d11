"""Pit loss and where a car would rejoin: no I/O.

Pit loss is what a stop costs against staying out: the time from pit entry to pit exit less
the time the same car took over the same stretch of road one lap before (green, out of the
pit lane, past the start). It is measured from this session's stops, green and safety car
apart (under the safety car the field laps slowly, so a stop costs less), as a median (a stop
gone wrong does not move it); until a stop has been measured the track's default stands in,
and under the safety car that default scaled down.

Where a car would rejoin if it pitted now: for every other running car, how far behind it
this car would be at the pit exit had it stayed out (their road gap now, carried on to the
pit exit at the two cars' pace difference), plus the loss: the cars it comes out behind give
the position, the cars just ahead and behind, and the gaps to them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

# Seconds a green-flag stop costs at each track (EA's track id), as the simulator's pit lanes
# have it (the median of 40 simulated stops a track, measured as below); FALLBACK_LOSS_S
# elsewhere. A session's own stops replace them.
DEFAULT_LOSS_S = {0: 21.9, 5: 14.5, 6: 18.3, 7: 30.4, 11: 36.5, 17: 26.9, 32: 18.0}
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
    gap_ms: float  # how far behind it the car would be at the pit exit had it stayed out


def predict_rejoin(car_index: int, loss_s: float, rivals: list[Rival]) -> dict[str, Any]:
    """Where `car_index` comes out if it pits now (`rivals`: the other running cars)."""
    loss_ms = loss_s * 1000.0
    ahead = [r for r in rivals if r.car_index != car_index and r.gap_ms + loss_ms >= 0]
    behind = [r for r in rivals if r.car_index != car_index and r.gap_ms + loss_ms < 0]
    just_ahead = min(ahead, key=lambda r: r.gap_ms, default=None)
    just_behind = max(behind, key=lambda r: r.gap_ms, default=None)
    return {
        "position": len(ahead) + 1,
        # Every car it would rejoin behind, and by how much: the ghost's and a check's.
        "ahead_gaps_ms": {str(r.car_index): round(r.gap_ms + loss_ms) for r in ahead},
        "ahead": None
        if just_ahead is None
        else {"car_index": just_ahead.car_index, "gap_ms": round(just_ahead.gap_ms + loss_ms)},
        "behind": None
        if just_behind is None
        else {"car_index": just_behind.car_index, "gap_ms": round(-just_behind.gap_ms - loss_ms)},
    }

"""Judging pit-rejoin predictions against the simulator's TRUTH (used by the model test and
the end-to-end one).

A stop's prediction is the one made as the car began its in-lap, one lap before the stop. It
is right when the position is within one of where the car really rejoined and its gap to the
car it was predicted to rejoin just behind is within 1 s of the real gap to that car at the
pit exit (signed: that car may really have come by just after it). The prediction is "if it
pits and the others stay out": cars that were themselves in the pit lane between the
prediction and the rejoin are left out on both sides (no prediction can know another car's
stop).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GAP_MS = 1000


@dataclass(frozen=True)
class Judged:
    car_index: int
    in_lap: int
    position_ok: bool
    gap_ok: bool
    nearest: int | None  # the car it was predicted to rejoin just behind
    predicted_gap_ms: int | None
    real_gap_ms: int | None

    @property
    def right(self) -> bool:
        return self.position_ok and self.gap_ok


def stops_of(truth: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [(car["car_index"], r) for car in truth["cars"] for r in car["rejoins"]]


def judge(
    truth: dict[str, Any], prediction: Callable[[int, int], dict[str, Any] | None]
) -> list[Judged]:
    """`prediction(car, in_lap)`: the rejoin predicted as that lap began, with `t`, the session
    time it was made at; None if there was none."""
    stops = stops_of(truth)
    judged = []
    for index, rejoin in stops:
        predicted = prediction(index, rejoin["in_lap"])
        if predicted is None:
            judged.append(Judged(index, rejoin["in_lap"], False, False, None, None, None))
            continue
        movers = {
            str(other)
            for other, r in stops
            if other != index
            and r["entered_s"] <= rejoin["exited_s"]
            and r["exited_s"] >= predicted["t"]
        }
        ahead = {k: v for k, v in predicted["ahead_gaps_ms"].items() if k not in movers}
        road = {k: v for k, v in rejoin["road_gaps_ms"].items() if k not in movers}
        really = [k for k in rejoin["ahead_gaps_ms"] if k not in movers]
        nearest = min(ahead, key=ahead.__getitem__) if ahead else None
        position_ok = abs(len(ahead) - len(really)) <= 1
        if nearest is None:
            gap_ok = not really
        else:
            gap_ok = nearest in road and abs(ahead[nearest] - road[nearest]) <= GAP_MS
        judged.append(
            Judged(
                index,
                rejoin["in_lap"],
                position_ok,
                gap_ok,
                None if nearest is None else int(nearest),
                None if nearest is None else ahead[nearest],
                road.get(nearest) if nearest is not None else None,
            )
        )
    return judged

"""When a car passed each point of its race: session time against race distance, no I/O.

Race distance is (lap - 1) x track length + lap distance. Every `STEP_M` metres the session
time the car got there is kept, interpolated between the two frames around it, so the road
gap between two cars at any point both have passed is a difference of two look-ups, whoever
leads the race (a gap to the leader jumps whenever the leader pits or changes).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

STEP_M = 25.0


@dataclass
class Timeline:
    first: int = -1  # index of the first step kept (a car seen part-way into its race)
    times: array = field(default_factory=lambda: array("d"))
    last_m: float = math.nan  # where and when the newest frame saw the car
    last_s: float = math.nan

    def add(self, distance_m: float, time_s: float) -> None:
        """A frame's position; a car going back (a flashback) is cut back to there first."""
        if not math.isnan(self.last_s) and (time_s < self.last_s or distance_m < self.last_m):
            self.cut(time_s, distance_m)
        if math.isnan(self.last_m):
            self.first = math.ceil(distance_m / STEP_M)
        else:
            start_m, start_s = self.last_m, self.last_s
            span_m = distance_m - start_m
            step = self.first + len(self.times)
            while step * STEP_M <= distance_m and span_m > 0:
                share = (step * STEP_M - start_m) / span_m
                self.times.append(start_s + share * (time_s - start_s))
                step += 1
        self.last_m, self.last_s = distance_m, time_s

    def cut(self, time_s: float, distance_m: float) -> None:
        keep = 0
        while (
            keep < len(self.times)
            and self.times[keep] <= time_s
            and (self.first + keep) * STEP_M <= distance_m
        ):
            keep += 1
        del self.times[keep:]
        if keep == 0:
            self.first, self.last_m, self.last_s = -1, math.nan, math.nan
        else:
            self.last_m = (self.first + keep - 1) * STEP_M
            self.last_s = self.times[keep - 1]

    def at(self, distance_m: float) -> float | None:
        """Session time the car passed `distance_m`; None if it has not, or before it was seen."""
        if math.isnan(self.last_m) or distance_m > self.last_m:
            return None
        where = distance_m / STEP_M - self.first
        k = math.floor(where)
        if k < 0:
            return None
        if k + 1 < len(self.times):
            return self.times[k] + (self.times[k + 1] - self.times[k]) * (where - k)
        # Between the newest step and the newest frame.
        start_m, start_s = (self.first + k) * STEP_M, self.times[k]
        span = self.last_m - start_m
        share = (distance_m - start_m) / span if span > 0 else 1.0
        return start_s + (self.last_s - start_s) * share

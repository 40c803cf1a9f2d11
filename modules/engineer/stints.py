"""Tyre wear per stint: a straight-line fit per corner over the stint's clean laps.

Wear is read as each lap ends. Laps under the safety car (slow, little wear) and laps in or out
of the pit lane (the set changed part-way) are left out of the fit; what remains is wear
against lap number, one least-squares line per corner. Its slope is the trend (% per lap) and
where it meets a chosen wear is the lap that tyre gets there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

CORNERS = ("rl", "rr", "fl", "fr")


@dataclass
class StintFit:
    """One set of tyres: the clean laps' end-of-lap wear, corner by corner."""

    laps: list[int] = field(default_factory=list)
    wear: list[tuple[float, ...]] = field(default_factory=list)
    _lines: list[tuple[float, float]] | None = None  # fitted once per lap added

    def add(self, lap: int, wear: tuple[float, ...]) -> None:
        self.laps.append(lap)
        self.wear.append(wear)
        if len(self.laps) >= 2:
            x = np.asarray(self.laps, dtype=float)
            slope, intercept = np.polyfit(x, np.asarray(self.wear, dtype=float), 1)
            self._lines = [(float(a), float(b)) for a, b in zip(intercept, slope, strict=True)]

    def lines(self) -> list[tuple[float, float]] | None:
        """(intercept, % per lap) per corner, or None with fewer than two clean laps."""
        return self._lines

    def lap_reaching(self, target_pct: float) -> list[int | None] | None:
        """Per corner, the first lap at whose end the fitted wear is `target_pct` or more."""
        lines = self.lines()
        if lines is None:
            return None
        return [math.ceil((target_pct - a) / b - 1e-9) if b > 1e-9 else None for a, b in lines]

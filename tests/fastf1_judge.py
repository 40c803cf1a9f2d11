"""FastF1's reading of a live-timing file, and the comparison of our laps with it.

The judge of the live-timing path: for every lap FastF1 times from a file (its
`fastf1._api.timing_data` over `LiveTimingData`), the same driver, lap number, lap time and
sector times to the millisecond. Used by the tests and by bench/bench_livetiming.py.
"""

from __future__ import annotations

import gzip
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "livetiming"
SESSIONS = ("2023_baku_sprint", "2021_mexico_qualifying", "2024_spain_qualifying")

# (racing number, lap number) -> (lap time, sector 1, 2, 3), ms (None: no time)
LapKey = tuple[str, int]
LapTimes = tuple[int | None, int | None, int | None, int | None]


def shared_file(name: str, directory: Path) -> Path:
    """The shared session `name` unpacked into `directory` (FastF1 reads plain text)."""
    target = directory / f"{name}.txt"
    if not target.exists():
        with gzip.open(SHARED / f"{name}.txt.gz", "rb") as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
    return target


def _ms(value: Any) -> int | None:
    # pandas NaT/NaN are not equal to themselves
    if value is None or value != value:
        return None
    return round(value.total_seconds() * 1000)


def fastf1_timing(path: Path) -> tuple[Any, Any]:
    """FastF1's (laps, stream) tables of a live-timing file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import fastf1
        import fastf1._api as api
        from fastf1.livetiming.data import LiveTimingData

        fastf1.set_log_level("ERROR")
        data = LiveTimingData(str(path))
        data.load()
        return api.timing_data("", livedata=data)


def fastf1_laps(path: Path) -> dict[LapKey, LapTimes]:
    """Every lap FastF1 times in the file (LapTime given), by driver number and lap number."""
    laps, _ = fastf1_timing(path)
    out: dict[LapKey, LapTimes] = {}
    for row in laps.itertuples():
        lap_time = _ms(row.LapTime)
        if lap_time is None:
            continue
        sectors = (_ms(row.Sector1Time), _ms(row.Sector2Time), _ms(row.Sector3Time))
        out[(str(row.Driver), int(row.NumberOfLaps))] = (lap_time, *sectors)
    return out


@dataclass
class Verdict:
    theirs: int  # laps FastF1 times
    equal: int  # of those, ours equal in lap time and every sector
    time_equal: int  # of those, ours equal in lap time
    missing: list[LapKey] = field(default_factory=list)
    different: list[tuple[LapKey, LapTimes, LapTimes]] = field(default_factory=list)
    extra: list[tuple[LapKey, LapTimes]] = field(default_factory=list)  # timed by us only

    def summary(self) -> str:
        return (
            f"{self.equal}/{self.theirs} laps equal (time {self.time_equal}), "
            f"{len(self.missing)} missing, {len(self.different)} different, "
            f"{len(self.extra)} timed only by us"
        )


def judge(ours: dict[LapKey, LapTimes], theirs: dict[LapKey, LapTimes]) -> Verdict:
    verdict = Verdict(theirs=len(theirs), equal=0, time_equal=0)
    for key, expected in sorted(theirs.items()):
        got = ours.get(key)
        if got is None:
            verdict.missing.append(key)
            continue
        verdict.time_equal += got[0] == expected[0]
        if got == expected:
            verdict.equal += 1
        else:
            verdict.different.append((key, expected, got))
    verdict.extra = [(key, ours[key]) for key in sorted(set(ours) - set(theirs))]
    return verdict

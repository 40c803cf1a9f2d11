"""modules.analysis on real F1 sessions (../shared/data/livetiming/), next to FastF1's own reading
of the same files (fastf1._api.timing_data, offline)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest

from modules.analysis import open_recording

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "livetiming"
FILES = sorted(SHARED.glob("*.txt.gz"))
TIMES = ["LapTime", "Sector1Time", "Sector2Time", "Sector3Time"]

pytestmark = pytest.mark.skipif(not FILES, reason="needs ../shared/data/livetiming")


def fastf1_laps(packed: Path, directory: Path) -> pd.DataFrame:
    """FastF1's lap table of the file: one row per lap it times, keyed (number, lap)."""
    import fastf1
    import fastf1._api as api
    from fastf1.livetiming.data import LiveTimingData

    fastf1.set_log_level("ERROR")
    plain = directory / packed.name.removesuffix(".gz")
    with gzip.open(packed, "rb") as source, open(plain, "wb") as target:
        shutil.copyfileobj(source, target)
    data = LiveTimingData(str(plain))
    data.load()
    laps, _ = api.timing_data("", livedata=data)
    timed = laps.dropna(subset=["LapTime"])
    return timed.rename(columns={"Driver": "DriverNumber", "NumberOfLaps": "LapNumber"})


def ours(packed: Path) -> pd.DataFrame:
    session = open_recording(packed)
    assert session.kind == "livetiming"
    assert session.warnings == []
    return session.laps


class Tables(dict):
    """(FastF1's, ours) per file, each read once, when a test first asks for it."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    def __missing__(self, packed: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
        self[packed] = (fastf1_laps(packed, self.directory), ours(packed))
        return self[packed]


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Tables:
    return Tables(tmp_path_factory.mktemp("livetiming"))


@pytest.mark.parametrize("packed", FILES, ids=[f.name.split(".")[0] for f in FILES])
def test_a_real_session_opens_with_fastf1s_drivers(packed, tables):
    theirs, mine = tables[packed]
    assert set(theirs["DriverNumber"].astype(str)) <= set(mine["DriverNumber"])
    # FastF1's names: the three-letter code of the driver list (a car the list lacks keeps
    # its number), and the team.
    assert mine["Driver"].str.fullmatch(r"[A-Z]{3}|Car \d+").all()
    listed = mine[mine["Driver"].str.fullmatch(r"[A-Z]{3}")]
    assert listed["Team"].ne("").all()
    assert (mine["LapTime"] > pd.Timedelta(0)).all()


@pytest.mark.parametrize("packed", FILES, ids=[f.name.split(".")[0] for f in FILES])
def test_every_lap_fastf1_times_is_ours_to_the_millisecond(packed, tables):
    theirs, mine = tables[packed]
    key = ["DriverNumber", "LapNumber"]
    theirs = theirs.assign(DriverNumber=theirs["DriverNumber"].astype(str))
    joined = theirs[[*key, *TIMES]].merge(
        mine[[*key, *TIMES]], on=key, how="left", suffixes=("_fastf1", "_ours")
    )
    for column in TIMES:
        pd.testing.assert_series_equal(
            joined[f"{column}_ours"], joined[f"{column}_fastf1"], check_names=False
        )

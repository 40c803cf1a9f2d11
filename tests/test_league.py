"""A championship played by the simulator: three rounds (races and a sprint) through the real
decoder core into the lap timer, then `raceplane league` as a process: sessions attached to
rounds, a stewards' time penalty that changes a result and a points deduction, a dropped round
and a tie broken by count-back; the standings equal the table worked out by hand below. Bad
league files are refused with errors naming their lines, and nothing is stored."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_lap_timer_truth import Game

from modules.game_sim.race import SessionOptions
from modules.lap_timer.points import PointsRules
from modules.lap_timer.store import Store
from modules.lap_timer.timer import LapTimer
from modules.league.config import LeagueFileError, parse_league

LEAGUE = """\
name = "Test League"
dropped_rounds = 1

[points]
race = [10, 8, 6, 5, 4, 3, 2, 1]
sprint = [3, 2, 1]
fastest_lap = 1

[[rounds]]
name = "Monza"
[[rounds]]
name = "Imola"
[[rounds]]
name = "Spa"

[[teams]]
name = "McLaren"
[[teams]]
name = "Red Bull"
[[teams]]
name = "Ferrari"

[[drivers]]
name = "Lando NORRIS"
team = "McLaren"
race_number = 4
[[drivers]]
name = "Oscar Piastri"     # matched by name
team = "McLaren"
[[drivers]]
name = "Max VERSTAPPEN"
team = "Red Bull"
race_number = 1
[[drivers]]
name = "Charles LECLERC"   # matched by network id
team = "Ferrari"
network_id = 58
"""
# (uid, seed, laps, round, kind): 20 cars at 10 Hz
SESSIONS = (
    (101, 11, 3, "Monza", "race"),
    (102, 12, 2, "Imola", "sprint"),
    (103, 13, 3, "Imola", "race"),
    (104, 14, 3, "Spa", "race"),
)
# Where the league's drivers finished (overall, the game's classification), and who set the
# fastest lap: what the table below is worked out from.
PLACES = {
    101: {"LECLERC": 2, "VERSTAPPEN": 3, "NORRIS": 4, "PIASTRI": 5},
    102: {"VERSTAPPEN": 1, "PIASTRI": 2, "NORRIS": 5, "LECLERC": 7},
    103: {"NORRIS": 1, "PIASTRI": 2, "VERSTAPPEN": 3, "LECLERC": 6},
    104: {"PIASTRI": 1, "NORRIS": 2, "LECLERC": 3, "VERSTAPPEN": 5},
}
FASTEST = {101: "VERSTAPPEN", 103: "PIASTRI", 104: "VERSTAPPEN"}
# By hand. Stewards: LECLERC +1 s at Monza (2nd, 0.485 s ahead of VERSTAPPEN, 0.868 s of
# NORRIS, 1.296 s of PIASTRI) -> 4th: VERSTAPPEN 2nd 8+1 (fastest lap), NORRIS 3rd 6,
# LECLERC 4th 5, PIASTRI 5th 4. Imola sprint: VER 3, PIA 2; race: NOR 10, PIA 8+1, VER 6,
# LEC 3. Spa: PIA 10, NOR 8, LEC 6, VER 4+1. PIASTRI -3 points (deducted).
#              Monza Imola Spa  dropped      total
# NORRIS         6    10    8   Monza (6)    18
# PIASTRI        4    11   10   Monza (4)    21 - 3 = 18
# VERSTAPPEN     9     9    5   Spa (5)      18
# LECLERC        5     3    6   Imola (3)    11
# Three tied on 18; count-back on race places: NORRIS 1st, 2nd, 3rd; PIASTRI 1st, 2nd, 5th;
# VERSTAPPEN 2nd, 3rd, 5th -> NORRIS, PIASTRI, VERSTAPPEN (by name it would be NOR, VER, PIA).
EXPECTED = [
    ("Lando NORRIS", 18, {"Monza": 6, "Imola": 10, "Spa": 8}, ["Monza"], 0),
    ("Oscar Piastri", 18, {"Monza": 4, "Imola": 11, "Spa": 10}, ["Monza"], 3),
    ("Max VERSTAPPEN", 18, {"Monza": 9, "Imola": 9, "Spa": 5}, ["Spa"], 0),
    ("Charles LECLERC", 11, {"Monza": 5, "Imola": 3, "Spa": 6}, ["Imola"], 0),
]
# Teams: every round, less deductions: McLaren 24 + 25 - 3, Red Bull 23, Ferrari 14.
TEAMS = [("McLaren", 46), ("Red Bull", 23), ("Ferrari", 14)]


def league_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modules.cli", "league", *args],
        capture_output=True, text=True, timeout=60, check=check,
    )  # fmt: skip


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    directory = tmp_path_factory.mktemp("league")
    store = Store(directory / "laps.sqlite3")
    timer = LapTimer(store, PointsRules())
    for uid, seed, laps, _, _ in SESSIONS:
        Game(timer, SessionOptions(rate=10, laps=laps, cars=20, seed=seed), uid=uid).run()
        timer.flush()
    reports = {uid: timer.get_report(str(uid)) for uid, *_ in SESSIONS}
    store.close()
    league = directory / "league.toml"
    league.write_text(LEAGUE)
    return directory, league, reports


def test_the_races_went_as_the_hand_table_assumes(season):
    _, _, reports = season
    for uid, places in PLACES.items():
        rows = reports[uid]["classification"]
        got = {
            r["driver"].split()[-1]: r["position"]
            for r in rows
            if r["driver"].split()[-1] in places
        }
        assert got == places, uid
        assert all(r["status"] == "finished" for r in rows if r["driver"].split()[-1] in places)
    for uid, holder in FASTEST.items():
        assert reports[uid]["fastest_lap"]["driver"].endswith(holder)


def test_three_rounds_a_penalty_a_dropped_round_and_a_countback(season):
    directory, league, _ = season
    db = str(directory / "laps.sqlite3")
    for uid, _, _, round_name, kind in SESSIONS:
        league_cli("attach", str(league), round_name, str(uid), "--kind", kind, "--db", db)
    # The same session again: refused, naming where it already is; nothing changes.
    again = league_cli("attach", str(league), "Spa", "101", "--db", db, check=False)
    assert again.returncode == 1 and "already attached to round 'Monza'" in again.stderr

    def table() -> dict:
        return json.loads(league_cli("standings", str(league), "--format", "json").stdout)

    before = table()
    # Before the stewards: LECLERC 2nd at Monza (8), VERSTAPPEN 3rd (6 + 1), NORRIS 4th (5).
    assert [(d["driver"], d["points"]) for d in before["drivers"]] == [
        ("Oscar Piastri", 21), ("Lando NORRIS", 18), ("Max VERSTAPPEN", 16),
        ("Charles LECLERC", 14),
    ]  # fmt: skip
    league_cli(
        "decide", str(league), "Monza", "Charles LECLERC", "--time-penalty", "1",
        "--by", "Chief Steward", "--why", "track limits, gained a lasting advantage",
    )  # fmt: skip
    league_cli(
        "decide", str(league), "Spa", "Oscar Piastri", "--points", "3",
        "--by", "Chief Steward", "--why", "dangerous rejoin",
    )  # fmt: skip
    listed = league_cli("decisions", str(league)).stdout.splitlines()
    decisions = [json.loads(line) for line in listed]
    assert [(d["driver"], d["kind"], d["value"], d["by"]) for d in decisions] == [
        ("Charles LECLERC", "time_penalty", 1, "Chief Steward"),
        ("Oscar Piastri", "points", 3, "Chief Steward"),
    ]
    assert all(d["at"] and d["why"] for d in decisions)

    after = table()
    got = [
        (d["driver"], d["points"], d["rounds"], d["dropped"], d["deducted"])
        for d in after["drivers"]
    ]
    assert got == EXPECTED
    assert [(t["team"], t["points"]) for t in after["teams"]] == TEAMS
    monza = next(s for s in after["sessions"] if s["round"] == "Monza")
    assert [r["driver"] for r in monza["order"]] == [
        "Max VERSTAPPEN", "Lando NORRIS", "Charles LECLERC", "Oscar Piastri",
    ]  # fmt: skip
    text = league_cli("standings", str(league)).stdout
    assert "Test League: after 3 of 3 rounds" in text and "(6)" in text


BAD = {
    "unknown key": (
        'name = "L"\n[[rounds]]\nname = "R1"\n[[drivers]]\nname = "A"\nnmae = "B"\n',
        6,
        "unknown key 'nmae'",
    ),
    "duplicate driver": (
        'name = "L"\n[[rounds]]\nname = "R1"\n[[drivers]]\nname = "A"\n[[drivers]]\nname = "a"\n',
        7,
        "duplicate driver 'a'",
    ),
    "points table shape": (
        'name = "L"\n[points]\nrace = [25, "x"]\n[[rounds]]\nname = "R1"\n'
        '[[drivers]]\nname = "A"\n',
        3,
        "points.race",
    ),
    "points table order": (
        'name = "L"\n[points]\nsprint = [1, 8]\n[[rounds]]\nname = "R1"\n[[drivers]]\nname = "A"\n',
        2,
        "descending",
    ),
    "session attached twice": (
        'name = "L"\n[[rounds]]\nname = "R1"\nsessions = [{uid = "7"}]\n[[rounds]]\n'
        'name = "R2"\nsessions = [{uid = "7", kind = "race"}]\n[[drivers]]\nname = "A"\n',
        7,
        "session 7 is attached twice",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_league_files_name_the_line_and_store_nothing(case, tmp_path):
    text, line, message = BAD[case]
    with pytest.raises(LeagueFileError) as error:
        parse_league(text, "bad.toml")
    assert f"bad.toml:{line}:" in str(error.value) and message in str(error.value)
    league = tmp_path / "bad.toml"
    league.write_text(text)
    done = league_cli(
        "attach", str(league), "R1", "1", "--db", str(tmp_path / "none.sqlite3"), check=False
    )
    assert done.returncode == 1 and f"bad.toml:{line}:" in done.stderr
    assert not (tmp_path / "bad.sqlite3").exists()  # nothing stored

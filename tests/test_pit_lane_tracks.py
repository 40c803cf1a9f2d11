"""Tracks whose pit lane crosses the timing line (or lies wholly inside one lap): the real
simulator's packets through the real decoder core into the lap timer; every lap, stint and pit
stop equal to the simulator's TRUTH. Where the line cuts the lane decides which lap holds the
stop, which lap ends in the pit lane, and which set of tyres a lap counts for."""

from __future__ import annotations

import pytest
from test_lap_timer_truth import RATE, Game, check_against_truth, check_race_result

from modules.game_sim.race import SessionOptions
from modules.game_sim.tracks import TRACKS
from modules.lap_timer.points import PointsRules
from modules.lap_timer.store import Store
from modules.lap_timer.timer import LapTimer

BOX_BEFORE_LINE = ("melbourne", "montreal")
LANE_INSIDE_LAP = ("lusail",)
LINE_AT_ENTRY = ("monaco",)


@pytest.fixture
def timer(tmp_path):
    store = Store(tmp_path / "pit_lane.sqlite3")
    yield LapTimer(store, PointsRules())
    store.close()


def stints_of(laps: list[dict]) -> list[list]:
    """[compound, last lap] per set of tyres, from the lap timer's laps alone: a set ends with
    an in-lap that ends in the pit lane, or just before a lap that both comes in and goes out."""
    runs: list[list[dict]] = [[]]
    for lap in sorted(laps, key=lambda lap: lap["lap"]):
        if lap["pit_in"] and lap["pit_out"] and runs[-1]:
            runs.append([])
        runs[-1].append(lap)
        if lap["pit_in"] and not lap["pit_out"]:
            runs.append([])
    stints = []
    for run in filter(None, runs):
        assert len({lap["tyre"] for lap in run}) == 1, run  # one compound per set
        stints.append([run[0]["tyre"], run[-1]["lap"]])
    return stints


def check_stints_and_stops(timer: LapTimer, truth: dict, table: dict) -> None:
    laps = timer.get_laps(session_uid=truth["session_uid"])
    stops = {row["car_index"]: row["pit_stops"] for row in table["rows"]}
    for car in truth["cars"]:
        mine = [lap for lap in laps if lap["car_index"] == car["car_index"]]
        assert stints_of(mine) == car["stint_ends"], car["driver"]
        assert stops[car["car_index"]] == car["pit_stop_count"]


@pytest.mark.parametrize("track", [*BOX_BEFORE_LINE, *LANE_INSIDE_LAP, *LINE_AT_ENTRY])
def test_race_at_a_track_whose_pit_lane_meets_the_line_differently(timer, track):
    options = SessionOptions(
        track=track, rate=RATE, laps=3, cars=20, seed=3, retirements=1, safety_car=True
    )
    game = Game(timer, options, uid=0x9170_0000 + TRACKS[track].track_id)
    game.run()
    truth = game.sim.truth()
    geometry = TRACKS[track]
    laps = [lap for car in truth["cars"] for lap in car["laps"]]
    stopped = [lap for lap in laps if lap["pit_in"]]
    assert len(stopped) >= 15, "most cars must stop for this test to mean much"
    if track in LANE_INSIDE_LAP:
        assert not geometry.lane_crosses_line
        assert all(lap["pit_out"] for lap in stopped)  # in and out within the one lap
    else:
        assert geometry.lane_crosses_line
        assert not any(lap["pit_out"] for lap in stopped)
        assert geometry.box_before_line == (track in BOX_BEFORE_LINE)
    table = check_against_truth(timer, truth)
    check_race_result(table, truth)
    check_stints_and_stops(timer, truth, table)
    assert timer.status()["history_corrections"] == 0


def test_qualifying_out_of_the_garage_where_the_boxes_are_before_the_line(timer):
    options = SessionOptions(
        track="melbourne", session="qualifying", rate=RATE, laps=1, cars=20, seed=2
    )
    game = Game(timer, options, uid=0x9170_0A11)
    game.run()
    truth = game.sim.truth()
    table = check_against_truth(timer, truth)
    assert [row["car_index"] for row in table["rows"]] == truth["final_order"]
    # The garage-out lap is a whole lap, not the few metres to the line.
    out_laps = [car["laps"][0] for car in truth["cars"]]
    assert all(lap["pit_out"] for lap in out_laps)
    assert min(lap["lap_time_ms"] for lap in out_laps) > 0.9 * 80_000

"""The session report against the simulator's TRUTH: the real simulator's packets through the
real decoder core into the lap timer (as test_lap_timer_truth.py), for a race with pit stops,
penalties (time, drive-through, stop-go, warnings), a retirement and a late joiner."""

from __future__ import annotations

import pytest
from test_lap_timer_truth import RATE, Game

from modules.f1_udp.appendix import (
    ACTUAL_COMPOUND_NAMES,
    INFRINGEMENT_NAMES,
    PENALTY_TYPE_NAMES,
    RESULT_REASON_NAMES,
)
from modules.game_sim.race import SessionOptions
from modules.lap_timer.points import PointsRules
from modules.lap_timer.store import Store, read_report
from modules.lap_timer.timer import LapTimer

FRAME_MS = 1000 // RATE  # LapData's pit timers are read once a frame


@pytest.fixture(scope="module")
def raced(tmp_path_factory):
    db = tmp_path_factory.mktemp("report") / "report.sqlite3"
    store = Store(db)
    timer = LapTimer(store, PointsRules())
    options = SessionOptions(
        rate=RATE, laps=5, cars=20, seed=3, retirements=1, penalties=3, late_joiners=1,
        used_sets=4,
    )  # fmt: skip
    game = Game(timer, options, uid=0x5EED_0019)
    game.run()
    timer.flush()
    truth = game.sim.truth()
    yield timer.get_report(), truth, db
    store.close()


def test_the_race_has_what_the_report_is_about(raced):
    _, truth, _ = raced
    cars = truth["cars"]
    assert [c["status"] for c in cars].count("dnf") == 1
    assert any(c["late_joiner"] for c in cars)
    kinds = {v["kind"] for c in cars for v in c["pit_stops"]}
    assert kinds == {"tyres", "drive_through", "stop_go"}
    assert any(c["penalty_s"] for c in cars)
    # Some cars start on a used set: the first stint's tyre age is not always 0.
    assert {c["stints"][0]["tyre_age_at_start"] for c in cars} == {0, 3}


def test_grid_and_classification_equal_truth(raced):
    report, truth, _ = raced
    check_classification(report, truth)


def test_stints_pit_stops_and_penalties_equal_truth(raced):
    report, truth, _ = raced
    check_stints_stops_penalties(report, truth)


def check_classification(report: dict, truth: dict) -> None:
    by_car = {c["car_index"]: c for c in truth["cars"]}
    assert report["final"] is True
    grid = sorted((c["grid_position"], c["car_index"]) for c in truth["cars"] if c["grid_position"])
    assert [(g["position"], g["car_index"]) for g in report["grid"]] == grid
    rows = report["classification"]
    assert [r["car_index"] for r in rows] == truth["final_order"]
    for row in rows:
        car = by_car[row["car_index"]]
        expected_status = {"finished": "finished", "dnf": "DNF"}[car["status"]]
        assert row["status"] == expected_status
        assert row["laps"] == len(car["laps"])
        assert row["grid_position"] == (car["grid_position"] or None)
        assert row["total_time_ms"] == car["total_time_ms"]
        assert row["penalty_s"] == car["penalty_s"]
        assert row["laps_led"] == car["laps_led"], row["driver"]
        assert row["best_lap_ms"] == (car["best_lap_ms"] or None)
        if car["status"] == "dnf":
            assert row["reason"] == RESULT_REASON_NAMES[car["result_reason"]]
    winner = rows[0]
    for row in rows[1:]:
        if row["laps"] == winner["laps"]:
            expected = row["time_with_penalties_ms"] - winner["time_with_penalties_ms"]
            assert row["gap_ms"] == expected >= 0
        else:
            assert row["gap_laps"] == winner["laps"] - row["laps"]


def check_stints_stops_penalties(report: dict, truth: dict) -> None:
    rows = {r["car_index"]: r for r in report["classification"]}
    for car in truth["cars"]:
        row = rows[car["car_index"]]
        fields = ("visual", "start_lap", "end_lap", "tyre_age_at_start")
        stints = [tuple(s[f] for f in fields) for s in row["stints"]]
        assert stints == [tuple(s[f] for f in fields) for s in car["stints"]], row["driver"]
        assert [s["compound"] for s in row["stints"]] == [
            ACTUAL_COMPOUND_NAMES[s["compound"]] for s in car["stints"]
        ]
        mine, true = row["pit_stops"], car["pit_stops"]
        assert [(s["lap"], s["kind"]) for s in mine] == [(s["lap"], s["kind"]) for s in true]
        for got, want in zip(mine, true, strict=True):
            # The game states the pit-lane timers once a frame: exact to a frame.
            assert abs(got["pit_lane_ms"] - want["pit_lane_ms"]) <= FRAME_MS
            assert abs(got["stationary_ms"] - want["stationary_ms"]) <= FRAME_MS
        issued = [
            (p["penalty_type"], p["infringement"], p["lap"])
            for p in row["penalties"]
            if p["kind"] != "lap invalidated" and p["kind"] != "served"
        ]
        assert issued == [
            (p["penalty_type"], p["infringement"], p["lap"])
            for p in car["penalties"]
            if "served" not in p
        ]
        served = [(p["served"], p["lap"]) for p in row["penalties"] if p["kind"] == "served"]
        assert served == [(p["served"], p["lap"]) for p in car["penalties"] if "served" in p]
        assert row["warnings"] == sum(p.get("penalty_type") == 5 for p in car["penalties"])
    listed = report["penalties"]
    timed = next(p for p in listed if p.get("penalty_type") == 4)
    assert timed["what"] == PENALTY_TYPE_NAMES[4] and timed["time_s"] == 5
    assert timed["for"] == INFRINGEMENT_NAMES[7]


def test_report_is_stored_final_in_sqlite(raced):
    report, _, db = raced
    stored = read_report(db)
    assert stored["final"] is True
    assert stored["classification"] == report["classification"]

"""The race model alone: no sockets, no packets."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from modules.game_sim.race import RaceSim, SessionOptions
from modules.game_sim.tracks import TRACKS


def run(options: SessionOptions) -> tuple[RaceSim, list]:
    sim = RaceSim(options)
    events = []
    while not sim.over:
        events += sim.step()
    return sim, events


@pytest.fixture(scope="module")
def race():
    return run(SessionOptions(cars=22, laps=3, seed=7, retirements=1, safety_car=True))


def test_a_22_car_3_lap_race_runs_to_the_flag(race):
    sim, events = race
    truth = sim.truth()
    assert truth["finished"] and truth["total_laps"] == 3 and len(truth["cars"]) == 22
    codes = [event.code for event in events]
    assert codes[0] == "SSTA" and codes[-1] == "SEND"
    assert codes.index("LGOT") > codes.index("STLG")
    assert codes.index("CHQF") < codes.index("FINAL") < codes.index("SEND")
    statuses = Counter(car["status"] for car in truth["cars"])
    assert statuses == {"finished": 21, "dnf": 1}
    winner = truth["cars"][truth["final_order"][0]]
    assert len(winner["laps"]) == 3 and winner["position"] == 1


def test_lap_and_sector_times_add_up(race):
    sim, _ = race
    for car in sim.truth()["cars"]:
        for lap in car["laps"]:
            assert sum(lap["sector_ms"]) == lap["lap_time_ms"]
            assert all(ms > 0 for ms in lap["sector_ms"])
        assert [lap["lap"] for lap in car["laps"]] == list(range(1, len(car["laps"]) + 1))


def test_lap_times_look_like_monza():
    sim, _ = run(SessionOptions(cars=20, laps=3, seed=8, rate=10))
    clean = [
        lap["lap_time_ms"]
        for car in sim.truth()["cars"]
        for lap in car["laps"]
        if lap["lap"] > 1 and not (lap["pit_in"] or lap["pit_out"])
    ]
    # The reference lap is 82 s; the field spreads over a second or three, not ten.
    assert 81_000 < min(clean) < 83_500 and max(clean) < 86_000


def test_every_finisher_pits_once_and_changes_tyres(race):
    sim, _ = race
    for car in sim.truth()["cars"]:
        if car["status"] != "finished":
            continue
        laps = car["laps"]
        in_laps = [lap["lap"] for lap in laps if lap["pit_in"]]
        out_laps = [lap["lap"] for lap in laps if lap["pit_out"]]
        assert len(in_laps) == 1 and out_laps == [in_laps[0] + 1]
        assert laps[in_laps[0] - 1]["tyre"] != laps[out_laps[0] - 1]["tyre"]


def test_final_order_ranks_laps_then_finish_time(race):
    sim, _ = race
    truth = sim.truth()
    order = truth["final_order"]
    cars = {car.index: car for car in sim.cars}
    finishers = [i for i in order if cars[i].status == "finished"]
    keys = [(-cars[i].completed, cars[i].finish_s) for i in finishers]
    assert keys == sorted(keys)
    assert cars[order[-1]].status == "dnf"
    assert [truth["cars"][i]["position"] for i in order] == list(range(1, 23))


def test_retirement_and_safety_car_happen_and_are_announced(race):
    sim, events = race
    codes = [event.code for event in events]
    retired = [car.index for car in sim.cars if car.status == "dnf"]
    assert [e.details["vehicleIdx"] for e in events if e.code == "RTMT"] == retired
    safety = [e.details["eventType"] for e in events if e.code == "SCAR"]
    assert safety == [0, 1, 3]  # deployed, returning, resume race
    assert codes.index("RTMT") <= codes.index("SCAR")
    assert sim.safety_car_periods == 1


def test_overtakes_happen_and_positions_change(race):
    sim, events = race
    assert any(e.code == "OVTK" for e in events)
    moved = [
        car for car in sim.cars if car.status == "finished" and car.position != car.grid_position
    ]
    assert moved


def test_fastest_lap_events_track_the_session_best(race):
    sim, events = race
    fastest = [e.details for e in events if e.code == "FTLP"]
    times = [d["lapTime"] for d in fastest]
    assert times == sorted(times, reverse=True)
    best = min(
        lap["lap_time_ms"]
        for car in sim.truth()["cars"]
        for lap in car["laps"]
        if lap["valid"] and not lap["pit_out"]
    )
    assert round(times[-1] * 1000) == best


def test_invalid_laps_occur_and_are_announced():
    sim, events = run(SessionOptions(cars=20, laps=4, seed=3, rate=10))
    invalid = [
        (car["car_index"], lap["lap"])
        for car in sim.truth()["cars"]
        for lap in car["laps"]
        if not lap["valid"]
    ]
    penalties = [(e.details["vehicleIdx"], e.details["lapNum"]) for e in events if e.code == "PENA"]
    assert invalid
    assert set(invalid) <= set(penalties)


def test_same_seed_same_race_other_seed_other_race():
    options = SessionOptions(cars=20, laps=1, seed=11, rate=10)
    first, _ = run(options)
    second, _ = run(SessionOptions(**vars(options)))
    other, _ = run(SessionOptions(**{**vars(options), "seed": 12}))
    assert first.truth() == second.truth()
    assert first.truth()["cars"] != other.truth()["cars"]


def test_qualifying_orders_by_best_lap():
    sim, events = run(SessionOptions(session="qualifying", cars=20, laps=2, seed=5, rate=10))
    truth = sim.truth()
    assert truth["session_type"] == "qualifying" and truth["finished"]
    best = {}
    for car in truth["cars"]:
        assert car["laps"][0]["pit_out"]  # the out-lap from the garage
        flying = [lap["lap_time_ms"] for lap in car["laps"][1:] if lap["valid"]]
        best[car["car_index"]] = min(flying) if flying else 10**9
    order = truth["final_order"]
    assert [best[i] for i in order] == sorted(best[i] for i in order)
    assert "SSTA" in [e.code for e in events] and "LGOT" not in [e.code for e in events]


def test_time_trial_is_one_car():
    sim, _ = run(SessionOptions(session="time_trial", laps=2, seed=5, rate=10))
    truth = sim.truth()
    assert len(truth["cars"]) == 1 and len(truth["cars"][0]["laps"]) == 3  # out-lap + 2 flying


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cars": 19}, "cars must be 20 or 22"),
        ({"rate": 5}, "rate must be 10..120"),
        ({"laps": 0}, "laps must be 1..99"),
        ({"session": "sprint"}, "session must be one of"),
        ({"track": "nowhere"}, "unknown track"),
        ({"retirements": 10}, "retirements must be"),
    ],
)
def test_bad_options_are_refused_clearly(change, message):
    with pytest.raises(ValueError, match=message):
        RaceSim(SessionOptions(**change))


@pytest.mark.parametrize("name", sorted(TRACKS))
def test_tracks_are_closed_circuits_of_their_length(name):
    track = TRACKS[name]
    line = track.line
    steps = np.hypot(np.diff(line.x), np.diff(line.z))
    closing = np.hypot(line.x[0] - line.x[-1], line.z[0] - line.z[-1])
    assert abs(steps.sum() + closing - track.length_m) < 0.01 * track.length_m
    assert closing < 5.0
    assert abs(line.lap_tau - track.reference_lap_s) < 1e-6
    assert line.speed.min() > 60 / 3.6 and line.speed.max() < 360 / 3.6

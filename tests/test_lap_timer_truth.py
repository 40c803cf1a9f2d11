"""The lap timer against the game simulator's TRUTH: the real simulator's packets through the
real decoder core into the lap timer, in one process (the process-level run is in
test_lap_timer_e2e.py). Every lap and sector to the millisecond, order, status and points."""

from __future__ import annotations

import copy

import pytest

from modules.game_sim.broadcast import Broadcaster
from modules.game_sim.race import POINTS, RaceSim, SessionOptions, SimEvent
from modules.lap_timer.inputs import NUMERIC, STREAMS, Inputs
from modules.lap_timer.points import PointsRules
from modules.lap_timer.store import Store
from modules.lap_timer.timer import LapTimer
from modules.stream_catalogue import STREAMS as CATALOGUE
from modules.telemetry_decoder.core import Datagram, DecoderCore

SENDER = ("127.0.0.1", 20777)
PACKET_ID_OFFSET = 6  # packetFormat u16, gameYear, major, minor, packetVersion, then packetId
WANTED = {int(stream.packet_id) for name, stream in CATALOGUE.items() if name in STREAMS}
# 10 Hz, the game's slowest send rate, keeps these whole races quick; times are still exact.
RATE = 10


class Game:
    """A simulated session whose datagrams go through the decoder core into a LapTimer."""

    def __init__(self, timer: LapTimer, options: SessionOptions, uid: int, fmt: int = 2025):
        self.sim = RaceSim(options, session_uid=uid)
        self.broadcaster = Broadcaster(self.sim, fmt)
        self.timer = timer
        self.core = DecoderCore()
        self.inputs = Inputs(timer)
        for name in NUMERIC:
            self.inputs.set_channels(name, CATALOGUE[name].spec("test").labels)
        self.clock = 0.0
        self.final_classification: dict = {}

    def send(self, datagrams: list[bytes]) -> None:
        batch = []
        for data in datagrams:
            if data[PACKET_ID_OFFSET] not in WANTED:
                continue  # motion, telemetry...: the lap timer reads none of it
            self.clock += 1e-4
            batch.append(Datagram(data, SENDER, self.clock))
        samples = []
        for publication in self.core.feed(batch):
            if publication.stream not in STREAMS:
                continue
            values = publication.rows if publication.rows is not None else publication.objects
            if publication.stream == "raceplane.final_classification":
                self.final_classification = values[-1]
            samples += [(publication.stream, v) for v in values]
        assert self.inputs.handle_batch(samples) == []

    def run(self, until_s: float | None = None, send: bool = True) -> None:
        while not self.sim.over and (until_s is None or self.sim.time_s < until_s):
            datagrams = self.broadcaster.step()
            if send:
                self.send(datagrams)


@pytest.fixture
def timer(tmp_path):
    store = Store(tmp_path / "truth.sqlite3")
    yield LapTimer(store, PointsRules())
    store.close()


def check_against_truth(timer: LapTimer, truth: dict, from_lap: dict | None = None) -> dict:
    """Every lap of TRUTH equals the lap timer's; returns the standings for further checks."""
    uid = truth["session_uid"]
    mine = {(lap["car_index"], lap["lap"]): lap for lap in timer.get_laps(session_uid=uid)}
    expected = {}
    for car in truth["cars"]:
        for lap in car["laps"]:
            if lap["lap"] >= (from_lap or {}).get(car["car_index"], 0):
                expected[(car["car_index"], lap["lap"])] = lap
    assert sorted(mine) == sorted(expected)
    fields = ("lap_time_ms", "sector_ms", "valid", "pit_in", "pit_out", "tyre")
    wrong = {
        key: {f: (lap[f], mine[key][f]) for f in fields if lap[f] != mine[key][f]}
        for key, lap in expected.items()
        if any(lap[f] != mine[key][f] for f in fields)
    }
    assert wrong == {}
    return timer.get_standings(session_uid=uid)


def check_race_result(table: dict, truth: dict, points=POINTS) -> None:
    by_car = {car["car_index"]: car for car in truth["cars"]}
    rows = table["rows"]
    assert table["final"] is True
    assert [row["car_index"] for row in rows] == truth["final_order"]
    assert [row["status"] for row in rows] == [by_car[i]["status"] for i in truth["final_order"]]
    assert [row["laps"] for row in rows] == [len(by_car[i]["laps"]) for i in truth["final_order"]]
    expected_points = [
        points[p] if p < len(points) and by_car[i]["status"] == "finished" else 0
        for p, i in enumerate(truth["final_order"])
    ]
    assert [row["points"] for row in rows] == expected_points


def test_race_22_cars_pit_stops_invalid_laps_and_a_retirement(timer):
    options = SessionOptions(rate=RATE, laps=3, cars=22, retirements=1, seed=3)
    game = Game(timer, options, uid=0x1234_5678_9ABC)
    game.run()
    truth = game.sim.truth()
    laps = [lap for car in truth["cars"] for lap in car["laps"]]
    # The race really has what this test is about.
    assert any(lap["pit_in"] for lap in laps) and any(lap["pit_out"] for lap in laps)
    assert any(not lap["valid"] for lap in laps)
    assert [car["status"] for car in truth["cars"]].count("dnf") == 1
    table = check_against_truth(timer, truth)
    check_race_result(table, truth)
    assert table["session_type"] == "Race" and table["track"] == truth["track"]
    # The lap timer agreed with the game's own SessionHistory all along: nothing to correct.
    assert timer.status()["history_corrections"] == 0
    best = min(lap["lap_time_ms"] for lap in laps if lap["valid"])
    assert table["fastest_lap"]["lap_time_ms"] == best
    # And with the game's own FinalClassification: laps, best lap, pit stops per car.
    game_says = game.final_classification["classification_data"]
    for row in table["rows"]:
        entry = game_says[row["car_index"]]
        assert (row["laps"], row["best_lap_ms"] or 0, row["pit_stops"]) == (
            entry["num_laps"],
            entry["best_lap_time_ms"],
            entry["num_pit_stops"],
        )


def test_flashback_replaces_the_laps_after_it(timer):
    options = SessionOptions(rate=RATE, laps=2, cars=20, seed=5)
    game = Game(timer, options, uid=0xF1A5)
    game.run(until_s=100.0)  # into lap 2: every car has one lap done
    rewind = copy.deepcopy(game.broadcaster)
    game.run(until_s=190.0)  # the timeline the player throws away: lap 2 done by many cars
    undone = game.sim.truth()
    assert sum(len(car["laps"]) for car in undone["cars"]) > 20
    # Flashback to 100 s: the game announces it, then plays on from there, differently.
    back = rewind.sim
    details = {"flashbackFrameIdentifier": back.frame, "flashbackSessionTime": back.time_s}
    game.send([game.broadcaster.event(SimEvent("FLBK", details))])
    for car in back.cars:  # the replayed laps go differently
        car.lap_target_s *= 1.004
    game.broadcaster = rewind
    game.sim = back
    game.run()
    truth = back.truth()
    differs = [
        (car["car_index"], lap["lap"])
        for car, old in zip(truth["cars"], undone["cars"], strict=True)
        for lap, old_lap in zip(car["laps"], old["laps"], strict=False)
        if lap != old_lap
    ]
    assert differs, "the flashback must change some lap for this test to mean anything"
    check_race_result(check_against_truth(timer, truth), truth)


def test_new_session_after_an_abandoned_one(timer):
    first = Game(timer, SessionOptions(rate=RATE, laps=2, cars=20, seed=7), uid=0xAAAA)
    first.run(until_s=130.0)
    abandoned = first.sim.truth()
    # A restart is a new session (new sessionUID) from the first frame on.
    second = Game(timer, SessionOptions(rate=RATE, laps=2, cars=20, seed=8), uid=0xBBBB)
    second.core = first.core  # one decoder saw both
    second.run()
    truth = second.sim.truth()
    check_race_result(check_against_truth(timer, truth), truth)
    assert timer.status()["current_session"] == truth["session_uid"]
    old = check_against_truth(timer, abandoned)
    assert old["final"] is False and {row["status"] for row in old["rows"]} == {"running"}


def test_started_late_fills_earlier_laps_from_session_history(timer):
    # Format 2024: the fastest-lap point is in force.
    game = Game(timer, SessionOptions(rate=RATE, laps=3, cars=20, seed=11), uid=0x1A7E, fmt=2024)
    game.run(until_s=185.0, send=False)  # the lap timer was not listening yet: 2 laps
    joined = {car.index: car.lap for car in game.sim.cars}
    game.run()
    truth = game.sim.truth()
    # Laps from the one in progress at joining on: everything, pit and tyre included.
    table = check_against_truth_from(timer, truth, joined)
    # Earlier laps came from the game's SessionHistory: time, sectors and validity, and from
    # its tyre stints the compound and the pit stops.
    mine = {(lap["car_index"], lap["lap"]): lap for lap in timer.get_laps()}
    fields = ("lap_time_ms", "sector_ms", "valid", "pit_in", "pit_out", "tyre")
    filled = []
    for car in truth["cars"]:
        for lap in car["laps"][: joined[car["car_index"]] - 1]:
            got = mine[(car["car_index"], lap["lap"])]
            assert {f: got[f] for f in fields} == {f: lap[f] for f in fields}
            filled.append(lap)
    assert any(lap["pit_in"] for lap in filled), "a filled lap must be an in-lap to mean much"
    assert timer.status()["history_corrections"] > 0
    by_car = {car["car_index"]: car for car in truth["cars"]}
    fastest = min(
        (
            (lap["lap_time_ms"], car["car_index"])
            for car in truth["cars"]
            for lap in car["laps"]
            if lap["valid"]
        ),
    )[1]
    points = [
        POINTS[p] if p < len(POINTS) and by_car[i]["status"] == "finished" else 0
        for p, i in enumerate(truth["final_order"])
    ]
    holder = truth["final_order"].index(fastest)
    if holder < 10:
        points[holder] += 1
    assert [row["points"] for row in table["rows"]] == points


def check_against_truth_from(timer: LapTimer, truth: dict, joined: dict) -> dict:
    mine = timer.get_laps(session_uid=truth["session_uid"])
    live = {(lap["car_index"], lap["lap"]): lap for lap in mine}
    fields = ("lap_time_ms", "sector_ms", "valid", "pit_in", "pit_out", "tyre")
    for car in truth["cars"]:
        for lap in car["laps"][joined[car["car_index"]] - 1 :]:
            got = live[(car["car_index"], lap["lap"])]
            assert {f: got[f] for f in fields} == {f: lap[f] for f in fields}
    table = timer.get_standings(session_uid=truth["session_uid"])
    assert [row["car_index"] for row in table["rows"]] == truth["final_order"]
    return table


def test_qualifying_best_lap_order(timer):
    game = Game(
        timer, SessionOptions(rate=RATE, session="qualifying", laps=2, cars=20, seed=13), uid=0x0A11
    )
    game.run()
    truth = game.sim.truth()
    table = check_against_truth(timer, truth)
    assert table["session_type"] == "Short Qualifying"
    assert [row["car_index"] for row in table["rows"]] == truth["final_order"]
    assert all(row["points"] == 0 for row in table["rows"])


# ------------------------------------------------------------ the simulator's own hard cases


@pytest.fixture
def recorded(tmp_path):
    """A LapTimer whose published laps and standings are kept."""
    store = Store(tmp_path / "hard.sqlite3")
    out: dict[str, list] = {"laps": [], "standings": []}
    yield LapTimer(store, PointsRules(), out["laps"].append, out["standings"].append), out
    store.close()


def test_simulated_flashback_retracts_and_replaces_laps(recorded):
    timer, out = recorded
    # Back 15 s from 95 s: across the line of lap 1 for most of the field.
    options = SessionOptions(
        rate=RATE, laps=2, cars=22, seed=3, retirements=1, flashback_at_s=95.0, flashback_s=15.0
    )
    game = Game(timer, options, uid=0xF1A5_0002)
    game.run()
    truth = game.sim.truth()
    assert game.sim.flashbacks == 1
    check_race_result(check_against_truth(timer, truth), truth)
    # Laps were published in the timeline thrown away, then again from the flashback on.
    expected = {(c["car_index"], lap["lap"]): lap for c in truth["cars"] for lap in c["laps"]}
    replaced = [
        sample
        for sample in out["laps"]
        if sample["lap_time_ms"] != expected[(sample["car_index"], sample["lap"])]["lap_time_ms"]
    ]
    assert replaced, "the flashback must take back a published lap for this test to mean much"
    assert timer.status()["history_corrections"] == 0


def test_simulated_red_flag_queue_is_no_pit_stop(recorded):
    timer, out = recorded
    options = SessionOptions(
        rate=RATE, laps=3, cars=22, seed=4, retirements=1, red_flag_at_lap=2, safety_car=True
    )
    game = Game(timer, options, uid=0x4ED_F1A6)
    game.run()
    truth = game.sim.truth()
    assert game.sim.red_flag_periods == 1
    table = check_against_truth(timer, truth)
    check_race_result(table, truth)
    # Standings said so while it was out, and not after the restart.
    flags = [sample["red_flag"] for sample in out["standings"]]
    assert True in flags and flags[-1] is False
    by_car = {car["car_index"]: car for car in truth["cars"]}
    for row in table["rows"]:
        stops = sum(lap["pit_in"] for lap in by_car[row["car_index"]]["laps"])
        assert row["pit_stops"] == stops <= 1
    assert timer.status()["history_corrections"] == 0


def test_simulated_late_joiners_in_qualifying(recorded):
    # (In a race: the next test.)
    timer, _ = recorded
    options = SessionOptions(
        rate=RATE, session="qualifying", laps=1, cars=22, seed=2, late_joiners=3
    )
    game = Game(timer, options, uid=0x1A7E_0003)
    game.run()
    truth = game.sim.truth()
    table = check_against_truth(timer, truth)
    assert [row["car_index"] for row in table["rows"]] == truth["final_order"]
    by_car = {car["car_index"]: car for car in truth["cars"]}
    assert [row["driver"] for row in table["rows"]] == [
        by_car[i]["driver"] for i in truth["final_order"]
    ]
    assert all(row["points"] == 0 for row in table["rows"])
    late = [lap for lap in timer.get_laps() if lap["car_index"] >= 19]
    assert {lap["car_index"] for lap in late} == {19, 20, 21}
    assert all(lap["pit_out"] for lap in late if lap["lap"] == 1)
    assert timer.status()["history_corrections"] == 0


def test_late_joiners_flashback_and_red_flag_in_one_race_of_format_2026(recorded):
    timer, _ = recorded
    options = SessionOptions(
        rate=RATE,
        laps=3,
        cars=22,
        seed=6,
        retirements=2,
        safety_car=True,
        flashback_at_s=120.0,
        flashback_s=30.0,
        red_flag_at_lap=2,
        late_joiners=2,
    )
    game = Game(timer, options, uid=0xA11_2026, fmt=2026)
    game.run()
    truth = game.sim.truth()
    assert (game.sim.flashbacks, game.sim.red_flag_periods) == (1, 1)
    check_race_result(check_against_truth(timer, truth), truth)
    late = [lap for lap in timer.get_laps() if lap["car_index"] in (20, 21)]
    assert late and all(lap["pit_out"] for lap in late if lap["lap"] == 1)

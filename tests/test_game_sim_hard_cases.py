"""The simulator's hard cases as the game sends them: a flashback, a red flag, cars joining late.
Packets decoded with modules.f1_udp; TRUTH stays exact through each (a flashback rewinds it)."""

from __future__ import annotations

import itertools

import pytest

from modules.f1_udp.events import event_details
from modules.f1_udp.packets import PacketId, parse_packet
from modules.game_sim.broadcast import Broadcaster
from modules.game_sim.race import RaceSim, SessionOptions

RATE = 10  # the game's slowest rate keeps these whole sessions quick


def play(options: SessionOptions) -> tuple[RaceSim, list, list[dict]]:
    """Run a session; returns the sim, the parsed packets, and each frame's view of the model
    ({frame, time, queued: cars waiting in the pit lane, absent: cars not joined})."""
    sim = RaceSim(options, session_uid=0xC0FFEE)
    broadcaster = Broadcaster(sim)
    packets, frames = [], []
    while not sim.over:
        packets += [parse_packet(d) for d in broadcaster.step()]
        frames.append(
            {
                "frame": sim.frame,
                "time": sim.time_s,
                "queued": {car.index for car in sim.cars if car.queued},
                "racing": {
                    car.index
                    for car in sim.cars
                    if car.status == "running" and car.mode not in ("absent", "garage")
                },
                "absent": {car.index for car in sim.cars if car.mode == "absent"},
            }
        )
    return sim, packets, frames


def of_kind(packets: list, packet_id: int) -> list:
    return [p for p in packets if p["header"]["packetId"] == packet_id]


def events(packets: list, code: str) -> list:
    return [
        p for p in of_kind(packets, PacketId.EVENT) if bytes(p["eventStringCode"]) == code.encode()
    ]


def laps_of(truth: dict) -> dict[tuple[int, int], dict]:
    return {(car["car_index"], lap["lap"]): lap for car in truth["cars"] for lap in car["laps"]}


def test_flashback_rewinds_frame_time_and_truth_and_the_laps_go_differently():
    options = dict(rate=RATE, laps=2, cars=20, seed=5)
    rewound = SessionOptions(**options, flashback_at_s=100.0, flashback_s=12.0)
    sim, packets, _ = play(rewound)
    plain, _, _ = play(SessionOptions(**options))
    flbk = events(packets, "FLBK")
    assert len(flbk) == 1 and sim.flashbacks == 1
    details = event_details(flbk[0])
    back_to, back_frame = details["flashbackSessionTime"], details["flashbackFrameIdentifier"]
    assert back_to == pytest.approx(88.0, abs=1 / RATE)
    # Around it: frameIdentifier and session time go back, overallFrameIdentifier never does.
    lap_data = of_kind(packets, PacketId.LAP_DATA)
    headers = [
        (
            float(p["header"]["sessionTime"]),
            int(p["header"]["frameIdentifier"]),
            int(p["header"]["overallFrameIdentifier"]),
        )
        for p in lap_data
    ]
    steps_back = [(a, b) for a, b in itertools.pairwise(headers) if b[1] < a[1]]
    assert len(steps_back) == 1
    before, after = steps_back[0]
    assert before[0] >= 100.0 and after[0] == pytest.approx(back_to, abs=1e-4)
    assert after[1] == back_frame and after[2] == before[2] + 1
    overall = [h[2] for h in headers]
    assert overall == sorted(overall) and len(set(overall)) == len(overall)
    assert flbk[0]["header"]["frameIdentifier"] == back_frame
    # Laps finished in the seconds thrown away were finished again, differently: TRUTH is the
    # timeline that stayed, and it agrees with the packets the game sent after the flashback.
    truth, other = sim.truth(), plain.truth()
    assert laps_of(truth).keys() == laps_of(other).keys()
    redone = {
        key
        for key, lap in laps_of(truth).items()
        if lap["lap_time_ms"] != laps_of(other)[key]["lap_time_ms"]
    }
    assert redone, "the flashback must change a lap for this test to mean anything"
    final = lap_data[-1]["lapData"]["lastLapTimeInMS"]
    assert {car["car_index"]: int(final[car["car_index"]]) for car in truth["cars"]} == {
        car["car_index"]: car["laps"][-1]["lap_time_ms"] for car in truth["cars"]
    }
    # Deterministic for the seed, flashback included.
    again, _, _ = play(rewound)
    assert again.truth() == truth


def test_red_flag_queues_every_car_in_the_pit_lane_then_restarts_from_lights_out():
    sim, packets, frames = play(
        SessionOptions(rate=RATE, laps=3, cars=22, seed=3, retirements=1, red_flag_at_lap=2)
    )
    codes = [bytes(p["eventStringCode"]).decode() for p in of_kind(packets, PacketId.EVENT)]
    shown = codes.index("RDFL")
    restart = codes.index("LGOT", shown)
    assert codes[shown:restart].count("STLG") == 5 and "SEND" in codes[restart:]
    # Every car still racing waited in the pit lane at once.
    assert any(f["queued"] and f["queued"] == f["racing"] for f in frames)
    sessions = of_kind(packets, PacketId.SESSION)
    assert int(sessions[0]["numRedFlagPeriods"]) == 0
    assert int(sessions[-1]["numRedFlagPeriods"]) == 1
    # LapData says so: everybody in the pit lane (pitStatus 1) in one frame, not stopping.
    assert any(
        sum(int(s) == 1 for s in p["lapData"]["pitStatus"][:22]) >= 20
        for p in of_kind(packets, PacketId.LAP_DATA)
    )
    truth = sim.truth()
    assert truth["finished"]
    # The queue is no pit stop: each car's pit stops are its planned one at most.
    for car in truth["cars"]:
        assert sum(lap["pit_in"] for lap in car["laps"]) <= 1
        assert sum(lap["pit_out"] for lap in car["laps"]) <= 1
    # The lap that holds the wait is long; its time is still the difference of line crossings.
    longest = max(lap["lap_time_ms"] for lap in laps_of(truth).values())
    assert longest > 150_000
    for lap in laps_of(truth).values():
        assert sum(lap["sector_ms"]) == lap["lap_time_ms"]


@pytest.mark.parametrize("session", ["race", "qualifying"])
def test_late_joiners_are_empty_slots_until_they_join_then_leave_the_garage(session):
    laps = 3 if session == "race" else 2
    sim, packets, frames = play(
        SessionOptions(rate=RATE, session=session, laps=laps, cars=22, seed=2, late_joiners=3)
    )
    late = {19, 20, 21}
    assert frames[0]["absent"] == late and frames[-1]["absent"] == set()
    joined_at = {car: next(f["frame"] for f in frames if car not in f["absent"]) for car in late}
    assert min(joined_at.values()) > 10 * RATE  # well after the start
    for packet in of_kind(packets, PacketId.LAP_DATA):
        frame = int(packet["header"]["frameIdentifier"])
        for car in late:
            row = packet["lapData"][car]
            if frame < joined_at[car]:
                assert row.tobytes() == bytes(len(row.tobytes()))  # all zeros
            else:
                assert int(row["currentLapNum"]) >= 1
    counts = [int(p["numActiveCars"]) for p in of_kind(packets, PacketId.PARTICIPANTS)]
    assert counts[0] == 19 and counts[-1] == 22 and counts == sorted(counts)
    history_cars = {int(p["carIdx"]) for p in of_kind(packets, PacketId.SESSION_HISTORY)}
    assert late <= history_cars
    truth = sim.truth()
    assert truth["finished"]
    for car in truth["cars"]:
        if car["car_index"] in late:
            assert car["laps"] and car["laps"][0]["pit_out"]  # out of the garage
            assert car["status"] == "finished"
    assert sorted(truth["final_order"]) == list(range(22))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"flashback_at_s": 5.0, "flashback_s": 10.0}, "flashback_s"),
        ({"flashback_at_s": -1.0}, "flashback_at_s"),
        ({"red_flag_at_lap": 1}, "red_flag_at_lap"),
        ({"red_flag_at_lap": 3}, "red_flag_at_lap"),
        ({"red_flag_at_lap": 2, "session": "qualifying"}, "red_flag_at_lap"),
        ({"late_joiners": 11}, "late_joiners"),
        ({"late_joiners": 1, "session": "time_trial", "cars": 1}, "late_joiners"),
    ],
)
def test_bad_hard_case_options_are_refused_clearly(change, message):
    options = {"laps": 3, "cars": 22, **change}
    with pytest.raises(ValueError, match=message):
        RaceSim(SessionOptions(**options))

"""The whole chain as processes: game simulator -> UDP -> telemetry decoder -> LSL -> lap timer,
checked against the simulator's TRUTH: 22 cars, pit stops, invalid laps and a retirement."""

from __future__ import annotations

import socket

import numpy as np

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.testing import free_port, wait_until
from modules.game_sim.race import POINTS

# Frames the burst test pushes per chunk: the decoder's order holds across streams within that.
WINDOW = 30
FIELDS = ("lap_time_ms", "sector_ms", "valid", "pit_in", "pit_out", "tyre")


def client(port: int) -> ModuleClient:
    return ModuleClient("127.0.0.1", port, timeout=10).connect(retries=300, interval=0.05)


def test_simulated_race_through_decoder_and_lsl_equals_truth(spawn, tmp_path):
    udp, log = free_port(socket.SOCK_DGRAM), str(free_port())
    ports = {name: free_port() for name in ("decoder", "timer", "sim")}
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ports}  # noqa: SIM115
    common = ("--log-port", log)
    spawn(
        "modules.telemetry_decoder",
        *("--port", str(ports["decoder"]), "--udp-port", str(udp), *common),
        stdout=logs["decoder"],
    )
    spawn(
        "modules.lap_timer",
        *("--port", str(ports["timer"]), "--db", str(tmp_path / "laps.sqlite3"), *common),
        stdout=logs["timer"],
    )
    spawn(
        "modules.game_sim",
        *("--port", str(ports["sim"]), "--target-port", str(udp), *common),
        stdout=logs["sim"],
    )
    timer, sim = client(ports["timer"]), client(ports["sim"])
    wait_until(
        lambda: len(timer.request("STATUS")["inputs"]["connected"]) == 7,
        timeout=30,
        interval=0.2,
        message="the lap timer reading all seven decoder streams",
    )
    race = {"cars": 22, "laps": 3, "retirements": 1, "seed": 3, "rate": 10, "speed": 25}
    sim.request("START", race)
    wait_until(lambda: sim.request("STATUS")["finished"], timeout=120, interval=0.5)
    truth = sim.request("TRUTH")
    uid = truth["session_uid"]
    expected = {(c["car_index"], lap["lap"]): lap for c in truth["cars"] for lap in c["laps"]}

    def table() -> dict | None:
        standings = timer.request("GET_STANDINGS", {"session_uid": uid})
        laps = timer.request("GET_LAPS", {"session_uid": uid})
        return standings if standings["final"] and len(laps) == len(expected) else None

    standings = wait_until(table, timeout=30, interval=0.2, message="final standings, every lap")
    mine = {(lap["car_index"], lap["lap"]): lap for lap in timer.request("GET_LAPS")}
    assert sorted(mine) == sorted(expected)
    wrong = {
        key: [(f, lap[f], mine[key][f]) for f in FIELDS if lap[f] != mine[key][f]]
        for key, lap in expected.items()
    }
    assert {key: diff for key, diff in wrong.items() if diff} == {}
    assert any(lap["pit_in"] for lap in expected.values())
    assert any(not lap["valid"] for lap in expected.values())

    by_car = {car["car_index"]: car for car in truth["cars"]}
    rows = standings["rows"]
    assert [row["car_index"] for row in rows] == truth["final_order"]
    assert [row["driver"] for row in rows] == [by_car[i]["driver"] for i in truth["final_order"]]
    assert [row["status"] for row in rows] == [by_car[i]["status"] for i in truth["final_order"]]
    assert "dnf" in [row["status"] for row in rows]
    assert [row["points"] for row in rows] == [
        POINTS[p] if p < len(POINTS) and by_car[i]["status"] == "finished" else 0
        for p, i in enumerate(truth["final_order"])
    ]
    assert timer.request("STATUS")["inputs"]["lost"] == {}
    for closing in (timer, sim):
        closing.request("CLOSE")
        closing.close()


def check_laps(timer: ModuleClient, truth: dict) -> None:
    """The lap timer holds exactly TRUTH's laps of that session, every field equal."""
    expected = {(c["car_index"], lap["lap"]): lap for c in truth["cars"] for lap in c["laps"]}
    mine = {
        (lap["car_index"], lap["lap"]): lap
        for lap in timer.request("GET_LAPS", {"session_uid": truth["session_uid"]})
    }
    assert sorted(mine) == sorted(expected)
    wrong = {
        key: [(f, lap[f], mine[key][f]) for f in FIELDS if lap[f] != mine[key][f]]
        for key, lap in expected.items()
    }
    assert {key: diff for key, diff in wrong.items() if diff} == {}


def test_restart_then_late_joiners_flashback_and_red_flag_through_processes(spawn, tmp_path):
    udp, log = free_port(socket.SOCK_DGRAM), str(free_port())
    ports = {name: free_port() for name in ("decoder", "timer", "sim")}
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ports}  # noqa: SIM115
    common = ("--log-port", log)
    spawn(
        "modules.telemetry_decoder",
        *("--port", str(ports["decoder"]), "--udp-port", str(udp), *common),
        stdout=logs["decoder"],
    )
    timer_process = spawn(
        "modules.lap_timer",
        *("--port", str(ports["timer"]), "--db", str(tmp_path / "laps.sqlite3"), *common),
        stdout=logs["timer"],
    )
    spawn(
        "modules.game_sim",
        *("--port", str(ports["sim"]), "--target-port", str(udp), *common),
        stdout=logs["sim"],
    )
    timer, sim = client(ports["timer"]), client(ports["sim"])
    wait_until(
        lambda: len(timer.request("STATUS")["inputs"]["connected"]) == 7,
        timeout=30,
        interval=0.2,
        message="the lap timer reading all seven decoder streams",
    )
    sim.request("START", {"cars": 22, "laps": 3, "seed": 3, "rate": 10, "speed": 25})
    wait_until(lambda: sim.request("STATUS")["lap"] >= 2, timeout=60, interval=0.2)
    first = sim.request("STATUS")["session_uid"]
    # The player restarts: a new session on the same stream, this one with the hard cases.
    hard = {
        "seed": 6,
        "retirements": 1,
        "late_joiners": 2,
        "flashback_at_s": 120.0,
        "flashback_s": 30.0,
        "red_flag_at_lap": 2,
    }
    second = sim.request("RESTART", hard)["session_uid"]
    assert second != first
    wait_until(lambda: sim.request("STATUS")["finished"], timeout=180, interval=0.5)
    status = sim.request("STATUS")
    assert (status["session_uid"], status["flashbacks"]) == (second, 1)
    truth = sim.request("TRUTH")
    abandoned = sim.request("TRUTH", {"session_uid": first})
    assert not abandoned["finished"] and abandoned["cars"][0]["laps"]

    def final() -> dict | None:
        standings = timer.request("GET_STANDINGS", {"session_uid": second})
        laps = timer.request("GET_LAPS", {"session_uid": second})
        done = standings["final"] and len(laps) == sum(len(c["laps"]) for c in truth["cars"])
        return standings if done else None

    standings = wait_until(final, timeout=30, interval=0.2, message="final standings, every lap")
    check_laps(timer, truth)
    check_laps(timer, abandoned)
    by_car = {car["car_index"]: car for car in truth["cars"]}
    rows = standings["rows"]
    assert [row["car_index"] for row in rows] == truth["final_order"]
    assert [row["driver"] for row in rows] == [by_car[i]["driver"] for i in truth["final_order"]]
    assert [row["status"] for row in rows] == [by_car[i]["status"] for i in truth["final_order"]]
    assert [row["points"] for row in rows] == [
        POINTS[p] if p < len(POINTS) and by_car[i]["status"] == "finished" else 0
        for p, i in enumerate(truth["final_order"])
    ]
    assert standings["red_flag"] is False
    status = timer.request("STATUS")
    assert status["current_session"] == second and status["sessions"] == 2
    assert status["inputs"]["lost"] == {}
    # CLOSE ends the process by itself, finders and all.
    timer.request("CLOSE")
    timer.close()
    assert timer_process.wait(timeout=10) == 0
    sim.request("CLOSE")
    sim.close()


def test_a_burst_bigger_than_the_rings_loses_no_sample(spawn, tmp_path):
    """A whole race's decoder output, more LapData than a StreamWatcher ring holds, pushed into
    real outlets faster than a flat-out simulator makes it: none of it is lost."""
    from dareplane_utils.stream_watcher.outlets import encode_json, make_outlet, push_frames
    from modules.game_sim.broadcast import Broadcaster
    from modules.game_sim.race import RaceSim, SessionOptions
    from modules.lap_timer.feed import RING_SAMPLES
    from modules.lap_timer.inputs import LAP_DATA, NUMERIC, STREAMS
    from modules.stream_catalogue import STREAMS as CATALOGUE
    from modules.telemetry_decoder.core import Datagram, DecoderCore

    options = SessionOptions(cars=22, laps=3, seed=3, rate=15, retirements=1, red_flag_at_lap=2)
    sim = RaceSim(options, session_uid=0xB0_0057)
    broadcaster, core = Broadcaster(sim), DecoderCore()
    # Windows of WINDOW frames: per stream, its samples with the decoder's timestamps.
    windows: list[dict[str, tuple[list, list[float]]]] = []
    clock = 0.0
    steps = 0
    while not sim.over:
        if steps % WINDOW == 0:
            windows.append({})
        steps += 1
        batch = []
        for data in broadcaster.step():
            clock += 1e-5
            batch.append(Datagram(data, ("127.0.0.1", 20777), clock))
        for publication in core.feed(batch):
            if publication.stream in STREAMS:
                if publication.rows is not None:
                    rows = list(publication.rows)
                else:
                    rows = [[encode_json(obj)] for obj in publication.objects]
                kept = windows[-1].setdefault(publication.stream, ([], []))
                kept[0].extend(rows)
                kept[1].extend(publication.timestamps)
    truth = sim.truth()
    frames = sum(len(w[LAP_DATA][0]) for w in windows if LAP_DATA in w)
    assert frames > 1.3 * RING_SAMPLES[LAP_DATA]

    outlets = {
        name: make_outlet(CATALOGUE[name].spec("burst"), max_buffered=600) for name in STREAMS
    }
    port = free_port()
    spawn(
        "modules.lap_timer",
        *("--port", str(port), "--db", str(tmp_path / "laps.sqlite3")),
        *("--log-port", str(free_port())),
        stdout=open(tmp_path / "timer.log", "w"),  # noqa: SIM115
    )
    timer = client(port)
    wait_until(
        lambda: len(timer.request("STATUS")["inputs"]["connected"]) == len(STREAMS),
        timeout=30,
        interval=0.2,
        message="the lap timer reading every stream",
    )
    # Flat out, window after window: the lap timer's exact pull leaves a backlog in liblsl.
    for window in windows:
        for stream, (rows, stamps) in window.items():
            push_frames(outlets[stream], np.array(rows) if stream in NUMERIC else rows, stamps)
    wait_until(
        lambda: timer.request("STATUS")["inputs"]["samples"][LAP_DATA] == frames,
        timeout=120,
        interval=0.2,
        message="every LapData frame read",
    )
    inputs = timer.request("STATUS")["inputs"]
    assert inputs["lost"] == {} and inputs["rejected"] == {}

    def final() -> bool:
        # Every frame read is not every frame applied: on a loaded machine the work thread
        # may not have applied the session's first frame yet ("no session").
        try:
            return timer.request("GET_STANDINGS", {"session_uid": truth["session_uid"]})["final"]
        except ModuleError as error:
            if "no session" not in str(error):
                raise
            return False

    wait_until(final, timeout=120, interval=0.2, message="the final standings")
    check_laps(timer, truth)
    timer.request("CLOSE")
    timer.close()

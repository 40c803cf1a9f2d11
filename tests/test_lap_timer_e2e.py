"""The whole chain as processes: game simulator -> UDP -> telemetry decoder -> LSL -> lap timer,
checked against the simulator's TRUTH: 22 cars, pit stops, invalid laps and a retirement."""

from __future__ import annotations

import socket

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until
from modules.game_sim.race import POINTS

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

"""Results through processes: game simulator -> UDP -> decoder -> LSL -> lap timer (report in
SQLite) -> web bridge (/results, CSV, JSON, printable) and `raceplane results`; against TRUTH."""

from __future__ import annotations

import csv
import io
import json
import socket
import subprocess
import sys
import time
import urllib.request

from test_session_report import check_classification, check_stints_stops_penalties

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until


def client(port: int) -> ModuleClient:
    return ModuleClient("127.0.0.1", port, timeout=10).connect(retries=300, interval=0.05)


def get(url: str) -> tuple[int, str, float]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode(), time.perf_counter() - start


def test_race_report_through_processes_web_and_command(spawn, tmp_path):
    udp, log = free_port(socket.SOCK_DGRAM), str(free_port())
    ports = {name: free_port() for name in ("decoder", "timer", "sim", "bridge", "http")}
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ports}  # noqa: SIM115
    common = ("--log-port", log)
    db = tmp_path / "laps.sqlite3"
    spawn(
        "modules.telemetry_decoder",
        *("--port", str(ports["decoder"]), "--udp-port", str(udp), *common),
        stdout=logs["decoder"],
    )
    spawn(
        "modules.lap_timer",
        *("--port", str(ports["timer"]), "--db", str(db), *common),
        stdout=logs["timer"],
    )
    spawn(
        "modules.game_sim",
        *("--port", str(ports["sim"]), "--target-port", str(udp), *common),
        stdout=logs["sim"],
    )
    spawn(
        "modules.web_bridge",
        *("--port", str(ports["bridge"]), "--http-port", str(ports["http"]), *common),
        *("--lap-timer", f"127.0.0.1:{ports['timer']}"),
        stdout=logs["bridge"],
    )
    timer, sim = client(ports["timer"]), client(ports["sim"])
    wait_until(
        lambda: len(timer.request("STATUS")["inputs"]["connected"]) == 7,
        timeout=30,
        interval=0.2,
        message="the lap timer reading all seven decoder streams",
    )
    race = {
        "cars": 20, "laps": 5, "retirements": 1, "penalties": 3, "late_joiners": 1,
        "seed": 3, "rate": 10, "speed": 25,
    }  # fmt: skip
    sim.request("START", race)
    wait_until(lambda: sim.request("STATUS")["finished"], timeout=180, interval=0.5)
    truth = sim.request("TRUTH")
    uid = truth["session_uid"]
    laps = sum(len(c["laps"]) for c in truth["cars"])

    def final() -> dict | None:
        report = timer.request("GET_REPORT", {"session_uid": uid})
        done = report["final"] and sum(r["laps"] for r in report["classification"]) == laps
        return report if done else None

    report = wait_until(final, timeout=30, interval=0.2, message="the final report")
    check_classification(report, truth)
    check_stints_stops_penalties(report, truth)

    base = f"http://127.0.0.1:{ports['http']}"
    wait_until(lambda: get(f"{base}/api/results")[0] == 200, timeout=30, interval=0.2)
    status, text, _ = get(f"{base}/results?session_uid={uid}")
    assert status == 200 and truth["cars"][truth["final_order"][0]]["driver"] in text
    assert "drive through served" in text and "stop go served" in text
    rows = list(
        csv.DictReader(io.StringIO(get(f"{base}/api/results/report.csv?session_uid={uid}")[1]))
    )
    assert [r["driver"] for r in rows] == [truth["cars"][i]["driver"] for i in truth["final_order"]]
    stored = json.loads(get(f"{base}/api/results/report?session_uid={uid}")[1])
    assert stored["classification"] == report["classification"]
    assert "<table>" in get(f"{base}/results/print?session_uid={uid}")[1]

    # The command, from the database file (works with the lap timer gone too).
    done = subprocess.run(
        [sys.executable, "-m", "modules.cli", "results", uid, "--db", str(db), "--format", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert json.loads(done.stdout)["classification"] == report["classification"]
    missing = subprocess.run(
        [sys.executable, "-m", "modules.cli", "results", "nope", "--db", str(db)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 1 and "no report for session nope" in missing.stderr
    for closing in (timer, sim):
        closing.request("CLOSE")
        closing.close()

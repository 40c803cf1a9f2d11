"""Dareplane's control room (dp-control-room 0.1.2, with dareplane-utils 0.0.24, in its own
venv) starts Raceplane's demo modules the way it starts Dareplane modules, commands them, and
stops them.

Its launcher passes `--ip=127.0.0.1 --port=N` and the setup's kwargs as `--key=value`; the
modules run on our venv (`python_executable`). What it sends is checked through our own
client: the lap it added is on the lap timer's board, the race it started reaches the decoder.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until
from tests.peer_suites import REPO, dp_control_room_python


def _setup(tmp_path, ports: dict[str, int], udp_port: int) -> str:
    common = (
        f"kind = 'python'\ncwd = '{REPO}'\npython_executable = '{sys.executable}'\n"
        "ip = '127.0.0.1'\nretry_after_s = 0.25\nmax_connect_retries = 80\n"
    )
    log_port = free_port()  # nothing listens: the modules hold their records
    return (
        f"[modules]\n\n[modules.lap_timer]\n{common}port = {ports['lap_timer']}\n"
        "custom_entry_point = 'modules.lap_timer'\n"
        f"[modules.lap_timer.kwargs]\ndb = '{tmp_path / 'laps.sqlite3'}'\nlog_port = {log_port}\n\n"
        f"[modules.telemetry_decoder]\n{common}port = {ports['telemetry_decoder']}\n"
        "custom_entry_point = 'modules.telemetry_decoder'\n"
        f"[modules.telemetry_decoder.kwargs]\nudp_port = {udp_port}\nlog_port = {log_port}\n\n"
        f"[modules.game_sim]\n{common}port = {ports['game_sim']}\n"
        "custom_entry_point = 'modules.game_sim'\n"
        f"[modules.game_sim.kwargs]\ntarget_port = {udp_port}\nlog_port = {log_port}\n"
    )


@pytest.mark.timeout(300)
def test_dp_control_room_starts_drives_and_stops_our_modules(tmp_path):
    python = dp_control_room_python()
    ports = {name: free_port() for name in ("lap_timer", "telemetry_decoder", "game_sim")}
    udp_port = free_port(socket.SOCK_DGRAM)
    setup = tmp_path / "dp_setup.toml"
    setup.write_text(_setup(tmp_path, ports, udp_port))
    commands = tmp_path / "commands.json"
    lap = {"driver": "Ann", "team": "Red", "time": "1:23.456"}
    race = {"laps": 1, "cars": 20, "speed": 20}
    commands.write_text(
        json.dumps(
            [["lap_timer", f"ADD_LAP|{json.dumps(lap)}"], ["game_sim", f"START|{json.dumps(race)}"]]
        )
    )
    driver = subprocess.Popen(
        [python, str(REPO / "tests" / "dp_control_room_driver.py"), str(setup), str(commands)],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    report = None
    try:
        report = json.loads(driver.stdout.readline() or "null")
        assert report is not None, "the driver ended before it reported"
        for name in ports:
            assert report[name]["up"] is True, report
        assert {"ADD_LAP", "GET_STANDINGS", "STATUS"} <= set(report["lap_timer"]["pcomms"])
        assert "START" in report["game_sim"]["pcomms"]

        with ModuleClient("127.0.0.1", ports["lap_timer"], timeout=10).connect() as client:
            laps = wait_until(lambda: client.request("GET_LAPS"), message="the lap ADD_LAP added")
        assert [(one["driver"], one["team"]) for one in laps] == [("Ann", "Red")]
        with ModuleClient("127.0.0.1", ports["telemetry_decoder"], timeout=10).connect() as client:
            wait_until(
                lambda: client.request("STATUS")["received"] > 0,
                timeout=30,
                message="the race START began to reach the decoder",
            )

        driver.stdin.write("stop\n")
        driver.stdin.flush()
        exits = json.loads(driver.stdout.readline() or "null")
        # our modules take SIGTERM as CLOSE: a clean exit
        assert exits == {name: 0 for name in ports}
        for port in ports.values():
            with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), 1):
                pass
    finally:
        if driver.poll() is None:
            driver.kill()
        driver.wait(10)
        for started in (report or {}).values():  # a failed run must not leave modules behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(started["pid"], signal.SIGKILL)

"""`raceplane doctor`: every check passes on a free setup, and a held port fails with a fix."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.e2e_support import REPO, demo_setup


def doctor(setup: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modules.cli", "doctor", str(setup)],
        cwd=REPO,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_doctor_passes_every_check_with_the_stacks_own_lsl_config(tmp_path: Path) -> None:
    files = demo_setup(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("LSLAPICFG", "RACEPLANE_LSL_ISOLATED")}
    result = doctor(files.setup, env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    checks = {line.split()[1]: line.split()[0] for line in lines if line.startswith("  ")}
    assert checks == {name: "ok" for name in ("ports", "lsl", "udp", "disk", "log")}, lines
    assert "test outlet found and read" in result.stdout
    assert "made by the stack" in result.stdout
    assert "all good" in lines[-1]


def test_a_port_in_use_fails_with_a_fix(tmp_path: Path) -> None:
    files = demo_setup(tmp_path)
    with (
        socket.socket() as held,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_held,
    ):
        held.bind(("127.0.0.1", files.ports["lap_timer"]))
        held.listen()
        udp_held.bind(("0.0.0.0", files.udp_port))
        result = doctor(files.setup)
    assert result.returncode == 1, result.stdout
    out = result.stdout
    assert "FAIL  ports      in use: " in out
    assert f"lap_timer {files.ports['lap_timer']}/tcp" in out
    assert f"telemetry_decoder udp {files.udp_port}/udp" in out
    assert "FAIL  udp" in out
    assert out.count("fix: ") >= 2
    assert "2 problem(s): ports, udp" in out

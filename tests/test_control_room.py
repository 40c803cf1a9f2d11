"""The control room with real processes: start, status, send, macro, restart after kill -9,
health checks, remote modules, Dareplane modules, and shutdown leaving no process behind.

Each test runs `python -m modules.control_room SETUP` as a real process (as `raceplane up`
does) on free ports, with test modules from tests/control_room_module.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.testing import free_port, wait_until
from modules.control_room import commands
from modules.control_room.setup import parse_setup
from modules.control_room.supervisor import Managed

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def module_table(
    key: str, port: int, *, depends_on: tuple[str, ...] = (), extra: str = "", **kwargs: Any
) -> str:
    """A [modules.<key>] table running tests/control_room_module.py on `port`."""
    options = "".join(
        f"{name} = {json.dumps(value)}\n"
        for name, value in {"port": port, "name": key, **kwargs}.items()
    )
    return (
        f'[modules.{key}]\nkind = "external"\nentry = "control_room_module"\nprotocol = "json"\n'
        f'cwd = "{HERE}"\nport = {port}\ndepends_on = {json.dumps(list(depends_on))}\n{extra}'
        f"[modules.{key}.kwargs]\n{options}\n"
    )


def write_setup(tmp_path: Path, body: str, control: str = "") -> tuple[Path, int]:
    port = free_port()
    path = tmp_path / "setup.toml"
    path.write_text(
        f'[control_room]\nport = {port}\nlog_port = {free_port()}\nlog_file = "out/log.jsonl"\n'
        f'output_dir = "out"\ngrace_s = 0.5\nhealth_interval_s = 0.2\nhealth_failures = 2\n'
        f"{control}\n"
        f"[control_room.restart]\nmax_restarts = 2\nbackoff_s = 0.05\n\n{body}"
    )
    return path, port


def ask(port: int, cmd: str, payload: dict[str, Any] | None = None) -> Any:
    with ModuleClient("127.0.0.1", port, timeout=10).connect(retries=100, interval=0.05) as client:
        return client.request(cmd, payload)


def modules_of(port: int) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in ask(port, "STATUS")["modules"]}


def wait_states(
    port: int, wanted: dict[str, str], timeout: float = 30.0
) -> dict[str, dict[str, Any]]:
    def reached() -> dict[str, dict[str, Any]] | None:
        rows = modules_of(port)
        return rows if all(rows[key]["state"] == state for key, state in wanted.items()) else None

    return wait_until(reached, timeout=timeout, interval=0.05, message=f"states {wanted}")


def family(pid: int) -> list[int]:
    """A process and all its descendants, as pids."""
    try:
        process = psutil.Process(pid)
        return [pid, *(child.pid for child in process.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def output_of(process: subprocess.Popen) -> str:
    assert process.stdout is not None
    return process.stdout.read().decode(errors="replace")


def test_start_status_send_macro_restart_remote_and_down(tmp_path: Path, spawn, capsys) -> None:
    remote_port, alpha_port, beta_port = free_port(), free_port(), free_port()
    remote = spawn("tests.control_room_module", "--port", str(remote_port), "--name", "far")
    body = (
        module_table("alpha", alpha_port, child=True)
        + module_table("beta", beta_port, depends_on=("alpha",))
        + f'[modules.ghost]\nkind = "not_written_yet"\nport = {free_port()}\n\n'
        + f'[modules.far]\nkind = "remote"\nport = {remote_port}\n\n'
        + '[macros.hello]\ndefaults = { greeting = "hi" }\n'
        + '[[macros.hello.steps]]\nmodule = "alpha"\ncmd = "ECHO"\n'
        + 'payload = { text = "{greeting}", n = "{n}" }\n'
        + '[[macros.hello.steps]]\nmodule = "beta"\ncmd = "PID"\n'
    )
    setup, port = write_setup(tmp_path, body)
    room = spawn("modules.control_room", str(setup))
    rows = wait_states(
        port, {"log_server": "running", "alpha": "running", "beta": "running", "ghost": "failed"}
    )
    assert rows["far"]["state"] == "remote"
    wait_until(lambda: modules_of(port)["far"]["up"], message="remote module answering UP")
    # A module kind that does not exist yet fails alone, with a reason, and the rest runs.
    assert "'not_written_yet' is not a Raceplane module" in rows["ghost"]["error"]
    assert rows["alpha"]["pid"] and rows["alpha"]["memory_mb"] > 0 and rows["alpha"]["up"]
    pids = [pid for key in ("log_server", "alpha", "beta") for pid in family(rows[key]["pid"])]
    assert len(pids) >= 4  # alpha keeps a child of its own

    # A Dareplane control room's health check, byte for byte: banner, `UP;` -> `1`.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as legacy:
        assert legacy.recv(100).startswith(b"Connected to control_room")
        legacy.sendall(b"UP;")
        assert legacy.recv(10) == b"1"

    assert commands.status(["--port", str(port)]) == 0
    table = capsys.readouterr().out
    assert any(line.split()[:3] == ["alpha", "external", "running"] for line in table.splitlines())

    assert commands.send(["--port", str(port), "alpha", "ECHO", '{"lap": 3}']) == 0
    assert json.loads(capsys.readouterr().out) == {"lap": 3}
    assert commands.send(["--port", str(port), "far", "PID"]) == 0
    assert int(capsys.readouterr().out) == remote.pid
    assert commands.send(["--port", str(port), "nobody", "UP"]) == 1
    assert "unknown module 'nobody'" in capsys.readouterr().err
    assert commands.send(["--port", str(port), "alpha", "ECHO", "{lap: 3"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert commands.send(["--port", str(port), "alpha", "FAIL"]) == 1
    assert "asked to fail" in capsys.readouterr().err

    assert commands.macro(["--port", str(port), "hello", '{"n": 2}']) == 0
    assert capsys.readouterr().out.splitlines() == [
        "alpha ECHO: text=hi n=2",
        f"beta PID: {rows['beta']['pid']}",
    ]
    assert commands.macro(["--port", str(port), "--json", "hello", '{"n": 2}']) == 0
    steps = json.loads(capsys.readouterr().out)
    assert steps == [
        {"module": "alpha", "cmd": "ECHO", "result": {"text": "hi", "n": 2}},
        {"module": "beta", "cmd": "PID", "result": rows["beta"]["pid"]},
    ]
    assert commands.macro(["--port", str(port), "hello"]) == 1
    assert "missing parameter(s) n" in capsys.readouterr().err
    with pytest.raises(ModuleError, match="unknown macro 'nope'"):
        ask(port, "MACRO", {"name": "nope"})

    # kill -9: the supervisor restarts it and it answers UP again.
    os.kill(rows["alpha"]["pid"], signal.SIGKILL)
    restarted = wait_until(
        lambda: (
            (row := modules_of(port)["alpha"])["restarts"] == 1
            and row["state"] == "running"
            and row
        ),
        message="alpha restarted",
    )
    assert restarted["pid"] != rows["alpha"]["pid"] and restarted["last_exit"] == -signal.SIGKILL
    assert ask(alpha_port, "UP") == 1
    pids += family(restarted["pid"])

    # RESTART: a clean stop and start, not counted as a crash.
    assert ask(port, "RESTART", {"module": "beta"}) == {"restarting": "beta"}
    again = wait_until(
        lambda: (
            (row := modules_of(port)["beta"])["pid"] not in (None, rows["beta"]["pid"])
            and row["state"] == "running"
            and row
        ),
        message="beta restarted",
    )
    assert again["restarts"] == 0 and again["last_exit"] == 0  # it exited cleanly on CLOSE
    pids += family(again["pid"])

    assert commands.down(["--port", str(port)]) == 0
    assert "stack stopped" in capsys.readouterr().out
    assert room.wait(timeout=30) == 1  # ghost failed, and the exit status says so
    leftovers = [pid for pid in pids if not gone(pid)]
    assert not leftovers, f"processes left behind: {leftovers}"
    # A remote module was started by someone else: the stack stops its work, not the process.
    assert remote.poll() is None and ask(remote_port, "UP") == 1
    assert "no process left" in output_of(room)


def test_ctrl_c_ends_stubborn_modules_children_and_crash_loops(tmp_path: Path, spawn) -> None:
    body = (
        module_table("mule", free_port(), stubborn=True, child=True)
        + module_table("crasher", free_port(), exit_code=3)
        + module_table("fine", free_port(), extra="restart = false\n")
    )
    setup, port = write_setup(tmp_path, body, control="log_server = false")
    room = spawn("modules.control_room", str(setup))
    rows = wait_states(port, {"mule": "running", "fine": "running", "crasher": "failed"})
    crasher = rows["crasher"]
    # Two restarts allowed, then it is given up on, and says why.
    assert crasher["restarts"] == 2 and crasher["last_exit"] == 3
    assert "exited with code 3; 2 restarts did not help" in crasher["error"]
    assert "exiting with 3 as told" in (tmp_path / "out" / "crasher.out").read_text()

    # restart = false: a crash is final.
    os.kill(rows["fine"]["pid"], signal.SIGKILL)
    fine = wait_states(port, {"fine": "failed"})["fine"]
    assert fine["restarts"] == 0 and "restart is off" in fine["error"]

    # RESTART revives a failed module, with a fresh restart budget.
    assert ask(port, "RESTART", {"module": "crasher"}) == {"restarting": "crasher"}
    wait_until(lambda: modules_of(port)["crasher"]["restarts"] == 4, message="crasher revived")
    assert wait_states(port, {"crasher": "failed"})["crasher"]["last_exit"] == 3

    pids = family(rows["mule"]["pid"])
    assert len(pids) == 2
    room.send_signal(signal.SIGINT)
    assert room.wait(timeout=30) == 1
    leftovers = [pid for pid in pids if not gone(pid)]
    assert not leftovers, f"processes left behind: {leftovers}"
    text = output_of(room)
    assert "mule did not exit after SIGTERM: SIGKILL" in text
    assert "no process left" in text


def test_a_hung_module_is_killed_and_restarted(tmp_path: Path, spawn) -> None:
    setup, port = write_setup(
        tmp_path, module_table("sleepy", free_port()), control="log_server = false"
    )
    room = spawn("modules.control_room", str(setup))
    first = wait_states(port, {"sleepy": "running"})["sleepy"]
    os.kill(first["pid"], signal.SIGSTOP)  # alive, but answers nothing
    back = wait_until(
        lambda: (
            (row := modules_of(port)["sleepy"])["restarts"] == 1
            and row["state"] == "running"
            and row
        ),
        timeout=30,
        message="hung module restarted",
    )
    assert back["pid"] != first["pid"] and gone(first["pid"])
    assert back["last_exit"] == -signal.SIGKILL
    # A Dareplane control room ends a module with CLOSE; ours then ends its whole stack.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as legacy:
        legacy.sendall(b"CLOSE;")
        assert room.wait(timeout=30) == 0
    assert gone(back["pid"])
    assert "sleepy: no answer to 2 UP checks in a row: killing it" in output_of(room)


def test_modules_die_with_a_killed_control_room(tmp_path: Path, spawn) -> None:
    setup, port = write_setup(tmp_path, module_table("orphan", free_port(), child=True))
    room = spawn("modules.control_room", str(setup))
    rows = wait_states(port, {"orphan": "running", "log_server": "running"})
    pids = family(rows["orphan"]["pid"]) + family(rows["log_server"]["pid"])
    os.kill(room.pid, signal.SIGKILL)
    room.wait(timeout=10)
    # PR_SET_PDEATHSIG: each module gets SIGTERM from the kernel, and closes as on CLOSE.
    wait_until(lambda: all(gone(pid) for pid in pids), timeout=20, message="orphans gone")


def test_a_real_raceplane_module_gets_its_flags(tmp_path: Path, spawn, capsys) -> None:
    recorder_port = free_port()
    body = (
        f'[modules.rec]\nkind = "recorder"\nport = {recorder_port}\n'
        f'[modules.rec.kwargs]\nsave_path = "{tmp_path / "rec"}"\n'
        'streams = ["raceplane.nothing.*"]\n'
    )
    setup, port = write_setup(tmp_path, body)
    room = spawn("modules.control_room", str(setup))
    rec = wait_states(port, {"rec": "running", "log_server": "running"})["rec"]
    command = psutil.Process(rec["pid"]).cmdline()
    assert command[1:3] == ["-m", "modules.recorder"]
    joined = " ".join(command)
    assert f"--port {recorder_port}" in joined and f"--save-path {tmp_path / 'rec'}" in joined
    assert "--log-port" in joined and "--streams raceplane.nothing.*" in joined
    assert ask(port, "SEND", {"module": "rec", "cmd": "STATUS"})  # its own STATUS, through us
    room.send_signal(signal.SIGINT)
    assert room.wait(timeout=30) == 0
    assert gone(rec["pid"])


@pytest.mark.timeout(900)  # may first build the peer venv: see dareplane_python
def test_drives_a_module_built_on_dareplane_utils_0_0_24(
    tmp_path: Path, spawn, dareplane_python: Path
) -> None:
    python = dareplane_python
    marker = tmp_path / "marks.txt"
    dp_port = free_port()
    body = (
        f'[modules.dp]\nkind = "external"\nentry = "control_room_module"\npython = "{python}"\n'
        f'cwd = "{HERE}"\nport = {dp_port}\n'
        f'[modules.dp.kwargs]\nport = {dp_port}\nname = "dp"\nmarker = "{marker}"\n'
    )
    setup, port = write_setup(tmp_path, body, control="log_server = false")
    room = spawn("modules.control_room", str(setup))
    dp = wait_states(port, {"dp": "running"})["dp"]
    assert psutil.Process(dp["pid"]).exe().startswith(str(python.parent.parent))
    # Legacy commands have no reply; the marker file shows each one arrived, with its payload.
    assert (
        ask(port, "SEND", {"module": "dp", "cmd": "MARK", "payload": {"text": "lap one"}}) is None
    )
    assert ask(port, "SEND", {"module": "dp", "cmd": "GET_PCOMMS"})[-1] == "UP"
    assert marker.read_text() == "lap one\n"
    os.kill(dp["pid"], signal.SIGKILL)
    back = wait_until(
        lambda: (
            (row := modules_of(port)["dp"])["restarts"] == 1 and row["state"] == "running" and row
        ),
        message="dareplane module restarted",
    )
    room.send_signal(signal.SIGINT)
    assert room.wait(timeout=30) == 0
    assert gone(back["pid"])
    # It went on CLOSE, not on a signal: no escalation was needed.
    assert "did not exit after CLOSE" not in output_of(room)


def test_two_control_rooms_cannot_share_a_port(tmp_path: Path, spawn) -> None:
    setup, port = write_setup(
        tmp_path, module_table("solo", free_port()), control="log_server = false"
    )
    first = spawn("modules.control_room", str(setup))
    wait_states(port, {"solo": "running"})
    second = subprocess.run(
        [sys.executable, "-m", "modules.control_room", str(setup)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1 and "cannot listen" in second.stderr
    assert modules_of(port)["solo"]["state"] == "running"  # the first one is untouched
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=30) == 0


def test_a_crash_report_quotes_the_modules_own_log_records(tmp_path: Path) -> None:
    log_file = tmp_path / "log.jsonl"
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    records = [
        {"process": process.pid, "levelname": "INFO", "message": "starting"},
        {"process": process.pid + 1, "levelname": "INFO", "message": "someone else"},
        {"process": process.pid, "levelname": "ERROR", "message": "disk full"},
    ]
    log_file.write_text("half a line}\n" + "".join(json.dumps(r) + "\n" for r in records))
    spec = parse_setup('[modules.m]\nkind = "lap_timer"\nport = 1\n').modules["m"]
    managed = Managed(spec, ["unused"], tmp_path / "m.out")
    managed.process = process
    assert managed.log_tail(log_file) == "INFO starting\nERROR disk full"

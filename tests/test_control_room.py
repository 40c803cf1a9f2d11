"""The control room with real processes: start, status, send, macro, restart after kill -9,
health checks, remote modules, Dareplane modules, and shutdown leaving no process behind,
each in a test of its own.

Each test (or the `stack` several share) runs `python -m modules.control_room SETUP` as a real
process (as `raceplane up` does) on free ports, with test modules from
tests/control_room_module.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.testing import free_port, wait_until
from modules.control_room import commands
from modules.control_room.process import log_tail

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


@dataclass
class Stack:
    """A running control room with alpha (which keeps a child), beta (after alpha), a module
    kind that does not exist (ghost), a remote module (far) and the macro `hello`."""

    port: int
    alpha_port: int
    remote: subprocess.Popen


STACK_BODY = (
    '[macros.hello]\ndefaults = { greeting = "hi" }\n'
    '[[macros.hello.steps]]\nmodule = "alpha"\ncmd = "ECHO"\n'
    'payload = { text = "{greeting}", n = "{n}" }\n'
    '[[macros.hello.steps]]\nmodule = "beta"\ncmd = "PID"\n'
)


def stack_body(alpha_port: int, remote_port: int) -> str:
    return (
        module_table("alpha", alpha_port, child=True)
        + module_table("beta", free_port(), depends_on=("alpha",))
        + f'[modules.ghost]\nkind = "not_written_yet"\nport = {free_port()}\n\n'
        + f'[modules.far]\nkind = "remote"\nport = {remote_port}\n\n'
        + STACK_BODY
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack shared by the focused tests of this file that leave it running (the files
    run on one worker each: --dist loadfile); every test reads the state it needs from STATUS,
    so each also runs alone with -k."""
    tmp_path = tmp_path_factory.mktemp("stack")
    processes: list[subprocess.Popen] = []

    def start(name: str, module: str, *args: str) -> subprocess.Popen:
        # Output to a file: a pipe nobody reads while the tests run would fill and stall it.
        with open(tmp_path / f"{name}.stdout", "ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(process)
        return process

    remote_port, alpha_port = free_port(), free_port()
    remote = start("far", "tests.control_room_module", "--port", str(remote_port), "--name", "far")
    setup, port = write_setup(tmp_path, stack_body(alpha_port, remote_port))
    room = start("room", "modules.control_room", str(setup))
    try:
        wait_states(
            port,
            {"log_server": "running", "alpha": "running", "beta": "running", "ghost": "failed"},
        )
        wait_until(lambda: modules_of(port)["far"]["up"], message="remote module answering UP")
        yield Stack(port, alpha_port, remote)
    finally:
        room.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            room.wait(timeout=30)
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_a_stack_starts_and_a_missing_module_kind_fails_alone(stack: Stack) -> None:
    rows = modules_of(stack.port)
    assert rows["far"]["state"] == "remote" and rows["far"]["up"]
    assert rows["ghost"]["state"] == "failed"
    assert "'not_written_yet' is not a Raceplane module" in rows["ghost"]["error"]
    alpha = rows["alpha"]
    assert alpha["state"] == "running" and alpha["up"]
    assert alpha["pid"] and alpha["memory_mb"] > 0
    assert len(family(alpha["pid"])) == 2  # alpha keeps a child of its own


def test_answers_a_dareplane_control_rooms_health_check(stack: Stack) -> None:
    # Byte for byte: banner, `UP;` -> `1`.
    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as legacy:
        assert legacy.recv(100).startswith(b"Connected to control_room")
        legacy.sendall(b"UP;")
        assert legacy.recv(10) == b"1"


def test_status_prints_a_table_of_the_modules(stack: Stack, capsys) -> None:
    assert commands.status(["--port", str(stack.port)]) == 0
    table = capsys.readouterr().out
    assert any(line.split()[:3] == ["alpha", "external", "running"] for line in table.splitlines())
    assert any(
        line.split()[:3] == ["ghost", "not_written_yet", "failed"] for line in table.splitlines()
    )


def test_send_relays_to_a_local_and_a_remote_module(stack: Stack, capsys) -> None:
    assert commands.send(["--port", str(stack.port), "alpha", "ECHO", '{"lap": 3}']) == 0
    assert json.loads(capsys.readouterr().out) == {"lap": 3}
    assert commands.send(["--port", str(stack.port), "far", "PID"]) == 0
    assert int(capsys.readouterr().out) == stack.remote.pid


def test_send_refuses_what_it_cannot_deliver_and_reports_failures(stack: Stack, capsys) -> None:
    port = str(stack.port)
    assert commands.send(["--port", port, "nobody", "UP"]) == 1
    assert "unknown module 'nobody'" in capsys.readouterr().err
    assert commands.send(["--port", port, "alpha", "ECHO", "{lap: 3"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert commands.send(["--port", port, "alpha", "FAIL"]) == 1
    assert "asked to fail" in capsys.readouterr().err


def test_a_macro_runs_its_steps_in_order(stack: Stack, capsys) -> None:
    beta_pid = wait_states(stack.port, {"alpha": "running", "beta": "running"})["beta"]["pid"]
    assert commands.macro(["--port", str(stack.port), "hello", '{"n": 2}']) == 0
    assert capsys.readouterr().out.splitlines() == [
        "alpha ECHO: text=hi n=2",
        f"beta PID: {beta_pid}",
    ]
    assert commands.macro(["--port", str(stack.port), "--json", "hello", '{"n": 2}']) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"module": "alpha", "cmd": "ECHO", "result": {"text": "hi", "n": 2}},
        {"module": "beta", "cmd": "PID", "result": beta_pid},
    ]


def test_a_macro_refuses_missing_parameters_and_unknown_names(stack: Stack, capsys) -> None:
    assert commands.macro(["--port", str(stack.port), "hello"]) == 1
    assert "missing parameter(s) n" in capsys.readouterr().err
    with pytest.raises(ModuleError, match="unknown macro 'nope'"):
        ask(stack.port, "MACRO", {"name": "nope"})


def test_a_module_killed_with_sigkill_is_restarted(stack: Stack) -> None:
    before = wait_states(stack.port, {"alpha": "running"})["alpha"]
    old = family(before["pid"])
    os.kill(before["pid"], signal.SIGKILL)
    restarted = wait_until(
        lambda: (
            (row := modules_of(stack.port)["alpha"])["restarts"] == before["restarts"] + 1
            and row["state"] == "running"
            and row
        ),
        message="alpha restarted",
    )
    assert restarted["pid"] != before["pid"] and restarted["last_exit"] == -signal.SIGKILL
    assert ask(stack.alpha_port, "UP") == 1
    # Its whole process group went with it: the child it kept too.
    wait_until(lambda: all(gone(pid) for pid in old), message="old alpha and its child gone")


def test_restart_is_a_clean_stop_and_start_not_a_crash(stack: Stack) -> None:
    before = wait_states(stack.port, {"beta": "running"})["beta"]
    assert ask(stack.port, "RESTART", {"module": "beta"}) == {"restarting": "beta"}
    again = wait_until(
        lambda: (
            (row := modules_of(stack.port)["beta"])["pid"] not in (None, before["pid"])
            and row["state"] == "running"
            and row
        ),
        message="beta restarted",
    )
    assert again["restarts"] == before["restarts"] and again["last_exit"] == 0  # exit on CLOSE
    assert gone(before["pid"])


def test_down_stops_every_process_but_a_remote_one(tmp_path: Path, spawn, capsys) -> None:
    remote_port = free_port()
    remote = spawn("tests.control_room_module", "--port", str(remote_port), "--name", "far")
    setup, port = write_setup(tmp_path, stack_body(free_port(), remote_port))
    room = spawn("modules.control_room", str(setup))
    rows = wait_states(
        port, {"log_server": "running", "alpha": "running", "beta": "running", "ghost": "failed"}
    )
    wait_until(lambda: modules_of(port)["far"]["up"], message="remote module answering UP")
    pids = [pid for key in ("log_server", "alpha", "beta") for pid in family(rows[key]["pid"])]
    assert len(pids) >= 4  # alpha keeps a child of its own

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
    assert log_tail(log_file, process.pid) == "INFO starting\nERROR disk full"

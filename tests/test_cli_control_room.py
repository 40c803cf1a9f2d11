"""`raceplane up/down/status/send/macro` from a person's side: help, and clear errors for a
stack that is not running, bad JSON and bad setup files. (Commands that reach a running
stack are tested with it, in test_control_room.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dareplane_utils.testing import free_port
from modules.control_room import commands

RACEPLANE = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "raceplane"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RACEPLANE), *args], capture_output=True, text=True, timeout=60)


def test_help_lists_the_control_room_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for name in ("up", "down", "status", "send", "macro", "run"):
        assert any(line.split()[:1] == [name] for line in result.stdout.splitlines()), name
    send_help = run("send", "--help")
    assert (
        send_help.returncode == 0
        and "MODULE" not in send_help.stderr
        and "payload" in send_help.stdout
    )


@pytest.mark.parametrize(
    "argv",
    [["status"], ["down"], ["send", "lap_timer", "STATUS"], ["macro", "start_race"]],
)
def test_no_stack_running_is_said_plainly(argv: list[str], capsys) -> None:
    port = free_port()
    main = getattr(commands, argv[0])
    assert main([*argv[1:], "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"no control room answers at 127.0.0.1:{port}: is the stack up?" in err


def test_port_comes_from_the_setup_file(tmp_path: Path, capsys) -> None:
    port = free_port()
    setup = tmp_path / "s.toml"
    setup.write_text(f'[control_room]\nport = {port}\n[modules.a]\nkind = "lap_timer"\nport = 1\n')
    assert commands.status(["--setup", str(setup)]) == 1
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["send", "a", "START", "{laps: 3}"], "payload is not valid JSON"),
        (["send", "a", "START", "[3]"], "payload must be a JSON object"),
        (["macro", "race", '"fast"'], "parameters must be a JSON object"),
        (["macro", "race", '{"name": 1}'], "may not be called 'name'"),
    ],
)
def test_bad_json_is_refused_before_anything_is_sent(argv: list[str], words: str, capsys) -> None:
    main = getattr(commands, argv[0])
    assert main([*argv[1:], "--port", str(free_port())]) == 2
    assert words in capsys.readouterr().err


def test_up_with_a_bad_setup_file_names_the_line(tmp_path: Path) -> None:
    setup = tmp_path / "bad.toml"
    setup.write_text('[modules.a]\nkind = "lap_timer"\nport = 8103\ncolour = "red"\n')
    result = run("up", str(setup), "--port", str(free_port()))
    assert result.returncode == 2
    assert f"{setup}, line 4" in result.stderr and "unknown key 'colour'" in result.stderr
    missing = run("up", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "cannot read setup file" in missing.stderr


def test_a_recording_summary_fits_one_line() -> None:
    """What `raceplane macro stop_race` prints for the recorder's STOPRECORD."""
    stopped = {
        "save_path": "recordings",
        "recording": False,
        "file": "recordings/race.xdf",
        "files": ["recordings/race.xdf"],
        "duration_s": 412.5,
        "samples": 1_234_567,
        "streams": [{"name": f"raceplane.s{i}", "samples": 10} for i in range(21)],
        "errors": [],
        "error": None,
        "session": {"track": "monza"},
    }
    line = commands.one_line(stopped)
    assert "\n" not in line and len(line) <= 160
    assert line.startswith(
        "save_path=recordings recording=False file=recordings/race.xdf files=1 duration_s=412.5 "
        "samples=1234567 streams=21 errors=0"
    )

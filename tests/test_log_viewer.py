"""`raceplane logs` as a person runs it: reading files, following a live server across a restart."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from dareplane_utils.logging.framing import encode_frame
from dareplane_utils.testing import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent


def record(message: str, level: str = "INFO", name: str = "lap_timer", **extra) -> dict:
    return {"timestamp": "2026-01-01T10:00:00+00:00", "name": name, "levelname": level,
            "message": message, "host": "h", "process": 7, **extra}  # fmt: skip


def viewer(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modules.cli", "logs", *args],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def write_log(path: Path, records: list[dict], garbage: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + garbage)
    return path


def test_reads_a_file_with_filters(tmp_path):
    log = write_log(
        tmp_path / "log.jsonl",
        [
            record("lap 1 done"),
            record("pit lane speeding", "WARNING", car=4),
            record("db write failed", "ERROR", "lap_timer.db", exc_info="Traceback\nOSError: x"),
            record("stream lost", "WARNING", "recorder"),
        ],
        garbage="this is not json\n",
    )
    everything = viewer(str(log), "--no-color")
    assert everything.returncode == 0
    lines = everything.stdout.splitlines()
    assert len(lines) == 6  # four records, the traceback's two lines indented under its record
    assert lines[1].endswith("lap_timer[7]@h: pit lane speeding  car=4")
    assert lines[3:5] == ["    Traceback", "    OSError: x"]
    assert "log.jsonl:5: not a JSON record, skipped" in everything.stderr

    picked = viewer(str(log), "--json", "--module", "lap_timer", "--level", "warning")
    assert [json.loads(line)["message"] for line in picked.stdout.splitlines()] == [
        "pit lane speeding",
        "db write failed",
    ]
    grep = viewer(str(log), "--json", "--grep", "OSError|lost", "-n", "1")
    assert [json.loads(line)["message"] for line in grep.stdout.splitlines()] == ["stream lost"]
    assert "\x1b[" in viewer(str(log), "--color").stdout


def test_bad_arguments_and_missing_files_are_clear(tmp_path):
    missing = viewer(str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    bad_level = viewer("--level", "loud")
    assert bad_level.returncode == 2 and "loud" in bad_level.stderr
    both = viewer("-f", str(tmp_path / "x.jsonl"))
    assert both.returncode == 2 and "not both" in both.stderr


def start_server(port: int, logfile: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "dareplane_utils.logging.server", "--port", str(port),
         "--logfile", str(logfile)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until(lambda: connect(port), message="log server")
    return process


def connect(port: int) -> socket.socket | None:
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return None


def test_follows_live_and_rides_out_a_server_restart(tmp_path):
    port, logfile = free_port(), tmp_path / "log.jsonl"
    server = start_server(port, logfile)
    follower = subprocess.Popen(
        [sys.executable, "-m", "dareplane_utils.logging.viewer", "-f", "--port", str(port),
         "--json", "--level", "info", "--module", "lap_timer"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # Records published before the viewer attaches reach it through its backlog (-n 20),
        # so nothing waits for the attachment. The DEBUG one is below --level info.
        sender = wait_until(lambda: connect(port))
        sender.sendall(encode_frame(record("before the viewer attached", "DEBUG")))
        wait_until(lambda: "attached" in logfile.read_text(), message="the debug record")
        sender.sendall(encode_frame(record("first lap")))
        sender.sendall(encode_frame(record("recorder line", name="recorder")))
        sender.sendall(encode_frame(record("second lap")))
        assert json.loads(follower.stdout.readline())["message"] == "first lap"
        assert json.loads(follower.stdout.readline())["message"] == "second lap"
        sender.close()

        server.kill()
        server.wait(10)
        server = start_server(port, logfile)
        sender = wait_until(lambda: connect(port))
        sender.sendall(encode_frame(record("after the restart")))
        assert json.loads(follower.stdout.readline())["message"] == "after the restart"
        sender.close()
    finally:
        follower.kill()
        server.kill()
        server.wait(10)
    assert "went away; reconnecting" in follower.communicate(timeout=10)[1]

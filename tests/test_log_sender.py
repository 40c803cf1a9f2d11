"""The sending side against a real log server process: restarts, drops, exit, a stalled server."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dareplane_utils.logging.logger import get_logger
from dareplane_utils.logging.sender import JsonSocketHandler
from dareplane_utils.testing import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
SOAK_ONLY = pytest.mark.skipif(not os.environ.get("RACEPLANE_SOAK"), reason="soak: make soak")

# Logs `count` records at `rate` per second (0: flat out), each with extra seq=i, then exits.
PRODUCER = textwrap.dedent(
    """
    import sys, time
    from dareplane_utils.logging.logger import get_logger
    count, rate = int(sys.argv[1]), float(sys.argv[2])
    log = get_logger("producer")
    start = time.monotonic()
    for i in range(count):
        if rate:
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
        log.info("record %d", i, extra={"seq": i})
    print("logged", count, flush=True)
    """
)


def server_process(port: int, logfile: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "dareplane_utils.logging.server", "--port", str(port),
         "--logfile", str(logfile)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until(lambda: can_connect(port) or process.poll() is not None, message="log server")
    assert process.poll() is None, "log server did not start"
    return process


def can_connect(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def seqs(path: Path, name: str = "producer") -> list[int]:
    """seq of each whole record from `name` (a line still being written is skipped)."""
    try:
        lines = path.read_text().split("\n")[:-1]
    except FileNotFoundError:
        return []
    return [r["seq"] for r in map(json.loads, lines) if r["name"] == name]


@pytest.fixture
def servers():
    started: list[subprocess.Popen] = []

    def start(port: int, logfile: Path) -> subprocess.Popen:
        started.append(server_process(port, logfile))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def producer(port: int, count: int, rate: float) -> subprocess.Popen:
    env = {**os.environ, "RACEPLANE_LOG_HOST": "127.0.0.1", "RACEPLANE_LOG_PORT": str(port)}
    return subprocess.Popen(
        [sys.executable, "-c", PRODUCER, str(count), str(rate)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    "downtime_s",
    [3.0, pytest.param(9.5, marks=[pytest.mark.soak, SOAK_ONLY])],
)
def test_nothing_lost_when_the_server_is_killed_and_restarted(servers, tmp_path, downtime_s):
    port, logfile = free_port(), tmp_path / "log.jsonl"
    count = int((downtime_s + 3) * 1000)
    server = servers(port, logfile)
    sender = producer(port, count, rate=1000)
    wait_until(lambda: len(seqs(logfile)) >= 500, message="the first records")
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    received_before = len(seqs(logfile))
    time.sleep(downtime_s)  # the outage is the scenario under test, not a wait for a condition
    servers(port, logfile)
    assert sender.wait(60) == 0
    wait_until(lambda: set(seqs(logfile)) == set(range(count)), timeout=30, message="every seq")
    assert received_before < count  # the kill did happen in the middle of the run


def test_records_over_the_bound_are_dropped_counted_and_reported(servers, tmp_path):
    port, logfile = free_port(), tmp_path / "log.jsonl"
    handler = JsonSocketHandler("127.0.0.1", port, max_pending=100)
    logger = logging.getLogger("bounded")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(300):  # nothing listens on the port yet
            logger.warning("record %d", i, extra={"seq": i})
        assert handler.dropped == 200
        servers(port, logfile)
        wait_until(lambda: seqs(logfile, "bounded") == list(range(100)), message="held records")
        wait_until(lambda: '"log_sender"' in logfile.read_text(), message="the drop report")
        lines = logfile.read_text().splitlines()
        (report,) = [json.loads(line) for line in lines if '"log_sender"' in line]
        assert report["levelname"] == "WARNING" and report["dropped"] == 200
        assert "dropped 200 records" in report["message"]
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_exit_is_bounded_when_the_server_never_comes():
    done = subprocess.run(
        [sys.executable, "-c", PRODUCER, "10", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=30,
        env={**os.environ, "RACEPLANE_LOG_PORT": str(free_port())},
    )  # fmt: skip
    assert done.returncode == 0 and "logged 10" in done.stdout
    assert "log sender: 10 records not delivered to 127.0.0.1:" in done.stderr


def test_the_caller_never_waits_for_a_stalled_server(servers, tmp_path):
    port, logfile = free_port(), tmp_path / "log.jsonl"
    server = servers(port, logfile)
    handler = JsonSocketHandler("127.0.0.1", port)
    logger = logging.getLogger("stalled")
    logger.propagate = False
    logger.addHandler(handler)
    server.send_signal(signal.SIGSTOP)
    try:
        for i in range(20_000):  # far more than the socket buffers hold
            logger.warning("record %d", i, extra={"seq": i})
    finally:
        server.send_signal(signal.SIGCONT)
    try:
        wait_until(lambda: set(seqs(logfile, "stalled")) == set(range(20_000)), timeout=30)
    finally:
        logger.removeHandler(handler)
        handler.close()


def test_get_logger_repoints_and_keeps_one_pair_of_handlers(monkeypatch):
    monkeypatch.setenv("RACEPLANE_LOG_PORT", "9")
    logger = get_logger("repointed")
    assert [h.address for h in logger.handlers if isinstance(h, JsonSocketHandler)] == [
        ("127.0.0.1", 9)
    ]
    logger = get_logger("repointed", log_host="127.0.0.2", log_port=10, level="DEBUG")
    assert len(logger.handlers) == 2 and logger.level == logging.DEBUG
    assert [h.address for h in logger.handlers if isinstance(h, JsonSocketHandler)] == [
        ("127.0.0.2", 10)
    ]


# Logs `count` lines flat out, says so on stdout, then waits for a line on stdin before the
# last record and exit: lines must reach stderr while the process runs, not only at exit.
STDERR_PRODUCER = textwrap.dedent(
    """
    import sys
    from dareplane_utils.logging.logger import get_logger
    count = int(sys.argv[1])
    log = get_logger("producer")
    for i in range(count):
        log.info("record %d of %s", i, "many")
    try:
        {}["missing"]
    except KeyError:
        log.exception("lookup failed")
    print("logged", flush=True)
    sys.stdin.readline()
    log.warning("last words")
    """
)
STDERR_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (\w+) +producer: (.*)")


def test_stderr_gets_every_line_in_order_while_running_and_at_exit():
    count = 5000
    process = subprocess.Popen(
        [sys.executable, "-c", STDERR_PRODUCER, str(count)],
        cwd=REPO, env={**os.environ, "RACEPLANE_LOG_PORT": str(free_port())},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout.readline() == "logged\n"
        lines: list[str] = []
        while not lines or lines[-1] != "KeyError: 'missing'":  # the traceback's last line
            line = process.stderr.readline()
            assert line, f"stderr ended after {len(lines)} lines"
            lines.append(line.rstrip("\n"))
        process.stdin.write("go\n")
        process.stdin.flush()
        rest = process.stderr.read().splitlines()
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    parsed = [STDERR_LINE.fullmatch(line) for line in lines[:count]]
    assert [m and m.groups() for m in parsed] == [
        ("INFO", f"record {i} of many") for i in range(count)
    ]
    assert STDERR_LINE.fullmatch(lines[count]).groups() == ("ERROR", "lookup failed")
    assert lines[count + 1] == "Traceback (most recent call last):"
    # (the sender's note on undelivered records may come before or after it)
    assert [m.groups() for m in map(STDERR_LINE.fullmatch, rest) if m] == [
        ("WARNING", "last words")
    ]

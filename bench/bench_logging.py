"""Burst logging: 4 processes each log 20,000 records as fast as they can, into one log server.

Side by side in one run: Raceplane (get_logger -> our server) and dareplane-utils 0.0.24
(its get_logger / UJsonSocketHandler -> its LogRecordSocketReceiver, from a throwaway venv).
Reported: records delivered to the file (unique, and duplicates), the sustained rate at which
the file grew (records / time from its first to its last growth), the records delivered per
CPU-second that the whole burst cost (every producer from its first call until its records
are handed over, and the server; a figure other work on a shared machine does not move), and
what one logging call costs the caller (median over the processes, microseconds): as CPU time
of the calling thread (time.thread_time: what the call itself does, whatever else the machine
runs) and as wall time of the loop (which also counts waiting for the CPU and the GIL while
other threads run).
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil
from peers import peer_python, print_table

PROCESSES = 4
RECORDS = 20_000
ROUNDS = 3
QUIET_S = 3.0  # the file has stopped growing for this long and every producer is gone: done
RECORD = re.compile(rb"bench-record p=(\d+) i=(\d+)")

# argv: producer index, port. Prints the loop's wall and calling-thread CPU seconds, and the
# process's CPU seconds from the loop's start until logging.shutdown() has handed every record
# over. The message comes formatted: dareplane-utils' server fails on any record with args
# (`msg % list`).
PRODUCER_LOOP = """
import logging
start, cpu, process = time.perf_counter(), time.thread_time(), time.process_time()
for i in range({records}):
    log.info(f"bench-record p={{p}} i={{i}} lap 3 of 58")
cpu, seconds = time.thread_time() - cpu, time.perf_counter() - start
logging.shutdown()
process = time.process_time() - process
print(json.dumps({{"seconds": seconds, "cpu": cpu, "process": process}}), flush=True)
"""
OURS_PRODUCER = """
import json, os, sys, time
p, port = int(sys.argv[1]), int(sys.argv[2])
from dareplane_utils.logging.logger import get_logger
log = get_logger("bench.ours", log_port=port)
"""
# The same records without the stderr copy, as dareplane-utils' get_logger has none by default.
OURS_SOCKET_ONLY_PRODUCER = """
import json, logging, sys, time
p, port = int(sys.argv[1]), int(sys.argv[2])
from dareplane_utils.logging.logger import sender_for
log = logging.getLogger("bench.ours")
log.propagate = False
log.setLevel(logging.INFO)
log.addHandler(sender_for("127.0.0.1", port))
"""
THEIR_PRODUCER = """
import json, sys, time
p, port = int(sys.argv[1]), int(sys.argv[2])
from dareplane_utils.logging.logger import default_dareplane_config, get_logger
default_dareplane_config["handlers"]["socket"]["port"] = port
log = get_logger("bench.theirs")
log.setLevel("INFO")
"""
THEIR_SERVER = """
import sys
from pathlib import Path
from dareplane_utils.logging.server import LogRecordSocketReceiver
port, logfile = int(sys.argv[1]), Path(sys.argv[2])
LogRecordSocketReceiver(host="127.0.0.1", port=port, logfile=logfile).serve_until_stopped()
"""


@dataclass
class Result:
    name: str
    unique: int
    duplicates: int
    rate: float
    per_cpu_s: float
    call_cpu_us: float
    call_wall_us: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("log server exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("log server did not start listening")


def run(name: str, python: Path, server: list[str], producer: str, logfile: Path) -> Result:
    """`server` is the server's argv after python, with {port} and {logfile} to fill in."""
    port = free_port()
    server = subprocess.Popen(
        [python, *(arg.format(port=port, logfile=logfile) for arg in server)],
        cwd=logfile.parent,  # not the repo: there `dareplane_utils` would be ours
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_listening(port, server)
    server_cpu = _cpu_seconds(server.pid)
    baseline = logfile.stat().st_size if logfile.exists() else 0
    code = textwrap.dedent(producer) + PRODUCER_LOOP.format(records=RECORDS)
    producers = [
        subprocess.Popen(
            [python, "-c", code, str(p), str(port)],
            cwd=logfile.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for p in range(PROCESSES)
    ]
    first = last = None
    size, start = baseline, time.monotonic()
    while True:
        now = time.monotonic()
        current = logfile.stat().st_size if logfile.exists() else 0
        if current != size:
            size, last = current, now
            first = first or now
        exited = all(process.poll() is not None for process in producers)
        if exited and last is not None and now - last > QUIET_S:
            break
        if exited and last is None and now - start > 60:
            break  # nothing ever arrived
        time.sleep(0.01)
    server_cpu = _cpu_seconds(server.pid) - server_cpu
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    loops = [json.loads(process.stdout.read()) for process in producers]
    seen = RECORD.findall(logfile.read_bytes())
    unique = len(set(seen))
    elapsed = (last - first) if first and last and last > first else float("nan")
    cpu_seconds = server_cpu + sum(loop["process"] for loop in loops)
    return Result(
        name, unique, len(seen) - unique, unique / elapsed, unique / cpu_seconds,
        _median_us(loop["cpu"] for loop in loops), _median_us(loop["seconds"] for loop in loops),
    )  # fmt: skip


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _median_us(loop_seconds: Iterable[float]) -> float:
    return _median(loop_seconds) / RECORDS * 1e6


def main() -> int:
    total = PROCESSES * RECORDS
    theirs_python = peer_python("dareplane-utils-0.0.24", ["dareplane-utils==0.0.24"])
    ours_python = Path(sys.executable)
    ours_server = ["-m", "dareplane_utils.logging.server", "--port={port}", "--logfile={logfile}"]
    their_server = ["-c", THEIR_SERVER, "{port}", "{logfile}"]
    setups = [
        ("raceplane get_logger (stderr + server)", ours_python, ours_server, OURS_PRODUCER),
        ("raceplane, server only", ours_python, ours_server, OURS_SOCKET_ONLY_PRODUCER),
        ("dareplane-utils 0.0.24 (server only)", theirs_python, their_server, THEIR_PRODUCER),
    ]
    # The machine is shared: the setups take turns, ROUNDS times, and the medians are shown.
    rounds: list[list[Result]] = []
    with tempfile.TemporaryDirectory(prefix="bench-logging-") as tmp:
        for round_index in range(ROUNDS):
            rounds.append(
                [
                    run(name, python, server, producer, Path(tmp) / f"r{round_index}s{i}.log")
                    for i, (name, python, server, producer) in enumerate(setups)
                ]
            )
    rows = []
    for index, (name, *_) in enumerate(setups):
        results = [round_results[index] for round_results in rounds]
        rows.append(
            [name, min(100 * r.unique / total for r in results),
             max(r.duplicates for r in results), _median(r.rate for r in results),
             _median(r.per_cpu_s for r in results),
             _median(r.call_cpu_us for r in results), _median(r.call_wall_us for r in results)]
        )  # fmt: skip
    print_table(
        f"burst: {PROCESSES} processes x {RECORDS:,} records, as fast as they can "
        f"(median of {ROUNDS} rounds; delivered: the worst round)",
        ["logging", "delivered %", "duplicates", "records/s in file", "records per CPU-s",
         "caller CPU us/call", "caller wall us/call"],
        rows,
    )  # fmt: skip
    for index, (name, *_) in enumerate(setups[:-1]):
        ratios = [r[index].rate / r[-1].rate for r in rounds]
        efficiency = [r[index].per_cpu_s / r[-1].per_cpu_s for r in rounds]
        print(
            f"{name} vs dareplane-utils 0.0.24, round by round: records/s in file "
            + ", ".join(f"{ratio:.2f}x" for ratio in ratios)
            + "; records per CPU-s "
            + ", ".join(f"{ratio:.2f}x" for ratio in efficiency)
        )
    return 0


def _median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


if __name__ == "__main__":
    sys.exit(main())

"""Control room: time to bring a stack up, to stop it, and to bring back a killed module.

Stacks, each on free ports, with the LSL configuration it makes for itself (a session per
control-room port, as `raceplane up` gives any stack; no LSLAPICFG handed in):
- demo: configs/demo.toml with every module kind that exists in this tree (the rest is
  left out and named), its log server included; ports and paths moved to throwaway ones.
- 6 test modules: tests/control_room_module.py six times (the control room's own cost, with
  modules that start as fast as Python can).

Measured, `ROUNDS` times each: `raceplane up` (process start) to every module answering UP;
SIGINT (Ctrl-C) to the last process of the stack gone; SIGKILL of one module to it answering
UP again. Goals from issue 10: under 3 s, 2 s and 1 s on this 2-core machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]

from peers import print_table  # noqa: E402

from dareplane_utils.client.module_client import ModuleClient  # noqa: E402
from dareplane_utils.testing import free_port, wait_until  # noqa: E402

ROUNDS = 3
GOALS = (
    ("up -> all answer UP", 0, 3.0),
    ("Ctrl-C -> all gone", 1, 2.0),
    ("SIGKILL -> UP again", 2, 1.0),
)
KILLED = {"demo": "lap_timer", "6 test modules": "m3"}


def toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value)  # strings, numbers and booleans are written alike in TOML


def toml(data: dict[str, Any], prefix: str = "") -> str:
    """Enough of a TOML writer for setup files: scalars first, then sub-tables."""
    lines = [
        f"{key} = {toml_value(value)}" for key, value in data.items() if not isinstance(value, dict)
    ]
    text = (f"[{prefix}]\n" if prefix and lines else "") + "".join(line + "\n" for line in lines)
    for key, value in data.items():
        if isinstance(value, dict):
            text += "\n" + toml(value, f"{prefix}.{key}" if prefix else key)
    return text


def demo_setup(work: Path) -> tuple[dict[str, Any], list[str]]:
    data = tomllib.loads((REPO / "configs" / "demo.toml").read_text())
    missing = [
        key
        for key, spec in data["modules"].items()
        if importlib.util.find_spec(f"modules.{spec['kind']}") is None
    ]
    for key in missing:
        del data["modules"][key]
    for spec in data["modules"].values():
        spec["depends_on"] = [d for d in spec.get("depends_on", []) if d not in missing]
    # Same port in, same port out: the simulator's target stays the decoder's UDP port.
    moved: dict[int, int] = {}
    for spec in data["modules"].values():
        spec["port"] = free_port()
        for key, value in spec.get("kwargs", {}).items():
            if key.endswith("_port"):
                spec["kwargs"][key] = moved.setdefault(value, free_port())
            elif key in ("db", "save_path"):
                spec["kwargs"][key] = str(work / key)
    data.pop("macros", None)
    data["control_room"].pop("on_up", None)  # measure the stack, not a race start
    return data, missing


def test_modules_setup(count: int) -> dict[str, Any]:
    modules = {}
    for index in range(1, count + 1):
        port = free_port()
        modules[f"m{index}"] = {
            "kind": "external",
            "entry": "control_room_module",
            "protocol": "json",
            "cwd": str(REPO / "tests"),
            "port": port,
            "kwargs": {"port": port, "name": f"m{index}"},
        }
    return {"control_room": {}, "modules": modules}


def status(port: int) -> dict[str, dict[str, Any]]:
    with ModuleClient("127.0.0.1", port, timeout=10).connect() as client:
        return {row["key"]: row for row in client.request("STATUS")["modules"]}


def answers_up(port: int) -> bool:
    try:
        with ModuleClient("127.0.0.1", port, timeout=1).connect() as client:
            return client.request("UP") == 1
    except OSError:
        return False


def one_round(data: dict[str, Any], work: Path, killed: str) -> tuple[float, float, float]:
    port = free_port()
    data["control_room"].update(
        port=port,
        log_port=free_port(),
        log_file=str(work / "log.jsonl"),
        output_dir=str(work / "out"),
    )
    setup = work / "setup.toml"
    setup.write_text(toml(data))
    ports = [spec["port"] for spec in data["modules"].values()]
    began = time.perf_counter()
    room = subprocess.Popen(
        [sys.executable, "-m", "modules.control_room", str(setup)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: all(answers_up(p) for p in ports),
            timeout=60,
            interval=0.005,
            message="stack up",
        )
        up_s = time.perf_counter() - began
        # Let the supervisor see them all as running before the kill.
        rows = wait_until(
            lambda: (
                (rows := status(port))
                and all(r["state"] == "running" for r in rows.values())
                and rows
            ),
            timeout=30,
        )
        victim = rows[killed]
        killed_at = time.perf_counter()
        os.kill(victim["pid"], signal.SIGKILL)
        address = int(victim["address"].rsplit(":", 1)[1])
        wait_until(lambda: not answers_up(address), timeout=10, interval=0.001)
        wait_until(lambda: answers_up(address), timeout=30, interval=0.005, message="restart")
        back_s = time.perf_counter() - killed_at
        family = [
            pid for row in status(port).values() if row["pid"] for pid in descendants(row["pid"])
        ]
        family.append(room.pid)
        stop_at = time.perf_counter()
        room.send_signal(signal.SIGINT)
        wait_until(
            lambda: all(gone(pid) for pid in family),
            timeout=60,
            interval=0.002,
            message="stack gone",
        )
        down_s = time.perf_counter() - stop_at
        room.wait(timeout=10)
        return up_s, down_s, back_s
    finally:
        if room.poll() is None:
            os.killpg(room.pid, signal.SIGKILL)
            room.wait()


def descendants(pid: int) -> list[int]:
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


def main() -> int:
    os.environ.pop("LSLAPICFG", None)  # measure the stack's own configuration, as a user gets it
    socket.setdefaulttimeout(10)
    rows = []
    with tempfile.TemporaryDirectory(prefix="raceplane-bench-cr-") as directory:
        work = Path(directory)
        demo, missing = demo_setup(work)
        stacks = {"6 test modules": test_modules_setup(6)}
        if KILLED["demo"] in demo["modules"]:
            stacks["demo"] = demo
        for name, data in stacks.items():
            results = [one_round(data, work, KILLED[name]) for _ in range(ROUNDS)]
            count = len(data["modules"]) + (
                0 if data["control_room"].get("log_server") is False else 1
            )
            for label, index, goal in GOALS:
                values = [result[index] for result in results]
                rows.append([name, count, label, statistics.median(values), max(values), goal,
                             "yes" if max(values) < goal else "NO"])  # fmt: skip
    print_table(
        f"Control room, {ROUNDS} rounds each (demo without: {', '.join(missing) or 'nothing'})",
        ["stack", "processes", "measure", "median s", "max s", "goal s", "met"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The demo stack on free ports, for end-to-end tests and the latency benchmark.

`demo_setup(directory)` writes a setup file made from configs/demo.toml with every port (TCP
command ports, the log server, the decoder's UDP port, the dashboard's HTTP port) replaced by a
free one, and every file (log, outputs, lap-timer database, recordings) under `directory`.
`Stack` starts `python -m modules.control_room SETUP` and speaks to it. LSL is isolated by
whoever imports this first (tests/conftest.py, or the benchmark calling isolate_lsl).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "configs" / "demo.toml"
MODULES = ("telemetry_decoder", "lap_timer", "recorder", "engineer", "web_bridge", "game_sim")
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class NetNs:
    """A network namespace (its /proc/PID/ns/net or /var/run/netns/NAME file); `run(fn)` calls
    fn on a thread living inside it, so sockets fn opens are the namespace's."""

    def __init__(self, path: str, name: str = "") -> None:
        self.path = path
        self.name = name
        self._pool = concurrent.futures.ThreadPoolExecutor(1, initializer=self._enter)

    def _enter(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.path} failed")
        finally:
            os.close(fd)

    def run(self, fn: Callable[[], T], timeout: float = 60) -> T:
        return self._pool.submit(fn).result(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass
class StackFiles:
    """Where a generated stack listens and writes."""

    setup: Path
    control_port: int
    log_port: int
    udp_port: int
    http_port: int
    ports: dict[str, int]  # module key -> command port
    log_file: Path
    output_dir: Path
    recordings: Path
    db: Path


def toml_value(value: Any) -> str:
    """TOML for the values a setup file holds (JSON's string and number syntax is TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def render_setup(data: dict[str, Any]) -> str:
    """A setup dict back as TOML: [control_room], [modules.*], [macros.*] with their steps."""
    lines: list[str] = []

    def table(name: str, body: dict[str, Any]) -> None:
        lines.append(f"[{name}]")
        nested = {}
        for key, value in body.items():
            if isinstance(value, dict) and key in ("kwargs", "restart"):
                nested[key] = value
            elif key != "steps":
                lines.append(f"{key} = {toml_value(value)}")
        for key, value in nested.items():
            table(f"{name}.{key}", value)
        for step in body.get("steps", []):
            lines.append(f"[[{name}.steps]]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in step.items())

    table("control_room", data["control_room"])
    for key, module in data["modules"].items():
        table(f"modules.{key}", module)
    for name, macro in data.get("macros", {}).items():
        table(f"macros.{name}", macro)
    return "\n".join(lines) + "\n"


def demo_setup(
    directory: Path,
    *,
    race: dict[str, Any] | None = None,
    game: dict[str, Any] | None = None,
    control: dict[str, Any] | None = None,
    modules: dict[str, dict[str, Any]] | None = None,
    autostart: bool = True,
) -> StackFiles:
    """Write configs/demo.toml with free ports and private files into `directory`.

    `race` overrides the start_race macro's defaults (track, laps, speed), `game` adds game_sim
    options, `control` [control_room] keys, `modules` replaces whole module tables by key.
    `autostart=False` leaves out on_up, so nothing races until a test says so.
    """
    directory.mkdir(parents=True, exist_ok=True)
    data = tomllib.loads(DEMO.read_text())
    ports = {key: free_port() for key in data["modules"]}
    files = StackFiles(
        setup=directory / "setup.toml",
        control_port=free_port(),
        log_port=free_port(),
        udp_port=free_port(socket.SOCK_DGRAM),
        http_port=free_port(),
        ports=ports,
        log_file=directory / "logs" / "raceplane.jsonl",
        output_dir=directory / "logs",
        recordings=directory / "recordings",
        db=directory / "lap_timer.sqlite3",
    )
    room = data["control_room"]
    room.update(
        port=files.control_port,
        log_port=files.log_port,
        log_file=str(files.log_file),
        output_dir=str(files.output_dir),
        grace_s=1.0,
        health_interval_s=0.5,
    )
    if not autostart:
        room.pop("on_up", None)
    room.update(control or {})
    for key, module in data["modules"].items():
        module["port"] = ports[key]
    mods = data["modules"]
    mods["telemetry_decoder"]["kwargs"]["udp_port"] = files.udp_port
    mods["game_sim"]["kwargs"].update(target_port=files.udp_port, **(game or {}))
    mods["lap_timer"]["kwargs"]["db"] = str(files.db)
    mods["recorder"]["kwargs"].update(save_path=str(files.recordings), setup=str(files.setup))
    mods["web_bridge"]["kwargs"].update(
        http_port=files.http_port,
        lap_timer=f"127.0.0.1:{ports['lap_timer']}",
        recorder=f"127.0.0.1:{ports['recorder']}",
    )
    mods.update(modules or {})
    data["macros"]["start_race"]["defaults"].update(race or {})
    files.setup.write_text(render_setup(data))
    return files


@dataclass
class Stack:
    """A running control room over a generated setup; `close()` shuts it down."""

    files: StackFiles
    process: subprocess.Popen
    clients: dict[int, ModuleClient] = field(default_factory=dict)

    @classmethod
    def start(cls, files: StackFiles, env: dict[str, str | None] | None = None) -> Stack:
        """`env` adds to this process's environment; a None value removes that variable."""
        output = open(files.setup.parent / "control_room.out", "wb")  # noqa: SIM115 - child's
        merged = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        process = subprocess.Popen(
            [sys.executable, "-m", "modules.control_room", str(files.setup)],
            cwd=REPO,
            env={key: value for key, value in merged.items() if value is not None},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        output.close()
        return cls(files, process)

    # ---- talking to the control room and the modules ---------------------------------------

    def client(self, port: int) -> ModuleClient:
        client = self.clients.get(port)
        if client is None:
            client = ModuleClient("127.0.0.1", port, timeout=15).connect(retries=200, interval=0.05)
            self.clients[port] = client
        return client

    def ask(self, cmd: str, payload: dict[str, Any] | None = None) -> Any:
        """A command to the control room."""
        return self.client(self.files.control_port).request(cmd, payload)

    def send(self, module: str, cmd: str, payload: dict[str, Any] | None = None) -> Any:
        """A command to a module, through the control room (as an operator would)."""
        body: dict[str, Any] = {"module": module, "cmd": cmd}
        if payload:
            body["payload"] = payload
        return self.ask("SEND", body)

    def direct(self, module: str, cmd: str, payload: dict[str, Any] | None = None) -> Any:
        """A command straight to a module's own port, on a connection of its own."""
        with ModuleClient("127.0.0.1", self.files.ports[module], timeout=15).connect(
            retries=100, interval=0.05
        ) as client:
            return client.request(cmd, payload)

    def modules(self) -> dict[str, dict[str, Any]]:
        return {row["key"]: row for row in self.ask("STATUS")["modules"]}

    def wait_running(self, keys: tuple[str, ...] = ("log_server", *MODULES), timeout: float = 60.0):
        def all_running() -> dict[str, dict[str, Any]] | None:
            rows = self.modules()
            return (
                rows if all(rows[k]["state"] == "running" and rows[k]["up"] for k in keys) else None
            )

        return wait_until(all_running, timeout=timeout, interval=0.1, message=f"{keys} running")

    def pids(self) -> dict[str, int]:
        return {key: row["pid"] for key, row in self.modules().items() if row.get("pid")}

    def truth(self) -> dict[str, Any]:
        return self.send("game_sim", "TRUTH")

    def laps(self) -> list[dict[str, Any]]:
        return self.send("lap_timer", "GET_LAPS")

    # ---- files -----------------------------------------------------------------------------

    def log_records(self) -> list[dict[str, Any]]:
        """Every record in the log file and its rotations (oldest first)."""
        records = []
        base = self.files.log_file
        paths = [*sorted(base.parent.glob(base.name + ".*"), reverse=True), base]
        for path in paths:
            if path.exists():
                for line in path.read_text(errors="replace").splitlines():
                    if line.strip():
                        records.append(json.loads(line))
        return records

    def output(self) -> str:
        return (self.files.setup.parent / "control_room.out").read_text(errors="replace")

    # ---- ending ----------------------------------------------------------------------------

    def processes(self) -> list[psutil.Process]:
        """The control room and everything it started."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def close(self, timeout: float = 30.0) -> None:
        for client in self.clients.values():
            client.close()
        self.clients.clear()
        family = self.processes()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        for process in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


MARKER = b"raceplane relay marker"  # shorter than any packet header: the decoder rejects it


class PausableRelay:
    """A UDP relay between the game and the decoder that can pause the game.

    While paused it holds every datagram; on resume it sends them on, and everything after,
    delayed by the length of the pause: to the decoder, exactly a game paused and resumed
    (silence, then the same session carrying on at its own pace).
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.005)
        self.port = self.sock.getsockname()[1]
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.held: collections.deque[tuple[float, bytes]] = collections.deque()
        self.delay = 0.0
        self.paused_at: float | None = None
        self.forwarded = 0
        self._stop = threading.Event()
        self._holding = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Hold datagrams from now on; returns once the relay thread has stopped sending."""
        self._holding.clear()
        self.paused_at = time.monotonic()
        assert self._holding.wait(10), "the relay thread did not pause"

    def mark(self) -> None:
        """Send the decoder one datagram too short to be a packet, after everything forwarded:
        once the decoder counts its reject, it has read all the relay sent before it."""
        self.out.sendto(MARKER, self.target)

    def resume(self) -> None:
        assert self.paused_at is not None
        self.delay += time.monotonic() - self.paused_at
        self.paused_at = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
                self.held.append((time.monotonic(), data))
            except TimeoutError:
                pass
            if self.paused_at is not None:
                self._holding.set()
                continue
            now = time.monotonic()
            while self.held and self.held[0][0] + self.delay <= now:
                self.out.sendto(self.held.popleft()[1], self.target)
                self.forwarded += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        self.out.close()

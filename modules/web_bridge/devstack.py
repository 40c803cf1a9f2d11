"""Start a bridge and the processes around it on free ports (tests, benchmarks, trying it out).

    with DevStack(tmp_path) as stack:
        lap_timer = stack.module("lap_timer", "--db", str(tmp_path / "laps.sqlite3"))
        bridge = stack.bridge(lap_timer=lap_timer)        # -> Endpoint(port, http_port)
        httpx.get(bridge.url + "api/session")

Every process gets its own process group and is killed when the stack closes; its output
goes to `<directory>/<name>.out`, which `tail(name)` reads for failure messages.

LSL: the stack shares the LSL session of the process that starts it (under pytest, the run's
isolated session, so the test can read the stack's streams); outside one it isolates itself.
`DevStack(directory, private_lsl=True)` gives its processes a session of their own instead, for
a test that must not see streams of another stack still running in the same test process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from dareplane_utils.testing import free_port, isolate_lsl, wait_until, write_lsl_config

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Endpoint:
    port: int
    http_port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/"


class DevStack:
    def __init__(self, directory: Path, private_lsl: bool = False) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.lsl_config = isolate_lsl("raceplane-webbridge")
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if private_lsl:
            self.lsl_config = write_lsl_config(self.directory, f"devstack-{uuid.uuid4().hex}")
            self.env["LSLAPICFG"] = str(self.lsl_config)
        self.log_port = free_port()  # modules log here; nobody listens unless log_server()
        self.processes: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> DevStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, name: str, *args: str, stdin: int | None = None) -> subprocess.Popen:
        """`python -m <args>` in its own process group."""
        out: IO[str] = open(self.directory / f"{name}.out", "w")  # noqa: SIM115 (the child owns it)
        process = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=REPO,
            env=self.env,
            stdin=stdin,
            stdout=subprocess.PIPE if stdin is not None else out,
            stderr=out,
            start_new_session=True,
            text=True,
        )
        out.close()
        self.processes[name] = process
        return process

    def log_server(self) -> None:
        """The central log server on `log_port` (start it before the modules that log)."""
        logfile = str(self.directory / "raceplane.jsonl")
        port = str(self.log_port)
        self.start(
            "log_server", "dareplane_utils.logging.server", "--port", port, "--logfile", logfile
        )
        self.wait_tcp("log_server", self.log_port)

    def module(self, kind: str, *args: str) -> Endpoint:
        """Start `modules.<kind>` on a free command port; return once it answers."""
        port = free_port()
        self.start(
            kind, f"modules.{kind}", "--port", str(port), "--log-port", str(self.log_port), *args
        )
        self.wait_tcp(kind, port)
        return Endpoint(port)

    def bridge(
        self,
        lap_timer: Endpoint | None = None,
        recorder: Endpoint | None = None,
        *args: str,
        name: str = "web_bridge",
    ) -> Endpoint:
        port, http_port = free_port(), free_port()
        extra = [*args]
        if lap_timer is not None:
            extra += ["--lap-timer", lap_timer.address]
        if recorder is not None:
            extra += ["--recorder", recorder.address]
        self.start(
            name,
            "modules.web_bridge",
            "--port",
            str(port),
            "--http-port",
            str(http_port),
            "--log-port",
            str(self.log_port),
            *extra,
        )
        endpoint = Endpoint(port, http_port)
        wait_until(
            lambda: self._alive(name) and _answers(endpoint.url + "api/session"),
            timeout=30,
            message=f"{name} serving HTTP",
        )
        return endpoint

    def feeder(self, *streams: str) -> subprocess.Popen:
        """The stream publisher (modules.web_bridge.feeder); returns once its outlets exist."""
        process = self.start("feeder", "modules.web_bridge.feeder", *streams, stdin=subprocess.PIPE)
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"feeder did not start: {line!r} {self.tail('feeder')}")
        return process

    def wait_tcp(self, name: str, port: int, timeout: float = 30) -> None:
        def up() -> bool:
            self._alive(name)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_until(up, timeout=timeout, interval=0.05, message=f"{name} on port {port}")

    def _alive(self, name: str) -> bool:
        process = self.processes[name]
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited {process.returncode}: {self.tail(name)}")
        return True

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.directory / f"{name}.out"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 5
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False

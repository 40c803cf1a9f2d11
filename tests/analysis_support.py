"""A race recorded through the real stack, for the analysis tests: the game simulator sends UDP
to the telemetry decoder (which also captures the raw datagrams), the decoder publishes on LSL,
the recorder writes rotated XDF parts. All processes; files and TRUTH kept for the tests."""

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

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
# Three laps of the shortest circuit: pit stops, an invalid lap and a retirement, at 10 Hz.
RACE = {
    "track": "spielberg",
    "laps": 3,
    "cars": 22,
    "seed": 3,
    "retirements": 1,
    "rate": 10,
    "speed": 20,
}
STREAMS = (
    "raceplane.lap_data",
    "raceplane.car_status",
    "raceplane.car_telemetry",
    "raceplane.motion",
    "raceplane.session",
    "raceplane.participants",
    "raceplane.events",
    "raceplane.session_history",
    "raceplane.final_classification",
)


@dataclass
class RecordedRace:
    parts: list[Path]  # the recorder's rotated XDF files, in the order it wrote them
    capture: Path  # the decoder's raw capture of the same race
    truth: dict[str, Any]


def _client(port: int) -> ModuleClient:
    return ModuleClient("127.0.0.1", port, timeout=15).connect(retries=300, interval=0.05)


@contextlib.contextmanager
def processes() -> Iterator[Any]:
    started: list[subprocess.Popen] = []

    def start(module: str, *args: str, log: Path) -> subprocess.Popen:
        out = open(log, "wb")  # noqa: SIM115 - the child holds it
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def record_race(directory: Path, race: dict[str, Any] | None = None) -> RecordedRace:
    directory.mkdir(parents=True, exist_ok=True)
    race = {**RACE, **(race or {})}
    udp = free_port(socket.SOCK_DGRAM)
    ports = {name: free_port() for name in ("decoder", "recorder", "sim")}
    common = ("--log-port", str(free_port()))
    patterns = [arg for name in STREAMS for arg in ("--streams", name)]
    with processes() as start:
        start(
            "modules.telemetry_decoder",
            *("--port", str(ports["decoder"]), "--udp-port", str(udp), *common),
            log=directory / "decoder.log",
        )
        start(
            "modules.recorder",
            *("--port", str(ports["recorder"]), "--save-path", str(directory), *common),
            *("--rotate-mb", "4", *patterns),
            log=directory / "recorder.log",
        )
        start(
            "modules.game_sim",
            *("--port", str(ports["sim"]), "--target-port", str(udp), *common),
            log=directory / "sim.log",
        )
        decoder, recorder, sim = (_client(ports[n]) for n in ("decoder", "recorder", "sim"))
        wait_until(
            lambda: (
                sum(s["selected"] for s in recorder.request("UPDATE", timeout=10)) >= len(STREAMS)
            ),
            timeout=60,
            interval=0.2,
            message="the recorder seeing the decoder's streams",
        )
        recorder.request("RECORD", {"filename": "race.xdf"})
        wait_until(
            lambda: len(recorder.request("STATUS")["streams"]) == len(STREAMS),
            timeout=30,
            interval=0.1,
            message="the recorder recording every stream",
        )
        capture = directory / "race.rpcap"
        decoder.request("CAPTURE_START", {"path": str(capture)})
        sim.request("START", race)
        wait_until(lambda: sim.request("STATUS")["finished"], timeout=180, interval=0.5)
        truth = sim.request("TRUTH")
        # Everything the decoder published is recorded before the recording stops.
        decoded = decoder.request("STATUS")["packets"]
        wait_until(
            lambda: all(_recorded(recorder, name) >= decoded.get(name, 0) for name in STREAMS),
            timeout=60,
            interval=0.2,
            message="every decoded sample recorded",
        )
        decoder.request("CAPTURE_STOP")
        stopped = recorder.request("STOPRECORD")
        for client in (decoder, recorder, sim):
            client.close()
    parts = [Path(p) for p in stopped.get("files", [])] or sorted(directory.glob("race*.xdf"))
    (directory / "truth.json").write_text(json.dumps(truth))
    return RecordedRace(parts, capture, truth)


def _recorded(recorder: ModuleClient, name: str) -> int:
    return sum(s["samples"] for s in recorder.request("STATUS")["streams"] if s["name"] == name)

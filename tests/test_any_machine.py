"""Works on any machine: the stack's own LSL configuration, and consumers that say what is missing.

- The demo stack in a network namespace with loopback only (`unshare -n`; no multicast route,
  no LSLAPICFG in the environment): laps reach the lap timer and the dashboard's standings,
  and Ctrl-C leaves no process. The test talks to the stack from a thread that joins the
  namespace (setns), so the stack itself runs exactly as `raceplane up` would.
- Two demo stacks on one machine at once, no LSLAPICFG: neither sees the other's streams.
- Consumers started with their producer missing report it (STATUS and the central log) within
  5 s; starting the producer clears it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.testing import free_port, wait_until
from tests.e2e_support import REPO, NetNs, Stack, demo_setup

pytestmark = pytest.mark.timeout(240)
RACE = {"track": "spielberg", "laps": 2, "speed": 10}


def without_lsl_config() -> dict[str, str]:
    """The environment of a fresh shell: no LSL configuration handed in."""
    env = {k: v for k, v in os.environ.items() if k not in ("LSLAPICFG", "RACEPLANE_LSL_ISOLATED")}
    return {**env, "PYTHONUNBUFFERED": "1"}


def http_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.load(response)


def final_standings(http_port: int, uid: str) -> dict | None:
    table = http_json(http_port, f"/api/standings?session_uid={uid}")
    return table if table.get("final") else None


def net_namespace(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def in_namespace(namespace: str) -> list[int]:
    """Live processes (zombies aside) in the network namespace `namespace`."""
    found = []
    for process in psutil.process_iter(["status"]):
        try:
            if net_namespace(process.pid) == namespace and process.info["status"] != "zombie":
                found.append(process.pid)
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
    return found


@pytest.fixture
def loopback_only() -> None:
    if sys.platform != "linux" or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("a loopback-only network namespace needs Linux, unshare and ip (iproute2)")
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n is not permitted here: {probe.stderr.decode().strip()}")


def test_demo_stack_on_a_loopback_only_machine(loopback_only, tmp_path: Path) -> None:
    files = demo_setup(tmp_path, race=RACE, game={"rate": 10, "seed": 3})
    output = open(tmp_path / "control_room.out", "wb")  # noqa: SIM115 - the child's
    command = f"ip link set lo up && exec {sys.executable} -m modules.control_room {files.setup}"
    room = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", command],
        cwd=REPO,
        env=without_lsl_config(),
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output.close()
    ours = net_namespace(os.getpid())
    namespace = wait_until(
        lambda: (ns := net_namespace(room.pid)) != ours and ns, timeout=10, message="unshare"
    )
    inside = NetNs(f"/proc/{room.pid}/ns/net")
    try:
        client = inside.run(
            lambda: ModuleClient("127.0.0.1", files.control_port, timeout=20).connect(
                retries=600, interval=0.1
            )
        )

        def ask(cmd: str, payload: dict[str, Any] | None = None) -> Any:
            return inside.run(lambda: client.request(cmd, payload))

        def all_running() -> bool:
            return all(m["state"] == "running" for m in ask("STATUS")["modules"])

        wait_until(all_running, timeout=60, interval=0.2, message="every module running")

        def raced() -> dict | None:
            state = ask("SEND", {"module": "game_sim", "cmd": "STATUS"})
            return state if state.get("finished") else None

        wait_until(raced, timeout=150, interval=0.5, message="the race (on_up) to finish")
        lsl = ask("STATUS")["lsl"]
        assert (lsl["source"], lsl["scope"]) == ("made by the stack", "machine"), lsl
        truth = ask("SEND", {"module": "game_sim", "cmd": "TRUTH"})
        uid = truth["session_uid"]
        expected = {(c["car_index"], lap["lap"]) for c in truth["cars"] for lap in c["laps"]}

        def timed() -> set | None:
            laps = ask("SEND", {"module": "lap_timer", "cmd": "GET_LAPS",
                                "payload": {"session_uid": uid}})  # fmt: skip
            keys = {(lap["car_index"], lap["lap"]) for lap in laps}
            return keys if keys >= expected else None

        assert wait_until(timed, timeout=30, interval=0.5, message="every lap timed") == expected
        table = wait_until(
            lambda: inside.run(lambda: final_standings(files.http_port, uid)),
            timeout=30,
            interval=0.5,
            message="the dashboard's final standings",
        )
        assert [row["car_index"] for row in table["rows"]] == truth["final_order"]
        inputs = ask("SEND", {"module": "lap_timer", "cmd": "STATUS"})["inputs"]
        assert inputs["missing"] == [], inputs
        inside.run(client.close)
        room.send_signal(signal.SIGINT)  # Ctrl-C
        assert room.wait(timeout=30) == 0, (tmp_path / "control_room.out").read_text()
        assert in_namespace(namespace) == []
        assert "no process left" in (tmp_path / "control_room.out").read_text()
    finally:
        inside.close()
        if room.poll() is None:
            os.killpg(room.pid, signal.SIGKILL)
            room.wait(timeout=10)
        for pid in in_namespace(namespace):
            os.kill(pid, signal.SIGKILL)


def test_two_demo_stacks_on_one_machine_do_not_meet(tmp_path: Path) -> None:
    racing = demo_setup(tmp_path / "a", race=RACE, game={"rate": 10, "seed": 4})
    idle = demo_setup(tmp_path / "b", autostart=False)
    no_config: dict[str, str | None] = {"LSLAPICFG": None, "RACEPLANE_LSL_ISOLATED": None}
    stacks = [Stack.start(racing, env=no_config)]
    try:
        stacks.append(Stack.start(idle, env=no_config))
        a, b = stacks
        for stack in stacks:
            stack.wait_running()
        sessions = {stack.ask("STATUS")["lsl"]["session_id"] for stack in stacks}
        assert len(sessions) == 2, sessions

        def samples(stack: Stack) -> int:
            return stack.send("lap_timer", "STATUS")["inputs"]["samples"]["raceplane.lap_data"]

        # A races (its own lap timer reads it) for a while before B is looked at.
        wait_until(lambda: samples(a) >= 100, timeout=60, interval=0.5, message="A racing")
        # B's consumers see B's own producers only: no sample of A's race, no stream of A's.
        with pytest.raises(ModuleError, match="no session yet"):
            b.laps()
        inputs = b.send("lap_timer", "STATUS")["inputs"]
        assert samples(b) == 0, inputs
        assert "raceplane.lap_data" in inputs["connected"]  # B's own (idle) decoder's
        bridge_streams = b.send("web_bridge", "STATUS")["streams"]
        producers = {s["source_id"].split("@", 1)[1] for s in bridge_streams}
        own = {f"decoder:{idle.udp_port}"} | {
            f"{kind}:{idle.ports[kind]}" for kind in ("lap_timer", "engineer") if kind in idle.ports
        }
        assert producers and producers <= own, producers
        # Everything B's LSL session shows (a fresh resolve) is B's, though A's streams are there.
        visible = {s["source_id"].split("@", 1)[1] for s in b.send("recorder", "UPDATE")}
        assert visible == own, visible
        assert f"decoder:{racing.udp_port}" in {
            s["source_id"].split("@", 1)[1] for s in a.send("recorder", "UPDATE")
        }

        # `raceplane status` names each stack's config, and what B's consumers lack: B's
        # decoder is there but idle, so its streams go quiet.
        def status_of(files) -> str:
            return subprocess.run(
                [sys.executable, "-m", "modules.cli", "status", "--port", str(files.control_port)],
                cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
            ).stdout  # fmt: skip

        lsl_line = "lsl:       made by the stack: this machine (loopback), session "
        assert f"{lsl_line}raceplane-stack-{idle.control_port} " in status_of(idle)
        wait_until(
            lambda: "inputs:    lap_timer: no data from telemetry_decoder since" in status_of(idle),
            timeout=30,
            interval=1.0,
            message="raceplane status naming B's quiet decoder",
        )
    finally:
        for stack in stacks:
            stack.close()


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_consumers_say_which_stream_is_missing_until_its_producer_starts(
    spawn, tmp_path: Path
) -> None:
    log_port, log_file = free_port(), tmp_path / "central.jsonl"
    logs = ("--log-port", str(log_port))
    spawn(
        "dareplane_utils.logging.server",
        *("--port", str(log_port), "--logfile", str(log_file)),
        stdout=subprocess.DEVNULL,
    )
    ports = {key: free_port() for key in ("timer", "bridge", "recorder", "decoder")}
    spawn(
        "modules.lap_timer",
        *("--port", str(ports["timer"]), "--db", str(tmp_path / "laps.sqlite3"), *logs),
        stdout=subprocess.DEVNULL,
    )
    spawn(
        "modules.recorder",
        *("--port", str(ports["recorder"]), "--save-path", str(tmp_path), *logs),
        stdout=subprocess.DEVNULL,
    )
    spawn(
        "modules.web_bridge",
        *("--port", str(ports["bridge"]), "--http-port", str(free_port()), *logs),
        *("--lap-timer", f"127.0.0.1:{ports['timer']}"),
        stdout=subprocess.DEVNULL,
    )

    def ask(key: str, cmd: str, payload: dict[str, Any] | None = None) -> Any:
        with ModuleClient("127.0.0.1", ports[key], timeout=10).connect(
            retries=300, interval=0.05
        ) as client:
            return client.request(cmd, payload)

    ask("recorder", "RECORD", {"filename": "race.xdf"})
    began = time.monotonic()

    def missing(key: str) -> set[str]:
        return set(ask(key, "STATUS")["inputs"]["missing"])

    wait_until(lambda: "raceplane.lap_data" in missing("timer"), timeout=5, interval=0.1,
               message="the lap timer reporting lap_data missing")  # fmt: skip
    took = time.monotonic() - began
    for key in ("recorder", "bridge"):
        wait_until(lambda key=key: "raceplane.lap_data" in missing(key), timeout=5, interval=0.1,
                   message=f"the {key} reporting lap_data missing")  # fmt: skip
    # The bridge finds the lap timer's streams; only the decoder's are missing.
    assert "raceplane.laps" not in missing("bridge")
    status = ask("timer", "STATUS")["inputs"]
    [decoder] = [text for text in status["problems"] if "telemetry_decoder" in text]
    assert "raceplane.lap_data" in decoder and "not found since" in decoder

    def warned() -> list[str]:
        return [
            r["message"]
            for r in read_log(log_file)
            if r.get("levelname") == "WARNING" and "raceplane.lap_data not found" in r["message"]
        ]

    names = wait_until(lambda: {m.split(":")[0] for m in warned()} >= {"lap timer", "recorder",
                       "web bridge"} and warned(), timeout=10, interval=0.1)  # fmt: skip
    assert names, "no warning in the central log"
    print(f"lap timer reported lap_data missing {took:.1f} s after the recording began")

    spawn(
        "modules.telemetry_decoder",
        *("--port", str(ports["decoder"]), "--udp-port", str(free_port(2)), *logs),
        stdout=subprocess.DEVNULL,
    )
    for key in ("timer", "recorder", "bridge"):
        wait_until(lambda key=key: not missing(key), timeout=20, interval=0.2,
                   message=f"the {key}'s missing inputs to clear")  # fmt: skip
    wait_until(
        lambda: any(
            "raceplane.lap_data from telemetry_decoder is connected again" in r["message"]
            for r in read_log(log_file)
        ),
        timeout=10,
        interval=0.1,
        message="the all-clear in the central log",
    )

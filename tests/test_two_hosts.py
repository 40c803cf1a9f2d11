"""Two hosts: two network namespaces joined by a veth pair, LSL across them.

Host A (10.77.0.1) runs the game simulator and the telemetry decoder, started there by hand as
a person on that machine would (`raceplane run --stack SETUP ... --host 10.77.0.1`). Host B
(10.77.0.2) runs the control room, its log server, the lap timer and the web bridge; the
control room drives A's modules as `remote` modules. Laps and standings must flow from A's LSL
outlets to B.

LSL across hosts: no config is handed in. The control room on B makes one from the setup file
(it has remote modules: ResolveScope link, both hosts as KnownPeers, a session id of the
stack's), and A's modules, started with `raceplane run --stack SETUP`, make the same one from
the same file. The veth has no multicast route: discovery works by unicast to the peers.
Skipped, saying why, only if namespaces cannot be made.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until
from tests.e2e_support import NetNs, render_setup

REPO = Path(__file__).resolve().parent.parent
HOST_A, HOST_B = "10.77.0.1", "10.77.0.2"
FIELDS = ("lap_time_ms", "sector_ms", "valid", "pit_in", "pit_out", "tyre")
T = TypeVar("T")

pytestmark = pytest.mark.timeout(240)


def ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


@pytest.fixture
def hosts() -> Iterator[tuple[NetNs, NetNs]]:
    if sys.platform != "linux" or (
        not Path("/usr/sbin/ip").exists() and not Path("/sbin/ip").exists()
    ):
        pytest.skip("two hosts need Linux and `ip` (iproute2)")
    tag = uuid.uuid4().hex[:6]
    a, b = f"rp-a-{tag}", f"rp-b-{tag}"
    made = []
    try:
        for name in (a, b):
            result = ip("netns", "add", name)
            if result.returncode != 0:
                pytest.skip(
                    f"cannot create network namespaces: ip netns add: {result.stderr.strip()}"
                )
            made.append(name)
        steps = [
            ("link", "add", f"va{tag}", "type", "veth", "peer", "name", f"vb{tag}"),
            ("link", "set", f"va{tag}", "netns", a),
            ("link", "set", f"vb{tag}", "netns", b),
        ]
        for ns, dev, address in ((a, f"va{tag}", HOST_A), (b, f"vb{tag}", HOST_B)):
            steps += [
                ("-n", ns, "addr", "add", f"{address}/24", "dev", dev),
                ("-n", ns, "link", "set", dev, "up"),
                ("-n", ns, "link", "set", "lo", "up"),
            ]
        for step in steps:
            result = ip(*step)
            assert result.returncode == 0, f"ip {' '.join(step)}: {result.stderr}"
        pair = (NetNs(f"/var/run/netns/{a}", a), NetNs(f"/var/run/netns/{b}", b))
        yield pair
        for ns in pair:
            ns.close()
    finally:
        for name in made:
            for pid in ip("netns", "pids", name).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            ip("netns", "del", name)


def test_laps_and_standings_flow_from_one_host_to_the_other(hosts, tmp_path: Path) -> None:
    host_a, host_b = hosts
    # No LSL config handed in: both hosts take the one the stack makes from the setup file.
    env = {k: v for k, v in os.environ.items() if k not in ("LSLAPICFG", "RACEPLANE_LSL_ISOLATED")}
    env["PYTHONUNBUFFERED"] = "1"
    ports = {key: free_port() for key in ("decoder", "game", "room", "log", "timer", "web", "http")}
    udp = free_port()
    log_args = ("--log-host", HOST_B, "--log-port", str(ports["log"]))
    processes: list[subprocess.Popen] = []

    def start(ns: NetNs, name: str, *args: str) -> None:
        out = open(tmp_path / f"{name}.out", "wb")  # noqa: SIM115 - the child's
        processes.append(
            subprocess.Popen(
                ["ip", "netns", "exec", ns.name, sys.executable, *args],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        out.close()

    setup = {
        "control_room": {
            "host": HOST_B,
            "port": ports["room"],
            "log_host": HOST_B,
            "log_port": ports["log"],
            "log_file": str(tmp_path / "logs" / "raceplane.jsonl"),
            "output_dir": str(tmp_path / "logs"),
            "grace_s": 1.0,
        },
        "modules": {
            "telemetry_decoder": {"kind": "remote", "ip": HOST_A, "port": ports["decoder"]},
            "game_sim": {"kind": "remote", "ip": HOST_A, "port": ports["game"]},
            "lap_timer": {
                "kind": "lap_timer",
                "port": ports["timer"],
                "kwargs": {"db": str(tmp_path / "laps.sqlite3")},
            },
            "web_bridge": {
                "kind": "web_bridge",
                "port": ports["web"],
                "kwargs": {
                    "http_port": ports["http"],
                    "lap_timer": f"127.0.0.1:{ports['timer']}",
                },
            },
        },
    }
    setup_file = tmp_path / "two_hosts.toml"
    setup_file.write_text(render_setup(setup))
    try:
        start(host_b, "control_room", "-m", "modules.control_room", str(setup_file))
        start(
            host_a,
            "telemetry_decoder",
            *("-m", "modules.cli", "run", "--stack", str(setup_file), "telemetry_decoder"),
            *("--host", HOST_A, "--port", str(ports["decoder"])),
            *("--udp-port", str(udp), *log_args),
        )
        start(
            host_a,
            "game_sim",
            *("-m", "modules.cli", "run", "--stack", str(setup_file), "game_sim"),
            *("--host", HOST_A, "--port", str(ports["game"])),
            *("--target-port", str(udp), *log_args),
        )
        room = host_b.run(
            lambda: ModuleClient(HOST_B, ports["room"], timeout=20).connect(
                retries=600, interval=0.1
            )
        )

        def ask(cmd: str, payload: dict[str, Any] | None = None) -> Any:
            return host_b.run(lambda: room.request(cmd, payload))

        def ready() -> bool:
            rows = {row["key"]: row for row in ask("STATUS")["modules"]}
            local = all(rows[k]["state"] == "running" for k in ("lap_timer", "web_bridge"))
            return local and all(rows[k]["up"] for k in rows)

        wait_until(ready, timeout=60, interval=0.3, message="both hosts' modules up")

        def timer_inputs() -> int:
            status = ask("SEND", {"module": "lap_timer", "cmd": "STATUS"})
            return len(status["inputs"]["connected"])

        wait_until(lambda: timer_inputs() >= 7, timeout=60, interval=0.5,
                   message="the lap timer on B reading the decoder's streams on A")  # fmt: skip
        race = {"track": "spielberg", "laps": 2, "speed": 10, "rate": 10, "seed": 2}
        ask("SEND", {"module": "game_sim", "cmd": "START", "payload": race})
        wait_until(
            lambda: ask("SEND", {"module": "game_sim", "cmd": "STATUS"})["finished"],
            timeout=120,
            interval=0.5,
        )
        truth = ask("SEND", {"module": "game_sim", "cmd": "TRUTH"})
        uid = truth["session_uid"]
        expected = {(c["car_index"], lap["lap"]): lap for c in truth["cars"] for lap in c["laps"]}

        def laps() -> dict | None:
            got = ask("SEND", {"module": "lap_timer", "cmd": "GET_LAPS",
                               "payload": {"session_uid": uid}})  # fmt: skip
            keyed = {(lap["car_index"], lap["lap"]): lap for lap in got}
            return keyed if set(keyed) >= set(expected) else None

        got = wait_until(laps, timeout=30, interval=0.5, message="every lap on host B")
        assert sorted(got) == sorted(expected)
        assert {k: [f for f in FIELDS if v[f] != got[k][f]] for k, v in expected.items()} == {
            k: [] for k in expected
        }

        def standings() -> dict | None:
            url = f"http://127.0.0.1:{ports['http']}/api/standings?session_uid={uid}"
            with urllib.request.urlopen(url, timeout=10) as response:
                table = json.load(response)
            return table if table.get("final") else None

        table = wait_until(
            lambda: host_b.run(standings), timeout=30, interval=0.5, message="final standings"
        )
        assert [row["car_index"] for row in table["rows"]] == truth["final_order"]
    finally:
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

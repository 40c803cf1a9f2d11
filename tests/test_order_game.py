"""Order by data through real processes: a game capture replayed flat out, acknowledged by the
lap timer, ends with every lap equal to TRUTH."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from test_lap_timer_e2e import check_laps, client

from dareplane_utils.testing import free_port, wait_until
from modules.f1_udp.capture import CaptureWriter
from modules.game_sim.broadcast import Broadcaster
from modules.game_sim.race import RaceSim, SessionOptions

ROOT = Path(__file__).resolve().parent.parent


def make_capture(path: Path, options: SessionOptions, uid: int) -> tuple[dict, int]:
    """A whole simulated session as a capture file; its TRUTH and its datagram count."""
    sim = RaceSim(options, session_uid=uid)
    broadcaster = Broadcaster(sim)
    count = 0
    with CaptureWriter(path) as writer:
        while not sim.over:
            at = sim.time_s
            for datagram in broadcaster.step():
                writer.write(datagram, 1_700_000_000.0 + at)
                count += 1
    return sim.truth(), count


def start_chain(spawn, tmp_path: Path, timer_too: bool = True) -> dict:
    udp, log = free_port(socket.SOCK_DGRAM), str(free_port())
    ports = {"udp": udp, **{name: free_port() for name in ("decoder", "timer", "sim")}}
    common = ("--log-port", log)
    spawn(
        "modules.telemetry_decoder",
        *("--port", str(ports["decoder"]), "--udp-port", str(udp), *common),
        stdout=open(tmp_path / "decoder.log", "w"),  # noqa: SIM115
    )
    ports["start_timer"] = lambda: spawn(
        "modules.lap_timer",
        *("--port", str(ports["timer"]), "--db", str(tmp_path / "laps.sqlite3"), *common),
        stdout=open(tmp_path / "timer.log", "w"),  # noqa: SIM115
    )
    if timer_too:
        ports["timer_process"] = ports["start_timer"]()
    return ports


def all_seven(timer) -> None:
    wait_until(
        lambda: len(timer.request("STATUS")["inputs"]["connected"]) == 7,
        timeout=30,
        interval=0.1,
        message="the lap timer reading all seven decoder streams",
    )


def test_a_capture_replayed_flat_out_ends_with_every_lap_of_truth(spawn, tmp_path):
    options = SessionOptions(
        cars=20, laps=3, seed=4, rate=10, retirements=1, flashback_at_s=100.0, red_flag_at_lap=2
    )
    truth, datagrams = make_capture(tmp_path / "race.rpcap", options, uid=0xCA_0001)
    ports = start_chain(spawn, tmp_path)
    timer, decoder = client(ports["timer"]), client(ports["decoder"])
    all_seven(timer)
    replay = subprocess.run(
        [
            sys.executable,
            "-m",
            "modules.game_sim.replay",
            str(tmp_path / "race.rpcap"),
            "--flat-out",
            *("--target-port", str(ports["udp"])),
            *("--ack", f"127.0.0.1:{ports['timer']}"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert f"sent {datagrams} datagrams" in replay.stdout and "all applied by" in replay.stdout
    # No waiting: the replay ended once the lap timer had applied the last frame.
    check_laps(timer, truth)
    standings = timer.request("GET_STANDINGS", {"session_uid": truth["session_uid"]})
    assert [row["car_index"] for row in standings["rows"]] == truth["final_order"]
    inputs = timer.request("STATUS")["inputs"]
    assert inputs["lost"] == {} and inputs["rejected"] == {}
    # LapData and CarStatus (dense) are exact; a sparse sample may be counted late, never lost.
    assert set(inputs["merge"]["late_by_stream"]) <= {
        "raceplane.session",
        "raceplane.participants",
        "raceplane.events",
        "raceplane.session_history",
        "raceplane.final_classification",
    }
    wait_until(lambda: decoder.request("STATUS")["received"] == datagrams, timeout=10)
    assert decoder.request("STATUS").get("kernel_drops", 0) == 0

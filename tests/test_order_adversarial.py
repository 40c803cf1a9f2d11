"""Order by data under adversarial timing, through real processes and real LSL: a lap timer
started after the replay that feeds it, bursts, the samples of every frame pushed in the reverse
of the game's order (stream B's before stream A's), and the lap timer paused with SIGSTOP for 2 s
while the producer keeps pushing. Laps, sectors and standings stay those of TRUTH; nothing is
lost, and anything out of order would be counted, never silent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_lap_timer_e2e import check_laps, client
from test_order_game import make_capture

from dareplane_utils.client.module_client import ModuleError
from dareplane_utils.stream_watcher.outlets import encode_json, make_outlet, push_frames
from dareplane_utils.testing import free_port, wait_until
from modules.game_sim.broadcast import Broadcaster
from modules.game_sim.race import RaceSim, SessionOptions
from modules.lap_timer.inputs import LAP_DATA, MERGE_ORDER, NUMERIC, STREAMS
from modules.stream_catalogue import STREAMS as CATALOGUE
from modules.telemetry_decoder.core import Datagram, DecoderCore

ROOT = Path(__file__).resolve().parent.parent
# A whole simulated race is made in the test process first: room for a loaded 2-core machine.
pytestmark = pytest.mark.timeout(400)
# Frames pushed at once: a burst (no pause between bursts either: the producer runs flat out).
BURST_FRAMES = 40
PAUSE_S = 2.0  # the SIGSTOP drill: how long the lap timer is frozen (the scenario, not a wait)
SPARSE = {
    "raceplane.session",
    "raceplane.participants",
    "raceplane.events",
    "raceplane.session_history",
    "raceplane.final_classification",
}

Frame = list[tuple[str, list, list[float]]]  # (stream, samples, stamps) in the game's order


def decoded_frames(options: SessionOptions, uid: int) -> tuple[list[Frame], dict]:
    """A whole session through the real decoder core, per game frame: the lap timer's streams'
    samples as the decoder publishes them; and TRUTH."""
    sim = RaceSim(options, session_uid=uid)
    broadcaster, core = Broadcaster(sim), DecoderCore()
    frames: list[Frame] = []
    clock = 0.0
    while not sim.over:
        batch = []
        for data in broadcaster.step():
            clock += 1e-5
            batch.append(Datagram(data, ("127.0.0.1", 20777), clock))
        frame: Frame = []
        for publication in core.feed(batch):
            if publication.stream not in STREAMS:
                continue
            if publication.rows is not None:
                samples = [list(row) for row in publication.rows]
            else:
                samples = [[encode_json(obj)] for obj in publication.objects]
            frame.append((publication.stream, samples, list(publication.timestamps)))
        if frame:
            frames.append(frame)
    return frames, sim.truth()


def b_before_a(frame: Frame) -> Frame:
    """The frame's samples in the reverse of the game's send order (events before LapData,
    CarStatus before LapData, ...)."""
    rank = {name: i for i, name in enumerate(MERGE_ORDER)}
    return sorted(frame, key=lambda part: -rank[part[0]])


def push(outlets: dict, frames: list[Frame]) -> None:
    """One burst: every sample of `frames`, per frame in reverse stream order, without pause."""
    for frame in frames:
        for stream, samples, stamps in b_before_a(frame):
            values = np.array(samples) if stream in NUMERIC else samples
            push_frames(outlets[stream], values, stamps)


def check_standings(timer, truth: dict) -> None:
    """The session's final standings (once the lap timer has applied the flag) are TRUTH's."""

    def final() -> dict | None:
        try:
            table = timer.request("GET_STANDINGS", {"session_uid": truth["session_uid"]})
        except ModuleError:  # the session's first frame not applied yet
            return None
        return table if table["final"] else None

    standings = wait_until(final, timeout=120, interval=0.2, message="the final standings")
    assert [row["car_index"] for row in standings["rows"]] == truth["final_order"]


def check_inputs(timer) -> dict:
    """Nothing lost or refused; only a sparse stream may be counted late (never silent)."""
    inputs = timer.request("STATUS")["inputs"]
    assert inputs["lost"] == {} and inputs["rejected"] == {}
    assert set(inputs["merge"]["late_by_stream"]) <= SPARSE, inputs["merge"]
    assert inputs["merge"]["held"] == 0
    return inputs


def test_a_paused_lap_timer_fed_bursts_b_before_a_ends_with_truth(spawn, tmp_path):
    options = SessionOptions(cars=20, laps=2, seed=11, rate=10, retirements=1, flashback_at_s=60.0)
    frames, truth = decoded_frames(options, uid=0xAD_0001)
    lap_data_rows = sum(len(s) for f in frames for name, s, _ in f if name == LAP_DATA)
    outlets = {name: make_outlet(CATALOGUE[name].spec("adversary")) for name in STREAMS}
    port = free_port()
    process = spawn(
        "modules.lap_timer",
        *("--port", str(port), "--db", str(tmp_path / "laps.sqlite3")),
        *("--log-port", str(free_port())),
        stdout=open(tmp_path / "timer.log", "w"),  # noqa: SIM115
    )
    timer = client(port)
    wait_until(
        lambda: len(timer.request("STATUS")["inputs"]["connected"]) == len(STREAMS),
        timeout=30,
        interval=0.2,
        message="the lap timer reading every stream",
    )
    third = len(frames) // 3
    for start in range(0, third, BURST_FRAMES):
        push(outlets, frames[start : min(start + BURST_FRAMES, third)])
    # Frozen mid-race while the rest of the race is pushed: its inlets queue it all.
    os.kill(process.pid, signal.SIGSTOP)
    try:
        paused_at = time.monotonic()
        for start in range(third, len(frames), BURST_FRAMES):
            push(outlets, frames[start : start + BURST_FRAMES])
        time.sleep(max(0.0, PAUSE_S - (time.monotonic() - paused_at)))  # the drill itself
    finally:
        os.kill(process.pid, signal.SIGCONT)
    wait_until(
        lambda: timer.request("STATUS")["inputs"]["samples"][LAP_DATA] == lap_data_rows,
        timeout=120,
        interval=0.2,
        message="every LapData row read",
    )
    check_standings(timer, truth)
    check_laps(timer, truth)
    check_inputs(timer)
    timer.request("CLOSE")
    timer.close()


def test_a_flat_out_replay_waits_for_consumers_started_after_it(spawn, tmp_path):
    """The replay first, then two lap timers, then the decoder between them: the replay sends
    nothing until both read every stream they need, goes as fast as the slower one applies,
    and ends once both have everything."""
    options = SessionOptions(cars=20, laps=2, seed=12, rate=10, retirements=1)
    truth, datagrams = make_capture(tmp_path / "race.rpcap", options, uid=0xAD_0002)
    udp, log = free_port(socket.SOCK_DGRAM), str(free_port())
    decoder_port, timer_ports = free_port(), (free_port(), free_port())
    replay = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modules.game_sim.replay",
            str(tmp_path / "race.rpcap"),
            "--flat-out",
            *("--target-port", str(udp)),
            *(arg for port in timer_ports for arg in ("--ack", f"127.0.0.1:{port}")),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        timers = []
        for number, port in enumerate(timer_ports):
            spawn(
                "modules.lap_timer",
                *("--port", str(port), "--db", str(tmp_path / f"laps{number}.sqlite3")),
                *("--log-port", log),
                stdout=open(tmp_path / f"timer{number}.log", "w"),  # noqa: SIM115
            )
            timers.append(client(port))
        # The lap timers answer (the replay's acknowledgement connects) with nothing to read.
        assert timers[0].request("STATUS")["inputs"]["connected"] == []
        spawn(
            "modules.telemetry_decoder",
            *("--port", str(decoder_port), "--udp-port", str(udp), "--log-port", log),
            stdout=open(tmp_path / "decoder.log", "w"),  # noqa: SIM115
        )
        out, err = replay.communicate(timeout=300)
    finally:
        replay.kill()
    assert replay.returncode == 0, err[-2000:]
    assert f"sent {datagrams} datagrams" in out and "all applied by" in out
    for timer in timers:
        check_laps(timer, truth)
        check_standings(timer, truth)
        check_inputs(timer)
        timer.request("CLOSE")
        timer.close()


def test_a_restarted_producer_with_a_new_session_and_sequence_ends_with_both_truths(
    spawn, tmp_path
):
    """Bad input through real processes: the producer stops mid-stream (its outlets gone),
    restarts (same source_ids) with a new session whose sequence starts far below the last
    one. Both sessions end with their own TRUTH; nothing stalls, nothing is lost."""
    first, truth_a = decoded_frames(
        SessionOptions(cars=20, laps=2, seed=13, rate=10, retirements=1), uid=0xAD_0003
    )
    second, truth_b = decoded_frames(SessionOptions(cars=20, laps=2, seed=14, rate=10), uid=7)
    port = free_port()
    spawn(
        "modules.lap_timer",
        *("--port", str(port), "--db", str(tmp_path / "laps.sqlite3")),
        *("--log-port", str(free_port())),
        stdout=open(tmp_path / "timer.log", "w"),  # noqa: SIM115
    )
    timer = client(port)
    for frames, truth in ((first, truth_a), (second, truth_b)):
        outlets = {name: make_outlet(CATALOGUE[name].spec("restarting")) for name in STREAMS}
        # The lap timer's inlets find the restarted producer (liblsl recovers them by
        # source_id); what is pushed before they are back is lost, so wait for them.
        for name, outlet in outlets.items():
            assert outlet.wait_for_consumers(60), f"nobody reads {name}"
        for start in range(0, len(frames), BURST_FRAMES):
            push(outlets, frames[start : start + BURST_FRAMES])
        check_standings(timer, truth)
        del outlets  # the producer goes away before the next one starts
    for truth in (truth_a, truth_b):
        check_laps(timer, truth)
    check_inputs(timer)
    timer.request("CLOSE")
    timer.close()


def test_flat_out_in_a_stack_is_acknowledged_by_the_stacks_lap_timer(tmp_path):
    """`raceplane replay --flat-out` with no --ack: the running stack's lap timer is found
    through its control room, the replay goes as fast as it applies and ends when it has all."""
    from e2e_support import Stack, demo_setup

    options = SessionOptions(cars=20, laps=2, seed=16, rate=10)
    truth, datagrams = make_capture(tmp_path / "race.rpcap", options, uid=0xAD_0005)
    files = demo_setup(tmp_path / "stack", autostart=False)
    stack = Stack.start(files)
    try:
        # No waiting for the lap timer's streams here: the replay does it.
        stack.wait_running(("telemetry_decoder", "lap_timer"))
        replay = subprocess.run(
            [
                sys.executable,
                "-m",
                "modules.game_sim.replay",
                str(tmp_path / "race.rpcap"),
                "--flat-out",
                *("--target-port", str(files.udp_port)),
                *("--control-room", f"127.0.0.1:{files.control_port}"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
        assert replay.returncode == 0, replay.stderr[-2000:]
        timer_at = f"127.0.0.1:{files.ports['lap_timer']}"
        assert f"acknowledged by the stack's lap timer(s): {timer_at}" in replay.stderr
        assert f"sent {datagrams} datagrams" in replay.stdout
        assert f"all applied by {timer_at}" in replay.stdout
        timer = stack.client(files.ports["lap_timer"])
        check_laps(timer, truth)
        check_standings(timer, truth)
        check_inputs(timer)
    finally:
        stack.close()

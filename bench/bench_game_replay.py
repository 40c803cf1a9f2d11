"""A whole race's game capture replayed flat out through the decoder into the lap timer.

    .venv/bin/python bench/bench_game_replay.py          (or: make bench)

The capture: the game simulator's race, 22 cars at 60 Hz, every datagram it sends
(588,600), written as a raw UDP capture with its TRUTH beside it; made once and kept under
.bench/ (making it takes a few CPU minutes). Then the real processes: the telemetry decoder
(UDP in, LSL out) and the lap timer (LSL in), and `raceplane replay --flat-out --ack` (the
lap timer's command port: at most a window of frames ahead of what it has applied, ending when
it has applied the last frame). Measured: datagrams per second from the first datagram sent to
the lap timer having applied the last (the replay's own run), the CPU seconds of each process
meanwhile, loss (the decoder's STATUS: datagrams received vs sent, the kernel's drop count,
rejects, detected frame gaps; the lap timer's STATUS: samples lost in its rings, refused), and
every lap equal to TRUTH. No peer replays onto streams, so the table stands against the goal
(>= 100k datagrams/s, 0 loss).
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peers import BENCH_DIR, print_table  # noqa: E402
from dareplane_utils.testing import free_port, isolate_lsl, wait_until  # noqa: E402

# 19 laps of Monza at 60 Hz: 588,600 datagrams (the race is ~680k: 22 laps, 15 % more
# time). RACEPLANE_BENCH_LAPS makes it shorter (a quick look; each length is its own capture).
RACE = {
    "cars": 22,
    "rate": 60,
    "laps": int(os.environ.get("RACEPLANE_BENCH_LAPS", "19")),
    "seed": 7,
    "retirements": 1,
}
UID = 0x5EED_0680
FIELDS = ("lap_time_ms", "sector_ms", "valid", "pit_in", "pit_out", "tyre")
GOAL_RATE = 100_000


def capture() -> tuple[Path, dict, int]:
    """The race's capture, its TRUTH and datagram count (made once, then read from .bench/)."""
    from modules.f1_udp.capture import CaptureWriter
    from modules.game_sim.broadcast import Broadcaster
    from modules.game_sim.race import RaceSim, SessionOptions

    name = "race-" + "-".join(f"{k}{v}" for k, v in RACE.items())
    path, meta = BENCH_DIR / f"{name}.rpcap", BENCH_DIR / f"{name}.truth.json"
    if path.exists() and meta.exists():
        saved = json.loads(meta.read_text())
        return path, saved["truth"], saved["datagrams"]
    BENCH_DIR.mkdir(exist_ok=True)
    print(f"making the capture {path.name} (once) ...", flush=True)
    sim = RaceSim(SessionOptions(**RACE), session_uid=UID)
    broadcaster = Broadcaster(sim)
    count = 0
    partial = path.with_suffix(".partial")
    with CaptureWriter(partial) as writer:
        while not sim.over:
            at = 1_700_000_000.0 + sim.time_s
            for datagram in broadcaster.step():
                writer.write(datagram, at)
                count += 1
    partial.rename(path)
    truth = sim.truth()
    meta.write_text(json.dumps({"truth": truth, "datagrams": count}))
    return path, truth, count


def start(module: str, *args: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
    )


def cpu_s(process: subprocess.Popen) -> float:
    times = psutil.Process(process.pid).cpu_times()
    return times.user + times.system


def laps_wrong(timer, truth: dict) -> tuple[int, int]:
    """(laps in TRUTH, laps the lap timer holds that differ from TRUTH or are missing/extra)."""
    expected = {(c["car_index"], lap["lap"]): lap for c in truth["cars"] for lap in c["laps"]}
    mine = {
        (lap["car_index"], lap["lap"]): lap
        for lap in timer.request("GET_LAPS", {"session_uid": truth["session_uid"]})
    }
    wrong = len(set(expected) ^ set(mine))
    wrong += sum(
        any(lap[f] != mine[key][f] for f in FIELDS) for key, lap in expected.items() if key in mine
    )
    return len(expected), wrong


def run(path: Path, truth: dict, datagrams: int, tmp: Path) -> list[object]:
    from dareplane_utils.client.module_client import ModuleClient

    udp, log = free_port(socket.SOCK_DGRAM), str(free_port())
    decoder_port, timer_port = free_port(), free_port()
    common = ("--log-port", log)
    processes = {
        "decoder": start(
            "modules.telemetry_decoder",
            *("--port", str(decoder_port), "--udp-port", str(udp), *common),
            log=tmp / "decoder.log",
        ),
        "lap timer": start(
            "modules.lap_timer",
            *("--port", str(timer_port), "--db", str(tmp / "laps.sqlite3"), *common),
            log=tmp / "timer.log",
        ),
    }
    try:
        timer = ModuleClient("127.0.0.1", timer_port, timeout=30).connect(retries=300)
        decoder = ModuleClient("127.0.0.1", decoder_port, timeout=30).connect(retries=300)
        wait_until(
            lambda: len(timer.request("STATUS")["inputs"]["connected"]) == 7,
            timeout=60,
            interval=0.1,
            message="the lap timer reading all seven decoder streams",
        )
        before = {name: cpu_s(p) for name, p in processes.items()}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        children_before = children.ru_utime + children.ru_stime
        replay = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modules.game_sim.replay",
                str(path),
                "--flat-out",
                *("--target-port", str(udp)),
                *("--ack", f"127.0.0.1:{timer_port}"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started = time.perf_counter()
        out, err = replay.communicate(timeout=900)
        took = time.perf_counter() - started
        # The replay has exited and been waited for: its CPU is in this process's children's.
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        replay_cpu = children.ru_utime + children.ru_stime - children_before
        if replay.returncode != 0 or f"sent {datagrams} datagrams" not in out:
            raise RuntimeError(f"replay failed ({replay.returncode}): {out} {err[-2000:]}")
        cpu = {name: cpu_s(p) - before[name] for name, p in processes.items()}
        wait_until(
            lambda: decoder.request("STATUS")["received"] >= datagrams, timeout=10, interval=0.05
        )
        status = decoder.request("STATUS")
        inputs = timer.request("STATUS")["inputs"]
        laps, wrong = laps_wrong(timer, truth)
        for client in (timer, decoder):
            client.send("CLOSE")
    finally:
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    loss = (
        (datagrams - status["received"])
        + (status.get("kernel_drops") or 0)
        + sum(status["rejects"].values())
        + status["drops_detected"]
        + sum(inputs["lost"].values())
        + sum(inputs["rejected"].values())
    )
    return [
        "replay -> decoder -> lap timer",
        datagrams,
        took,
        datagrams / took,
        replay_cpu / datagrams * 1e6,
        cpu["decoder"] / datagrams * 1e6,
        cpu["lap timer"] / datagrams * 1e6,
        f"{status['received']} recv, {status.get('kernel_drops')} kernel, "
        f"{sum(status['rejects'].values())} rej, {status['drops_detected']} gaps, "
        f"{sum(inputs['lost'].values())} ring, {sum(inputs['rejected'].values())} refused",
        loss,
        f"{laps - wrong}/{laps}",
    ]


def main() -> int:
    isolate_lsl("raceplane-bench-game-replay")
    path, truth, datagrams = capture()
    with tempfile.TemporaryDirectory() as tmp:
        row = run(path, truth, datagrams, Path(tmp))
    print_table(
        f"a whole race's capture ({RACE['cars']} cars, {RACE['rate']} Hz, {RACE['laps']} laps) "
        f"replayed flat out with acknowledgement; goal >= {GOAL_RATE:,} datagrams/s, 0 loss, "
        "every lap equal to TRUTH",
        [
            "path",
            "datagrams",
            "wall s",
            "datagrams/s",
            "replay CPU µs/dgram",
            "decoder CPU µs/dgram",
            "lap timer CPU µs/dgram",
            "counters",
            "loss",
            "laps = TRUTH",
        ],
        [row],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

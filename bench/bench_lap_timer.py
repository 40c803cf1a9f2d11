"""Lap timer: laps processed per second when fed a whole race flat out, and the delay from a
lap completing in the game to its sample on `raceplane.laps` (p50/p99).

    .venv/bin/python bench/bench_lap_timer.py          (or: make bench)

Rows:
- in-process: a whole 22-car race (the game simulator's packets through the decoder core,
  prepared beforehand) fed to LapTimer as fast as it takes it, SQLite commit per lap included.
- through LSL: the same race's samples pushed at once into real outlets; the lap timer process
  reads them with its StreamWatchers; from the first push to the last lap on `raceplane.laps`.
- latency: a stand-in game sends LapData over UDP at 60 Hz to the real decoder; one car
  completes a lap every third frame; from the datagram's send to the lap sample's LSL timestamp
  (the same machine clock, pylsl.local_clock).
- shutdown: from the CLOSE command to the lap timer process's exit, with every input stream
  connected and with no decoder at all (its stream finders still looking); the control room's
  Ctrl-C goal for the whole stack is 2 s.
No peer is named for the lap timer, so the rows compare its own paths. Rates are per CPU second
of the lap timer (this process, or the lap timer process), since wall time on a shared machine
says more about the neighbours than about the code.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peers import print_table  # noqa: E402
from dareplane_utils.testing import free_port, isolate_lsl, wait_until  # noqa: E402

RACE = {"laps": 10, "cars": 22, "retirements": 1, "seed": 3, "rate": 20}
LATENCY_LAPS = 300
LATENCY_RATE_HZ = 60
UID = 0x5EED_0001


def race_samples() -> tuple[list[tuple[float, str, object]], int]:
    """A whole race as (timestamp, stream, sample) for the lap timer's inputs, and its lap count."""
    from modules.game_sim.broadcast import Broadcaster
    from modules.game_sim.race import RaceSim, SessionOptions
    from modules.lap_timer.inputs import STREAMS
    from modules.telemetry_decoder.core import Datagram, DecoderCore

    sim = RaceSim(SessionOptions(**RACE), session_uid=UID)
    broadcaster, core = Broadcaster(sim), DecoderCore()
    samples: list[tuple[float, str, object]] = []
    clock = 0.0
    while not sim.over:
        batch = []
        for data in broadcaster.step():
            clock += 1e-5
            batch.append(Datagram(data, ("127.0.0.1", 1), clock))
        for pub in core.feed(batch):
            if pub.stream in STREAMS:
                values = pub.rows if pub.rows is not None else pub.objects
                samples += [(t, pub.stream, v) for t, v in zip(pub.timestamps, values, strict=True)]
    samples.sort(key=lambda item: item[0])
    return samples, sum(len(car.laps) for car in sim.cars)


def in_process(samples: list, laps: int) -> list[object]:
    from modules.lap_timer.inputs import NUMERIC, Inputs
    from modules.lap_timer.store import Store
    from modules.lap_timer.timer import LapTimer
    from modules.stream_catalogue import STREAMS as CATALOGUE

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.sqlite3")
        made: list[dict] = []
        timer = LapTimer(store, publish_lap=made.append)
        inputs = Inputs(timer)
        for name in NUMERIC:
            inputs.set_channels(name, CATALOGUE[name].spec("bench").labels)
        frames = sum(1 for _, stream, _ in samples if stream == "raceplane.lap_data")
        start, cpu = time.perf_counter(), time.process_time()
        # Fed in slices like the feed's polls (and flushes standings once per slice).
        for i in range(0, len(samples), 256):
            inputs.handle_batch((stream, v) for _, stream, v in samples[i : i + 256])
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        store.close()
    assert len(made) == laps, f"{len(made)} laps made, race has {laps}"
    return ["in-process (LapTimer + SQLite)", laps, frames, elapsed, cpu, laps / cpu, frames / cpu]


def start(module: str, *args: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdout=open(log, "a"),
        stderr=subprocess.STDOUT,
    )


def lap_timer(tmp: Path) -> tuple[subprocess.Popen, object]:
    from dareplane_utils.client.module_client import ModuleClient

    port = free_port()
    process = start(
        "modules.lap_timer",
        *("--port", str(port), "--db", str(tmp / "timer.sqlite3"), "--log-port", str(free_port())),
        log=tmp / "timer.log",
    )
    return process, ModuleClient("127.0.0.1", port, timeout=30).connect(retries=300)


def laps_inlet():
    from dareplane_utils.stream_watcher.lsl_stream_watcher import StreamWatcher

    watcher = StreamWatcher("raceplane.laps", buffer_size_samples=1 << 14)
    watcher.connect_to_stream(timeout=20)
    return watcher


def drain(watcher, into: list[tuple[float, dict]]) -> int:
    watcher.update()
    if watcher.n_new:
        data, stamps = watcher.last(watcher.n_new)
        watcher.n_new = 0
        into += [(float(t), json.loads(row[0])) for t, row in zip(stamps, data, strict=True)]
    return len(into)


def through_lsl(samples: list, laps: int, tmp: Path) -> list[object]:
    import pylsl

    from dareplane_utils.stream_watcher.outlets import make_outlet, push_frames, push_json
    from modules.lap_timer.inputs import NUMERIC, STREAMS
    from modules.stream_catalogue import STREAMS as CATALOGUE

    outlets = {
        name: make_outlet(CATALOGUE[name].spec("bench"), max_buffered=3600) for name in STREAMS
    }
    process, client = lap_timer(tmp)
    try:
        wait_until(
            lambda: len(client.request("STATUS")["inputs"]["connected"]) == len(STREAMS),
            timeout=30,
            interval=0.2,
        )
        inlet = laps_inlet()
        got: list[tuple[float, dict]] = []
        worker = psutil.Process(process.pid)
        cpu = sum(worker.cpu_times()[:2])
        start_t = pylsl.local_clock()
        # Runs of one stream go out as one chunk; the order across streams is kept.
        i = 0
        while i < len(samples):
            stream = samples[i][1]
            j = i
            while j < len(samples) and samples[j][1] == stream:
                j += 1
            if stream in NUMERIC:
                push_frames(outlets[stream], np.array([s for _, _, s in samples[i:j]]))
            else:
                for _, _, obj in samples[i:j]:
                    push_json(outlets[stream], obj)
            i = j
        wait_until(lambda: drain(inlet, got) >= laps, timeout=300, interval=0.01)
        elapsed = got[-1][0] - start_t
        cpu = sum(worker.cpu_times()[:2]) - cpu
        lost = client.request("STATUS")["inputs"]["lost"]
        frames = sum(1 for _, stream, _ in samples if stream == "raceplane.lap_data")
        label = "through LSL (process)" + (f", lost {lost}" if lost else "")
        return [label, laps, frames, elapsed, cpu, laps / cpu, frames / cpu]
    finally:
        SHUTDOWN.append(["every input connected", close(process, client)])


SHUTDOWN: list[list[object]] = []


def close(process: subprocess.Popen, client) -> float:
    """Seconds from sending CLOSE to the process's exit."""
    start_t = time.perf_counter()
    client.send("CLOSE")
    process.wait(timeout=30)
    return time.perf_counter() - start_t


def shutdown_without_decoder(tmp: Path) -> None:
    process, client = lap_timer(tmp)
    time.sleep(1.0)  # the finders are mid-look
    SHUTDOWN.append(["no decoder (finders looking)", close(process, client)])


def lap_packet(fmt: int, frame: int, laps: np.ndarray, last: np.ndarray) -> bytes:
    from modules.f1_udp import PacketId, fill_header, new_packet

    packet = new_packet(fmt, PacketId.LAP_DATA)
    fill_header(
        packet, session_uid=UID, session_time=frame / LATENCY_RATE_HZ, frame_identifier=frame
    )
    data = packet["lapData"]
    data["currentLapNum"][:22] = laps
    data["lastLapTimeInMS"][:22] = last
    data["resultStatus"][:22] = 2
    data["driverStatus"][:22] = 4
    data["carPosition"][:22] = np.arange(1, 23)
    return packet.tobytes()


def latency(tmp: Path) -> tuple[list[float], int]:
    import pylsl

    from dareplane_utils.client.module_client import ModuleClient

    udp, port = free_port(socket.SOCK_DGRAM), free_port()
    decoder = start(
        "modules.telemetry_decoder",
        *("--port", str(port), "--udp-port", str(udp), "--log-port", str(free_port())),
        log=tmp / "decoder.log",
    )
    ModuleClient("127.0.0.1", port, timeout=30).connect(retries=300).close()
    process, client = lap_timer(tmp)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        wait_until(
            lambda: "raceplane.lap_data" in client.request("STATUS")["inputs"]["connected"],
            timeout=30,
            interval=0.2,
        )
        inlet = laps_inlet()
        laps = np.ones(22, dtype=int)
        last = np.zeros(22, dtype=int)
        sent: dict[tuple[int, int], float] = {}
        got: list[tuple[float, dict]] = []
        frame = 0
        next_t = time.perf_counter()
        while len(sent) < LATENCY_LAPS:
            frame += 1
            if frame % 3 == 0 and frame > 30:
                car = (frame // 3) % 22
                sent[(car, int(laps[car]))] = 0.0
                last[car] = 80_000 + frame
                laps[car] += 1
            data = lap_packet(2025, frame, laps, last)
            stamp = pylsl.local_clock()
            sender.sendto(data, ("127.0.0.1", udp))
            for key, value in sent.items():
                if value == 0.0:
                    sent[key] = stamp
            drain(inlet, got)
            next_t += 1 / LATENCY_RATE_HZ
            time.sleep(max(0.0, next_t - time.perf_counter()))
        wait_until(lambda: drain(inlet, got) >= len(sent), timeout=30, interval=0.01)
        delays = [(t - sent[(lap["car_index"], lap["lap"])]) * 1000 for t, lap in got]
        return delays, len(sent)
    finally:
        sender.close()
        client.request("CLOSE")
        process.wait(timeout=30)
        decoder.terminate()
        decoder.wait(timeout=30)


def main() -> int:
    isolate_lsl("raceplane-bench")
    samples, laps = race_samples()
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        rows = [in_process(samples, laps), through_lsl(samples, laps, tmp)]
        print_table(
            f"Lap timer fed a whole race flat out ({RACE['cars']} cars, {RACE['laps']} laps, "
            f"LapData at {RACE['rate']} Hz)",
            ["path", "laps", "LapData frames", "wall s", "CPU s", "laps/CPU s", "frames/CPU s"],
            rows,
        )
        delays, n = latency(tmp)
        shutdown_without_decoder(tmp)
    p50, p99 = np.percentile(delays, [50, 99])
    print_table(
        f"Lap completed in the game (UDP LapData at {LATENCY_RATE_HZ} Hz) -> raceplane.laps",
        ["path", "laps", "p50 ms", "p99 ms", "max ms"],
        [["game -> decoder -> lap timer", n, float(p50), float(p99), float(max(delays))]],
    )
    print_table("Lap timer shutdown: CLOSE -> process exit", ["inputs", "seconds"], SHUTDOWN)
    return 0


if __name__ == "__main__":
    sys.exit(main())

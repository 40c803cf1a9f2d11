"""Telemetry decoder: decode throughput beside f1-packets 2025.1.1, and UDP -> LSL latency.

Throughput: the same set of real-format packets (a 22-car race from the game simulator, format
2025, 60 Hz, in the game's send pattern) decoded so that every field of every packet is
available as numbers. Ours: DecoderCore.feed, numeric packets into float64 stream rows and
JSON packets into objects, one datagram per call and in the batches one socket drain gives.
Peer (its own venv): f1-packets' ctypes `resolve` (lazy: fields are read on access) and
`resolve(...).to_dict()` (every field a Python value).

Latency: a LapData datagram sent on loopback to a decoder process, until its sample is
pullable from an LSL inlet in this process; p50 and p99.

Exit: a decoder process told CLOSE (or sent SIGTERM), until it is gone.

Throughput is packets per CPU-second of the decoding process (time.process_time), so other
work on a shared machine does not count against either side; latency and exit are wall-clock
and do suffer from it (the load average is printed with them).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peers import peer_python, print_table
from dareplane_utils.testing import free_port, isolate_lsl

REPO = Path(__file__).resolve().parent.parent
FRAMES = 600  # 10 s of a 60 Hz race
BATCH = 64
LATENCY_SAMPLES = 2000


def packet_set() -> list[bytes]:
    from modules.game_sim.broadcast import Broadcaster
    from modules.game_sim.race import RaceSim, SessionOptions

    broadcaster = Broadcaster(RaceSim(SessionOptions(cars=22, rate=60, laps=3, seed=7)), 2025)
    packets: list[bytes] = []
    frames = 0
    while frames < FRAMES:
        sent = broadcaster.step()
        frames += bool(sent)
        packets += sent
    return packets


def ours(packets: list[bytes], batch: int) -> float:
    from modules.telemetry_decoder.core import Datagram, DecoderCore

    datagrams = [Datagram(p, ("127.0.0.1", 20777), float(i)) for i, p in enumerate(packets)]
    batches = [datagrams[i : i + batch] for i in range(0, len(datagrams), batch)]
    core = DecoderCore()
    for chunk in batches[:20]:  # warm up: plans are built on first sight of a type
        core.feed(chunk)
    done, start = 0, time.process_time()
    while time.process_time() - start < 2.0:
        for chunk in batches:
            core.feed(chunk)
        done += len(datagrams)
    assert not core.rejects, core.rejects
    return done / (time.process_time() - start)


PEER_SCRIPT = textwrap.dedent(
    """
    import json, struct, sys, time
    from f1.packets import resolve
    data = open(sys.argv[1], "rb").read()
    packets, offset = [], 0
    while offset < len(data):
        (n,) = struct.unpack_from("<I", data, offset)
        packets.append(data[offset + 4 : offset + 4 + n])
        offset += 4 + n

    def rate(work, seconds):
        done, start = 0, time.process_time()
        while time.process_time() - start < seconds:
            for p in packets:
                work(p)
            done += len(packets)
        return done / (time.process_time() - start)

    lazy = rate(resolve, 2.0)
    every_field = rate(lambda p: resolve(p).to_dict(), 4.0)
    print(json.dumps({"lazy": lazy, "to_dict": every_field}))
    """
)


def peer(packets: list[bytes]) -> dict[str, float]:
    python = peer_python("f1-packets-2025.1.1", ["f1-packets==2025.1.1"])
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "packets.bin"
        path.write_bytes(b"".join(len(p).to_bytes(4, "little") + p for p in packets))
        script = Path(directory) / "peer.py"
        script.write_text(PEER_SCRIPT)
        out = subprocess.run(
            [python, str(script), str(path)], capture_output=True, text=True, check=True
        )
    return json.loads(out.stdout)


def latency() -> tuple[float, float, int]:
    import numpy as np
    import pylsl

    from dareplane_utils.client.module_client import ModuleClient
    from modules.f1_udp import PacketId, fill_header, new_packet

    process, udp_port, tcp_port = decoder_process()
    try:
        client = ModuleClient("127.0.0.1", tcp_port, timeout=10).connect(retries=300)
        source_id = f"raceplane.lap_data@decoder:{udp_port}"
        info = pylsl.resolve_byprop("source_id", source_id, timeout=20)
        inlet = pylsl.StreamInlet(info[0], max_buflen=10)
        inlet.open_stream(timeout=10)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        packet = new_packet(2025, PacketId.LAP_DATA)
        delays = []
        for frame in range(1, LATENCY_SAMPLES + 1):
            fill_header(packet, session_uid=1, session_time=frame / 60, frame_identifier=frame)
            data = packet.tobytes()
            sent = pylsl.local_clock()
            sock.sendto(data, ("127.0.0.1", udp_port))
            sample, _ = inlet.pull_sample(timeout=2.0)
            if sample is not None:
                delays.append(pylsl.local_clock() - sent)
            time.sleep(0.002)
        client.request("CLOSE")
        client.close()
    finally:
        if process.poll() is None:
            process.wait(timeout=20)
    ms = np.array(delays) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), len(delays)


def decoder_process() -> tuple[subprocess.Popen, int, int]:
    udp_port, tcp_port = free_port(socket.SOCK_DGRAM), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "modules.telemetry_decoder", "--port", str(tcp_port),
         "--udp-port", str(udp_port), "--log-port", str(free_port())],
        cwd=REPO, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return process, udp_port, tcp_port


def exit_seconds(how: str, runs: int = 3) -> float:
    """Median time from CLOSE (or SIGTERM) to the decoder process being gone."""
    import statistics

    from dareplane_utils.client.module_client import ModuleClient

    times = []
    for _ in range(runs):
        process, _, tcp_port = decoder_process()
        try:
            client = ModuleClient("127.0.0.1", tcp_port, timeout=10).connect(retries=300)
            client.request("UP")
            start = time.perf_counter()
            if how == "CLOSE":
                client.request("CLOSE")
            else:
                process.terminate()
            process.wait(timeout=20)
            times.append(time.perf_counter() - start)
            client.close()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return statistics.median(times)


FLOOD_SENDERS = 3  # processes: one Python sender tops out near 100k datagrams/s
FLOOD_RATE = 200_000  # garbage datagrams/s in all, the flood


def _send_garbage(target: tuple[str, int], rate: float, stop, counter) -> None:
    """One flood process: random and truncated datagrams at `rate`, paced in bursts."""
    from modules.f1_udp import PacketId, new_packet

    valid = new_packet(2025, PacketId.LAP_DATA)
    garbage = [os.urandom(n) for n in (3, 40, 200, 1284, 1500)] + [valid.tobytes()[:-1]]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    start = time.perf_counter()
    while not stop.is_set():
        for payload in garbage * 100:
            try:
                sock.sendto(payload, target)
                sent += 1
            except OSError:
                pass
        ahead = sent / rate - (time.perf_counter() - start)
        if ahead > 0:
            time.sleep(ahead)
    with counter.get_lock():
        counter.value += sent


def flood(seconds: float = 3.0) -> dict[str, float]:
    """FLOOD_RATE garbage datagrams/s from several processes, valid LapData at 60 Hz between."""
    import multiprocessing

    from dareplane_utils.client.module_client import ModuleClient
    from dareplane_utils.testing import wait_until
    from modules.f1_udp import PacketId, fill_header, new_packet

    process, udp_port, tcp_port = decoder_process()
    target = ("127.0.0.1", udp_port)
    valid = new_packet(2025, PacketId.LAP_DATA)
    stop = multiprocessing.Event()
    counter = multiprocessing.Value("q", 0)
    senders = [
        multiprocessing.Process(
            target=_send_garbage,
            args=(target, FLOOD_RATE / FLOOD_SENDERS, stop, counter),
            daemon=True,
        )
        for _ in range(FLOOD_SENDERS)
    ]
    sent = [0]

    try:
        client = ModuleClient("127.0.0.1", tcp_port, timeout=10).connect(retries=300)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        start = time.perf_counter()
        for sender in senders:
            sender.start()
        frames = int(seconds * 60)
        for frame in range(1, frames + 1):
            fill_header(valid, session_uid=1, session_time=frame / 60, frame_identifier=frame)
            sock.sendto(valid.tobytes(), target)
            time.sleep(1 / 60)
        stop.set()
        for sender in senders:
            sender.join()
        sent[0] = counter.value
        rate = sent[0] / (time.perf_counter() - start)
        fill_header(valid, session_uid=1, session_time=99.0, frame_identifier=frames + 1)
        sock.sendto(valid.tobytes(), target)
        status = wait_until(
            lambda: (s := client.request("STATUS"))["packets"].get("raceplane.lap_data", 0)
            + s["drops_detected"] > frames and s,
            timeout=120,
        )  # fmt: skip
        client.request("CLOSE")
        client.close()
    finally:
        process.wait(timeout=30)
    return {
        "garbage_per_s": rate,
        "garbage_sent": sent[0],
        "rejected": sum(status["rejects"].values()),
        "valid_sent": frames + 1,
        "valid_decoded": status["packets"]["raceplane.lap_data"],
        "valid_lost": status["drops_detected"],
    }


def main() -> int:
    isolate_lsl("raceplane-bench")
    packets = packet_set()
    kinds = len({(p[0], p[6]) for p in packets})
    single, batched = ours(packets, 1), ours(packets, BATCH)
    theirs = peer(packets)
    print_table(
        f"decode throughput: {len(packets)} real-format packets (format 2025, 22 cars, "
        f"{kinds} packet types, game send pattern), one core",
        ["decoder", "what you get", "packets per CPU-s"],
        [
            ["raceplane DecoderCore, 1 datagram per call", "every field in samples", single],
            [f"raceplane DecoderCore, batches of {BATCH}", "every field in samples", batched],
            ["f1-packets 2025.1.1 resolve()", "lazy ctypes view, nothing read", theirs["lazy"]],
            ["f1-packets 2025.1.1 resolve().to_dict()", "every field a Python value",
             theirs["to_dict"]],
        ],
    )  # fmt: skip
    p50, p99, n = latency()
    print_table(
        "latency: datagram sent on loopback -> its sample pullable from an LSL inlet "
        f"(load average {os.getloadavg()[0]:.1f})",
        ["path", "samples", "p50 ms", "p99 ms"],
        [["UDP -> raceplane decoder process -> LSL inlet", n, p50, p99]],
    )
    print_table(
        f"exit: command or signal -> decoder process gone (median of 3; load average "
        f"{os.getloadavg()[0]:.1f})",
        ["how", "seconds"],
        [["CLOSE", exit_seconds("CLOSE")], ["SIGTERM", exit_seconds("SIGTERM")]],
    )
    f = flood()
    print_table(
        f"garbage flood (aimed at {FLOOD_RATE:,}/s from {FLOOD_SENDERS} processes) with valid "
        "LapData at 60 Hz",
        ["garbage/s sent", "garbage sent", "rejects counted", "valid sent", "valid decoded",
         "valid lost (frame gaps)"],
        [[f["garbage_per_s"], f["garbage_sent"], f["rejected"], f["valid_sent"],
          f["valid_decoded"], f["valid_lost"]]],
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

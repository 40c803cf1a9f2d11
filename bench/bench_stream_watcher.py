"""StreamWatcher: throughput, latency and background CPU, side by side with dareplane-utils 0.0.24.

The producer is our synthetic outlet (`python -m dareplane_utils.stream_watcher.synthetic`) in
its own process; the consumer is this file run as `consume ...` by either interpreter (ours
from .venv, Dareplane's from a throwaway venv: both import `dareplane_utils`), so both watchers
read the same stream with the same code around them.

    .venv/bin/python bench/bench_stream_watcher.py          (or: make bench)

Tables:
- Throughput: 8 float32 channels pushed flat out in chunks of 256, consumer calling update()
  (or ours: pull(), every sample once) in a loop until 2 M samples arrived: consumer CPU
  seconds per million samples (all its threads, liblsl's receiver included; CPU, since wall
  rates swing on a shared machine) and samples/s, median of 3 alternating runs; the last
  sample is checked, and pull() must have lost none.
- Latency: one sample per ms, consumer calling update() in a loop; push (LSL timestamp) to
  visible in the ring, p50/p99 over 3000 samples.
- CPU % of keeping a ring current: our background thread, and update() + sleep(2 ms) loops.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER = ("dareplane-utils-0.0.24", ["dareplane-utils==0.0.24"])
PRODUCER = [sys.executable, "-m", "dareplane_utils.stream_watcher.synthetic"]
THROUGHPUT_SAMPLES = 2_000_000
THROUGHPUT_RUNS = 3
LATENCY_SAMPLES = 3000
CPU_SECONDS = 5.0
CPU_CASES = [
    ("1 kHz x 8 float32", ["--rate", "1000", "--channels", "8", "--format", "float32"]),
    ("60 Hz x 300 double64", ["--rate", "60", "--channels", "300", "--format", "double64"]),
]


# -- consumer side: runs under either interpreter, imports only what both have ---------------


def consume(mode: str, name: str, amount: float) -> dict:
    import pylsl

    from dareplane_utils.stream_watcher.lsl_stream_watcher import StreamWatcher

    ours = hasattr(StreamWatcher, "start_background")
    watcher = StreamWatcher(name, buffer_size_s=2)
    if ours:
        watcher.connect_to_stream(timeout=30, ambiguity_wait_s=0)
    else:
        watcher.connect_to_stream()
    if mode == "throughput":
        return _throughput(watcher, int(amount))
    if mode == "pull":
        return _pull_throughput(watcher, int(amount))
    if mode == "latency":
        return _latency(watcher, int(amount), pylsl.local_clock)
    if mode in ("background", "poll"):
        return _keep_current(watcher, mode, amount)
    raise ValueError(mode)


def _throughput(watcher, n: int) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    while watcher.n_new < n:
        watcher.update()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "wall": wall,
        "cpu": cpu,
        "n": watcher.n_new,
        "last": watcher.unfold_buffer()[-1].tolist(),
    }


def _pull_throughput(watcher, n: int) -> dict:
    """Like _throughput, reading with pull(): every sample once, as a consumer that must."""
    got, last = 0, None
    wall, cpu = time.perf_counter(), time.process_time()
    while got < n:
        values, _ = watcher.pull()
        if len(values):
            got += len(values)
            last = values[-1]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "n": got, "last": last.tolist(), "lost": watcher.overruns}


def _latency(watcher, n: int, clock) -> dict:
    latencies: list[float] = []
    seen = watcher.n_new
    while len(latencies) < n:
        watcher.update()
        new = watcher.n_new - seen
        if new:
            now = clock()
            seen = watcher.n_new
            latencies.extend((now - watcher.unfold_buffer_t()[-new:]).tolist())
    return {"latencies": latencies}


def _keep_current(watcher, mode: str, seconds: float) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    if mode == "background":
        watcher.start_background()
        time.sleep(seconds)
        watcher.stop_background()
    else:
        while time.perf_counter() - wall < seconds:
            watcher.update()
            time.sleep(0.002)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "n": watcher.n_new}


# -- driver side ---------------------------------------------------------------------------


def run(python: Path, producer_args: list[str], mode: str, amount: float) -> dict:
    name = f"raceplane.bench.{uuid.uuid4().hex[:8]}"
    producer = subprocess.Popen(
        [
            *PRODUCER,
            "--name",
            name,
            "--source-id",
            f"{name}@bench",
            "--wait-consumer",
            "60",
            *producer_args,
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert producer.stdout is not None
        if producer.stdout.readline().strip() != b"ready":
            raise RuntimeError("the synthetic producer did not start")
        consumer = subprocess.run(
            [str(python), str(Path(__file__)), "consume", mode, name, str(amount)],
            capture_output=True,
            cwd=HERE,
            timeout=300,
        )
        if consumer.returncode != 0:
            raise RuntimeError(f"{python} consumer failed:\n{consumer.stderr.decode()[-2000:]}")
        return json.loads(consumer.stdout.decode().strip().splitlines()[-1])
    finally:
        producer.kill()
        producer.wait()
        if producer.stdout is not None:
            producer.stdout.close()


def main() -> int:
    sys.path.insert(0, str(HERE))
    from peers import peer_python, print_table

    from dareplane_utils.stream_watcher.synthetic import value
    from dareplane_utils.testing import isolate_lsl

    isolate_lsl("raceplane-bench")
    contenders = {"raceplane": Path(sys.executable), "dareplane-utils 0.0.24": peer_python(*PEER)}

    flat_out = [
        "--rate",
        "100000",
        "--channels",
        "8",
        "--format",
        "float32",
        "--chunk",
        "256",
        "--count",
        str(THROUGHPUT_SAMPLES),
        "--flat-out",
    ]
    expected_last = value(THROUGHPUT_SAMPLES - 1, list(range(8)), 8, "float32").tolist()
    # (consumer, reader) -> runs; Dareplane's watcher has no pull(), its update() is the peer.
    cases = [
        ("raceplane", "update()"),
        ("raceplane", "pull()"),
        ("dareplane-utils 0.0.24", "update()"),
    ]
    results: dict[tuple[str, str], list[dict]] = {case: [] for case in cases}
    for _ in range(THROUGHPUT_RUNS):
        for label, reader in cases:
            mode = "pull" if reader == "pull()" else "throughput"
            results[(label, reader)].append(
                run(contenders[label], flat_out, mode, THROUGHPUT_SAMPLES)
            )
    per_million = {
        case: statistics.median(r["cpu"] * 1e6 / r["n"] for r in runs)
        for case, runs in results.items()
    }
    theirs = per_million[("dareplane-utils 0.0.24", "update()")]
    rows = []
    for (label, reader), runs in results.items():
        rates = [r["n"] / r["wall"] for r in runs]
        correct = all(r["last"] == expected_last and not r.get("lost") for r in runs)
        rows.append(
            [
                label,
                reader,
                per_million[(label, reader)],
                f"{per_million[(label, reader)] / theirs:.2f}x",
                statistics.median(rates) / 1e6,
                max(rates) / 1e6,
                "yes" if correct else "NO",
            ]
        )
    print_table(
        f"8 x float32 in chunks of 256 from another process, read in a loop until "
        f"{THROUGHPUT_SAMPLES / 1e6:g} M samples, {THROUGHPUT_RUNS} runs each in turns (CPU of "
        "the consumer process, liblsl's threads included; goal <= 0.9x theirs)",
        [
            "consumer",
            "read",
            "CPU s per M samples (median)",
            "vs theirs",
            "M samples/s (median)",
            "best",
            "last sample right, none lost",
        ],
        rows,
    )

    one_per_ms = [
        "--rate",
        "1000",
        "--channels",
        "8",
        "--format",
        "float32",
        "--chunk",
        "1",
        "--count",
        str(LATENCY_SAMPLES + 500),
    ]
    rows = []
    for label, python in contenders.items():
        latencies = sorted(run(python, one_per_ms, "latency", LATENCY_SAMPLES)["latencies"])
        rows.append(
            [
                label,
                _percentile(latencies, 50) * 1e6,
                _percentile(latencies, 99) * 1e6,
                latencies[-1] * 1e6,
            ]
        )
    print_table(
        "push (LSL timestamp) to visible in the ring, 1 sample/ms, update() loop",
        ["consumer", "p50 us", "p99 us", "max us"],
        rows,
    )

    rows = []
    for case, args in CPU_CASES:
        producer_args = [*args, "--chunk", "1"]
        ours_bg = run(contenders["raceplane"], producer_args, "background", CPU_SECONDS)
        ours_poll = run(contenders["raceplane"], producer_args, "poll", CPU_SECONDS)
        peer_poll = run(contenders["dareplane-utils 0.0.24"], producer_args, "poll", CPU_SECONDS)
        cells = [case]
        for result in (ours_bg, ours_poll, peer_poll):
            cells += [100 * result["cpu"] / result["wall"], f"{result['n'] / result['wall']:.0f}"]
        rows.append(cells)
    print_table(
        f"CPU % of a consumer process keeping a 2 s ring current for {CPU_SECONDS:g} s, "
        "one sample per push (rate: samples/s it saw)",
        [
            "stream",
            "ours: background %",
            "rate",
            "ours: update+sleep(2ms) %",
            "rate",
            "dareplane-utils: update+sleep(2ms) %",
            "rate",
        ],
        rows,
    )
    return 0


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "consume":
        print(json.dumps(consume(sys.argv[2], sys.argv[3], float(sys.argv[4]))), flush=True)
        sys.exit(0)
    sys.exit(main())

"""Publish streams whose every value and timestamp is known, to check a recorder end to end.

`python -m modules.recorder.publish --streams 10 --count 100000 --push-rate 0` publishes
`raceplane.check.0` .. `.9`. Sample k of a stream carries `expected_values(k, ...)` and the
timestamp `t0 + k * step` (step = 1/rate, or 1 ms for irregular streams), so a reader can tell
exactly what is missing, duplicated or altered. String streams carry `{"k": k, "text": ...}`.
Prints `ready` when the outlets exist, `go` once every outlet has a consumer (at once with
`--wait-consumers 0`), `done N` after N samples per stream, then keeps the outlets open until
SIGTERM, so nothing pushed is lost.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

import numpy as np
import pylsl

from dareplane_utils.stream_watcher.outlets import ChannelSpec, StreamSpec, make_outlet

MODULUS = 1 << 24  # every value exact in float32


def expected_values(first: int, count: int, channels: int, dtype: str = "float32") -> np.ndarray:
    k = np.arange(first, first + count, dtype=np.int64)[:, None]
    return ((k * channels + np.arange(channels)[None, :]) % MODULUS).astype(dtype)


def expected_strings(first: int, count: int) -> list[str]:
    return [
        json.dumps({"k": k, "text": f"lap {k} · ünïcode"}, ensure_ascii=False)
        for k in range(first, first + count)
    ]


def stamps(first: int, count: int, t0: float, rate: float) -> np.ndarray:
    step = 1.0 / rate if rate > 0 else 0.001
    return t0 + np.arange(first, first + count) * step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modules.recorder.publish", description=__doc__)
    parser.add_argument("--name", default="raceplane.check")
    parser.add_argument(
        "--streams", type=int, default=1, help="outlets (names get .0, .1 ... if > 1)"
    )
    parser.add_argument("--format", choices=["float32", "double64", "string"], default="float32")
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--rate", type=float, default=100.0, help="nominal rate (0: irregular)")
    parser.add_argument(
        "--push-rate", type=float, default=None, help="samples/s per stream; 0: flat out"
    )
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0, help="index of the first sample")
    parser.add_argument(
        "--t0", type=float, default=None, help="timestamp of sample 0 (default: now)"
    )
    parser.add_argument(
        "--wait-consumers",
        type=float,
        default=30.0,
        help="seconds to wait for every outlet to have a consumer (0: publish at once)",
    )
    args = parser.parse_args(argv)

    names = [args.name] if args.streams == 1 else [f"{args.name}.{i}" for i in range(args.streams)]
    channels = 1 if args.format == "string" else args.channels
    outlets = [
        make_outlet(
            StreamSpec(
                name=name,
                type="check",
                channels=[ChannelSpec(f"ch{c}", "count", "check") for c in range(channels)],
                source_id=f"{name}@publish",
                nominal_srate=args.rate,
                channel_format=args.format,
            )
        )
        for name in names
    ]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    deadline = time.monotonic() + args.wait_consumers
    while args.wait_consumers > 0 and not all(outlet.have_consumers() for outlet in outlets):
        if time.monotonic() > deadline or stop.wait(0.01):
            print("no consumer", flush=True)
            return 1
    print("go", flush=True)
    t0 = pylsl.local_clock() if args.t0 is None else args.t0
    push_rate = args.rate if args.push_rate is None else args.push_rate
    began = time.perf_counter()
    pushed = 0
    while pushed < args.count and not stop.is_set():
        n = min(args.chunk, args.count - pushed)
        first = args.start + pushed
        times = stamps(first, n, t0, args.rate).tolist()
        if args.format == "string":
            data = [[text] for text in expected_strings(first, n)]
        else:
            data = expected_values(
                first, n, channels, "float32" if args.format == "float32" else "float64"
            )
        for outlet in outlets:
            outlet.push_chunk(data, times)
        pushed += n
        if push_rate > 0:
            stop.wait(max(0.0, began + pushed / push_rate - time.perf_counter()))
    print(f"done {pushed}", flush=True)
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

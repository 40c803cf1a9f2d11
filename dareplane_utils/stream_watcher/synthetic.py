"""A synthetic LSL producer: `python -m dareplane_utils.stream_watcher.synthetic --help`.

Publishes a stream whose values say which sample they are, so a consumer (a test, a benchmark,
a person checking a setup) can verify exactly what arrived: sample k, channel c carries
`value(k, c)`; string streams carry `{"k": k, "c": c}` as JSON. Prints `ready` once the outlet
exists, `consumer` once someone subscribed (with --wait-consumer), `done N` after N samples,
then keeps the outlet open until killed, so nothing pushed is lost with it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

import numpy as np

from dareplane_utils.stream_watcher.outlets import (
    CHANNEL_FORMATS,
    ChannelSpec,
    StreamSpec,
    encode_json,
    make_outlet,
    push_frames,
)

# Values wrap so every one is exact in its type (float32 holds integers up to 2**24 exactly).
_MODULUS = {
    "int8": 127,
    "int16": 32_767,
    "int32": 2**31 - 1,
    "int64": 2**62,
    "float32": 2**24,
    "double64": 2**52,
}


def value(k: int | np.ndarray, c: int | np.ndarray, n_channels: int, fmt: str) -> np.ndarray:
    """What sample k, channel c of a numeric synthetic stream carries."""
    return (np.asarray(k, dtype=np.int64) * n_channels + c) % _MODULUS[fmt]


def json_value(k: int, c: int) -> str:
    return encode_json({"k": k, "c": c})


def frames(first: int, count: int, n_channels: int, fmt: str) -> np.ndarray | list[list[str]]:
    """Samples first..first+count-1, one row each."""
    if fmt == "string":
        return [[json_value(k, c) for c in range(n_channels)] for k in range(first, first + count)]
    k = np.arange(first, first + count)[:, None]
    return value(k, np.arange(n_channels)[None, :], n_channels, fmt)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dareplane_utils.stream_watcher.synthetic", description=__doc__
    )
    parser.add_argument("--name", default="raceplane.synthetic")
    parser.add_argument("--source-id", default="raceplane.synthetic@synthetic")
    parser.add_argument("--format", choices=sorted(CHANNEL_FORMATS), default="float32")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--rate", type=float, default=100.0, help="nominal rate, 0 = irregular")
    parser.add_argument("--push-rate", type=float, default=None, help="samples/s (default --rate)")
    parser.add_argument("--chunk", type=int, default=1, help="samples per push")
    parser.add_argument("--count", type=int, default=-1, help="samples to push, -1 = forever")
    parser.add_argument("--start", type=int, default=0, help="index of the first sample")
    parser.add_argument("--flat-out", action="store_true", help="push as fast as possible")
    parser.add_argument(
        "--wait-consumer", type=float, default=0.0, help="wait this long for a subscriber first"
    )
    args = parser.parse_args(argv)
    if args.channels < 1 or args.chunk < 1:
        parser.error("--channels and --chunk must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = StreamSpec(
        name=args.name,
        type="synthetic",
        channels=[ChannelSpec(f"ch{c:03d}", "count", "synthetic") for c in range(args.channels)],
        source_id=args.source_id,
        nominal_srate=args.rate,
        channel_format=args.format,
        metadata={"producer": "dareplane_utils.stream_watcher.synthetic"},
    )
    outlet = make_outlet(spec, max_buffered=max(360, int(args.count / max(args.rate, 1)) + 10))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    if args.wait_consumer > 0:
        if not outlet.wait_for_consumers(args.wait_consumer):
            print("no consumer", flush=True)
            return 1
        print("consumer", flush=True)

    push_rate = args.push_rate or args.rate or 100.0
    pushed = 0
    began = time.perf_counter()
    while not stop.is_set() and (args.count < 0 or pushed < args.count):
        n = args.chunk if args.count < 0 else min(args.chunk, args.count - pushed)
        push_frames(outlet, frames(args.start + pushed, n, args.channels, args.format))
        pushed += n
        if not args.flat_out:
            # Pace against the start time, so the rate holds however long a push takes.
            stop.wait(max(0.0, began + pushed / push_rate - time.perf_counter()))
    print(f"done {pushed}", flush=True)
    stop.wait()
    del outlet
    return 0


if __name__ == "__main__":
    sys.exit(main())

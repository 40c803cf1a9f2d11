"""`python -m modules.web_bridge.feeder STREAM...`: publish catalogue streams by hand.

For tests and benchmarks of the bridge: creates an outlet for each named catalogue stream
(labels and source_ids as the real producers have them), prints `ready` once they exist, then
reads JSON lines from stdin and pushes each:

    {"stream": "raceplane.events", "json": {...}}             one JSON sample
    {"stream": "raceplane.events", "json": {...}, "repeat": n} the same sample n times
    {"stream": "raceplane.car_telemetry", "cars": {"3": {"speed_kph": 201}}, "uid": 7}
                                                               one numeric row: unset
                                                               channels 0, header uid split
    {"echo": "text"}                                           prints text (a sync point)

Each push prints `pushed <lsl time>`, so a benchmark knows when a sample left.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pylsl

from dareplane_utils.stream_watcher.outlets import make_outlet, push_frame, push_json
from modules.stream_catalogue import CATALOGUE

BY_NAME = {stream.name: stream for stream in CATALOGUE}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modules.web_bridge.feeder")
    parser.add_argument("streams", nargs="+", choices=sorted(BY_NAME), metavar="STREAM")
    parser.add_argument("--producer", default="feeder", help="source_id suffix")
    args = parser.parse_args(argv)
    outlets = {name: make_outlet(BY_NAME[name].spec(args.producer)) for name in args.streams}
    labels = {
        name: {c.label: i for i, c in enumerate(BY_NAME[name].channels)} for name in args.streams
    }
    print("ready", flush=True)
    for line in sys.stdin:
        order = json.loads(line)
        if "echo" in order:
            print(order["echo"], flush=True)
            continue
        name = order["stream"]
        stamp = pylsl.local_clock()
        if "json" in order:
            for _ in range(int(order.get("repeat", 1))):
                push_json(outlets[name], order["json"], stamp)
        else:
            where = labels[name]
            row = np.zeros(len(where))
            uid = int(order.get("uid", 0))
            row[where["header.session_uid_hi"]] = uid >> 32
            row[where["header.session_uid_lo"]] = uid & 0xFFFFFFFF
            for car, values in order.get("cars", {}).items():
                for field, value in values.items():
                    row[where[f"car{int(car):02d}.{field}"]] = value
            push_frame(outlets[name], row, stamp)
        print(f"pushed {stamp!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Plays the decoder for tests/test_lap_timer_live.py: `python -m tests.lap_timer_feeder`.

It opens the decoder's outlets, then pushes what it reads from stdin, one JSON line each: first
the `raceplane.lap_data` channel labels, then `["raceplane.lap_data", [values...]]` or
`["raceplane.events", {...}]`, answering `pushed` to each. Not a test module: no tests here.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from dareplane_utils.stream_watcher.outlets import StreamSpec, make_outlet, push_frame, push_json

JSON_STREAMS = ("raceplane.session", "raceplane.participants", "raceplane.events")
STATUS_HEADER = ("session_uid_hi", "session_uid_lo", "session_time_s", "overall_frame_identifier")
STATUS_LABELS = [f"header.{n}" for n in STATUS_HEADER] + [
    f"car{i:02d}.visual_tyre_compound" for i in range(22)
]


def feeder() -> None:
    labels = json.loads(sys.stdin.readline())
    outlets = {
        "raceplane.lap_data": make_outlet(
            StreamSpec(
                name="raceplane.lap_data",
                type="lap_data",
                channels=labels,
                source_id="raceplane.lap_data@test-feeder",
                channel_format="float64",
            )
        ),
        "raceplane.car_status": make_outlet(
            StreamSpec(
                name="raceplane.car_status",
                type="car_status",
                channels=STATUS_LABELS,
                source_id="raceplane.car_status@test-feeder",
                channel_format="float64",
            )
        ),
    }
    for name in JSON_STREAMS:
        outlets[name] = make_outlet(StreamSpec.json(name, f"{name}@test-feeder"))
    print("ready", flush=True)
    for line in sys.stdin:
        name, value = json.loads(line)
        if isinstance(value, dict):
            push_json(outlets[name], value)
        else:
            push_frame(outlets[name], np.asarray(value, dtype=np.float64))
        print("pushed", flush=True)


if __name__ == "__main__":
    feeder()

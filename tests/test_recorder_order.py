"""The recorder's string (JSON) streams are read exactly: each sample once, in order, however
late the recorder reads. Real processes: a publisher pushing a burst flat out while the recorder
is frozen with SIGSTOP; the file holds every sample in the producer's order."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pyxdf

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until
from modules.recorder.publish import expected_strings
from tests.recorder_support import expect, publish

COUNT = 20_000  # JSON samples in the burst: 20 of the string rings other readers keep
PAUSE_S = 2.0  # the drill: how long the recorder is frozen (the scenario, not a wait)


def test_a_frozen_recorder_keeps_every_json_sample_of_a_burst_in_order(spawn, tmp_path: Path):
    port = free_port()
    process = spawn(
        "modules.recorder", *("--port", str(port), "--save-path", str(tmp_path / "rec"))
    )
    client = ModuleClient("127.0.0.1", port, timeout=30).connect(retries=100)
    path = client.request("RECORD", {"filename": "burst.xdf"})["file"]
    publisher = publish(
        spawn,
        "raceplane.events",
        *("--format", "string", "--rate", "0", "--count", str(COUNT)),
        *("--chunk", "100", "--push-rate", "0", "--t0", "5.0"),
    )
    client.request("UPDATE", timeout=10)
    expect(publisher, "go")
    os.kill(process.pid, signal.SIGSTOP)
    try:
        frozen_at = time.monotonic()
        expect(publisher, "done", timeout=120)
        time.sleep(max(0.0, PAUSE_S - (time.monotonic() - frozen_at)))  # the drill itself
    finally:
        os.kill(process.pid, signal.SIGCONT)

    def recorded() -> int:
        streams = client.request("STATUS")["streams"]
        return sum(s["samples"] for s in streams if s["name"] == "raceplane.events")

    wait_until(lambda: recorded() == COUNT, timeout=120, interval=0.2, message="every sample")
    summary = client.request("STOPRECORD", timeout=60)
    assert summary["samples"] == COUNT and summary["error"] is None
    streams, _ = pyxdf.load_xdf(path)
    assert [row[0] for row in streams[0]["time_series"]] == expected_strings(0, COUNT)
    assert all(s["dropped"] == 0 and not s["lost"] for s in summary["streams"])
    client.close()

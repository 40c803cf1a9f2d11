"""Real F1 sessions (../shared/data/livetiming) replayed flat out into a lap timer process:
the laps and standings it holds when the replay ends are those of the file's own order."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port
from modules.lap_timer.inputs import NUMERIC, Inputs
from modules.lap_timer.inputs import STREAMS as READ
from modules.lap_timer.store import Store
from modules.lap_timer.timer import LapTimer
from modules.livetiming.savefile import merge_files
from modules.livetiming.state import LiveSession
from modules.livetiming.topics import TopicError
from modules.stream_catalogue import STREAMS

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "livetiming"
FILES = sorted(DATA.glob("*.txt.gz"))


def unpack(path: Path, directory: Path) -> Path:
    text = directory / path.name.removesuffix(".gz")
    text.write_bytes(gzip.decompress(path.read_bytes()))
    return text


def in_file_order(path: Path, db: Path) -> tuple[list[dict], dict]:
    """Laps and standings of a lap timer fed in-process, every sample in the file's order."""
    timer = LapTimer(Store(db))
    inputs = Inputs(timer)
    for name in NUMERIC:
        inputs.set_channels(name, [c.label for c in STREAMS[name].channels])
    session = LiveSession()
    batch = []
    for message in merge_files([path], []):
        try:
            samples = session.feed(message)
        except (TopicError, ValueError, TypeError, KeyError, IndexError, AttributeError):
            continue  # the replay refuses it too
        batch += [(s.stream, s.value) for s in samples if s.stream in READ]
    assert inputs.handle_batch(batch) == []
    return timer.get_laps(), timer.get_standings()


def without_ids(laps: list[dict]) -> list[dict]:
    return [{k: v for k, v in lap.items() if k != "id"} for lap in laps]


@pytest.mark.skipif(not FILES, reason=f"no live-timing files in {DATA}")
@pytest.mark.parametrize("source", FILES, ids=[f.name.split(".")[0] for f in FILES])
def test_a_flat_out_replay_ends_with_the_laps_of_the_file_order(source, start_lap_timer, tmp_path):
    path = unpack(source, tmp_path)
    want_laps, want_standings = in_file_order(path, tmp_path / "reference.sqlite3")
    assert len(want_laps) > 100

    port = free_port()
    start_lap_timer(port, tmp_path / "timer.sqlite3")
    timer = ModuleClient("127.0.0.1", port, timeout=10).connect(retries=300, interval=0.05)
    replay = subprocess.run(
        [
            sys.executable,
            "-m",
            "modules.livetiming.cli",
            "--log-port",
            str(free_port()),
            "replay",
            str(path),
            "--flat-out",
            "--ack",
            f"127.0.0.1:{port}",
            "--wait-s",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert "all applied by" in replay.stdout
    # No waiting: the replay ended once the lap timer had applied everything it sent.
    laps = timer.request("GET_LAPS")
    assert without_ids(laps) == without_ids(want_laps)
    assert timer.request("GET_STANDINGS")["rows"] == want_standings["rows"]
    inputs = timer.request("STATUS")["inputs"]
    assert inputs["lost"] == {} and inputs["rejected"] == {}
    assert inputs["merge"]["late"] == 0, inputs["merge"]["late_by_stream"]
    timer.request("CLOSE")
    timer.close()

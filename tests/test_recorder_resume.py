"""The recorder through crashes and restarts, many streams at once, and learned session facts."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pylsl
import pytest
import pyxdf

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until
from modules.recorder import load
from modules.recorder.engine import Recorder, RecorderSettings
from modules.recorder.intent import RecordingIntent
from modules.recorder.publish import expected_values, stamps
from tests.recorder_support import expect, publish, samples_of

CHANNELS = 4
RATE = 500.0


def recorder_process(spawn, port: int, save_path: Path, setup: Path):
    process = spawn(
        "modules.recorder",
        *("--port", str(port), "--save-path", str(save_path), "--setup", str(setup)),
    )
    return process, ModuleClient("127.0.0.1", port, timeout=15).connect(retries=200)


def recorded(client: ModuleClient, name: str) -> int:
    return sum(s["samples"] for s in client.request("STATUS")["streams"] if s["name"] == name)


def sample_indices(values: np.ndarray) -> np.ndarray:
    """Which publisher sample each row is: channel 0 of sample k holds k * CHANNELS."""
    return values[:, 0].astype(np.int64) // CHANNELS


def test_a_killed_recorder_resumes_its_recording_when_started_again(spawn, tmp_path):
    setup = tmp_path / "setup.toml"
    setup.write_text('[modules.recorder]\nkind = "recorder"\n')
    save_path = tmp_path / "rec"
    port = free_port()
    process, client = recorder_process(spawn, port, save_path, setup)
    publisher = publish(
        spawn,
        "raceplane.lap_data",
        *("--channels", str(CHANNELS), "--rate", str(RATE), "--push-rate", str(RATE)),
        *("--count", "10000000", "--chunk", "5"),
    )
    started = client.request("RECORD", {"filename": "race.xdf", "track": "Monza"})
    path = save_path / "race.xdf"
    assert started == {"file": str(path)}
    state_file = save_path / f".recorder-{port}.state.json"
    assert RecordingIntent.load(state_file).files == [str(path.resolve())]
    wait_until(lambda: recorded(client, "raceplane.lap_data") > 500, timeout=30)
    client.close()

    killed_at = time.time()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    cut = load(path).stream("raceplane.lap_data")
    assert len(cut) > 500

    restarted_at = time.time()
    process, client = recorder_process(spawn, port, save_path, setup)
    status = client.request("STATUS")
    assert status["recording"] is True and status["file"] == str(path)
    [gap] = status["gaps"]
    # The reported gap covers the downtime: from the cut file's last write to the resume.
    assert gap["last_write"] <= killed_at and gap["resumed"] >= restarted_at
    assert gap["gap_s"] == pytest.approx(gap["resumed"] - gap["last_write"])
    assert gap["last_stamp"] >= cut.time_stamps[-1]
    assert status["session"]["track"] == "Monza"
    assert any("resumed recording" in text for text in status["errors"])
    # An operator's RECORD-append of the same file finds it already under way.
    again = client.request("RECORD", {"filename": "race.xdf", "append": True})
    assert again == {"file": str(path)}
    wait_until(lambda: recorded(client, "raceplane.lap_data") > 500, timeout=30)
    summary = client.request("STOPRECORD", timeout=30)
    assert summary["error"] is None and len(summary["gaps"]) == 1
    fixed = ("file", "last_write", "resumed", "gap_s", "last_stamp", "resumed_lsl")
    assert {key: summary["gaps"][0][key] for key in fixed} == {key: gap[key] for key in fixed}
    assert not state_file.exists()  # ended in order: nothing to resume
    publisher.send_signal(signal.SIGTERM)

    # Our loader: every sample before the cut, then every sample after the resume, in order.
    recording = load(path)
    assert recording.warnings == [] and recording.session["track"] == "Monza"
    stream = recording.stream("raceplane.lap_data")
    k = sample_indices(stream.time_series)
    jumps = np.flatnonzero(np.diff(k) != 1)
    assert len(jumps) == 1, f"one gap expected, found jumps after rows {jumps}"
    before, after = jumps[0] + 1, len(k) - jumps[0] - 1
    assert before >= len(cut) and k[before] > k[before - 1]
    t0 = stream.time_stamps[0]
    np.testing.assert_array_equal(
        stream.time_series,
        np.concatenate(
            [expected_values(0, before, CHANNELS), expected_values(k[before], after, CHANNELS)]
        ),
    )
    np.testing.assert_array_equal(
        stream.time_stamps,
        np.concatenate([stamps(0, before, t0, RATE), stamps(k[before], after, t0, RATE)]),
    )
    # The gap in the file: the cut run's footer notes it, and it lies where the samples stop.
    [noted] = recording.gaps
    assert float(noted["resumed"]) == gap["resumed"]
    assert float(noted["last_stamp"]) == stream.time_stamps[before - 1]
    assert stream.time_stamps[before] > float(noted["last_stamp"])
    # STATUS adds where the data started again: the whole gap in the stream, stamp to stamp.
    assert summary["gaps"][0]["first_stamp"] == stream.time_stamps[before]
    assert summary["gaps"][0]["data_gap_s"] == (
        stream.time_stamps[before] - stream.time_stamps[before - 1]
    )

    # pyxdf: the cut run closed with its footer, the resumed run cleanly stopped; both whole.
    streams, header = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    assert header["info"]["session"][0]["setup_file"] == [str(setup)]
    runs = [s for s in streams if s["info"]["name"][0] == "raceplane.lap_data"]
    assert len(runs) == 2
    assert runs[0]["footer"]["info"]["cut"][0]["resumed"] == [repr(gap["resumed"])]
    assert sum(len(run["time_stamps"]) for run in runs) == len(stream)
    np.testing.assert_array_equal(
        np.concatenate([r["time_stamps"] for r in runs]), stream.time_stamps
    )


def test_twenty_streams_present_at_record_are_opened_at_once(spawn, tmp_path, monkeypatch):
    # Every inlet's opening waits at a barrier for the other 19: only a recorder that opens
    # them concurrently gets past it (one by one, the first would wait alone and break it).
    barrier = threading.Barrier(20, timeout=30)
    real_open = pylsl.StreamInlet.open_stream

    def open_together(inlet: pylsl.StreamInlet, timeout: float = pylsl.FOREVER) -> None:
        real_open(inlet, timeout)
        barrier.wait()

    monkeypatch.setattr(pylsl.StreamInlet, "open_stream", open_together)
    publisher = publish(
        spawn,
        "raceplane.many",
        *("--streams", "20", "--count", "200", "--push-rate", "200", "--rate", "100"),
    )
    recorder = Recorder(RecorderSettings(save_path=tmp_path))
    try:
        recorder.record("many.xdf")
        expect(publisher, "go", timeout=60)
        expect(publisher, "done")
        names = [f"raceplane.many.{i}" for i in range(20)]
        wait_until(lambda: all(samples_of(recorder, name) == 200 for name in names), timeout=30)
        status = recorder.stop_record()
    finally:
        recorder.close()
    assert not barrier.broken and status["errors"] == []
    recording = load(tmp_path / "many.xdf")
    assert sorted(s.name for s in recording.streams) == sorted(names)
    for stream in recording.streams:
        np.testing.assert_array_equal(stream.time_series, expected_values(0, 200, CHANNELS))


def _outlet(name: str) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(name, "json", 1, 0, pylsl.cf_string, f"{name}@{uuid.uuid4().hex}")
    return pylsl.StreamOutlet(info)


def test_track_and_session_type_come_from_the_session_stream_unless_given(tmp_path):
    session = _outlet("raceplane.session")
    recorder = Recorder(RecorderSettings(save_path=tmp_path, scan_interval=0.2))
    sample = {"track_id": 10, "track_name": "Monza", "session_type": 15, "session_type_name": "R"}
    try:
        recorder.record("learn.xdf", session_type="sprint")  # given: kept over the game's
        wait_until(session.have_consumers)
        session.push_sample([json.dumps({"weather": 0})], 1.0)  # names neither: nothing learned
        session.push_sample([json.dumps(sample)], 2.0)
        wait_until(lambda: recorder.status()["session"].get("track"))
        # The header is rewritten in place: even the file still being written says so.
        mid = load(tmp_path / "learn.xdf")
        assert mid.session == {"session_type": "sprint", "track": "Monza"}
        status = recorder.stop_record()
    finally:
        recorder.close()
    assert status["session"] == {"session_type": "sprint", "track": "Monza"}
    _, header = pyxdf.load_xdf(str(tmp_path / "learn.xdf"))
    assert header["info"]["session"][0] == {"session_type": ["sprint"], "track": ["Monza"]}
    assert len(load(tmp_path / "learn.xdf").stream("raceplane.session")) == 2


def test_the_intent_lives_from_record_to_stop_and_a_damaged_one_is_reported(tmp_path):
    state_file = tmp_path / "state.json"
    recorder = Recorder(RecorderSettings(save_path=tmp_path, state_file=state_file))
    try:
        recorder.record("a.xdf", track="Spa")
        intent = RecordingIntent.load(state_file)
        assert intent.files == [str((tmp_path / "a.xdf").resolve())]
        assert intent.session == {"track": "Spa"} and intent.patterns == ["raceplane.*"]
        recorder.stop_record()
        assert not state_file.exists()
        assert recorder.resume() is None  # nothing to resume

        state_file.write_text('{"files": ["x.xdf"], "sess')
        assert recorder.resume() is None
        assert "recorder state" in recorder.status()["error"]
        assert "is damaged" in recorder.status()["error"]
        assert not state_file.exists()  # forgotten, so it never blocks the next RECORD
        recorder.record("b.xdf")
        assert recorder.status()["error"] is None
    finally:
        recorder.close()


def test_a_rotating_recording_resumes_in_its_last_part(spawn, tmp_path):
    setup = tmp_path / "setup.toml"
    setup.write_text("")
    save_path, port = tmp_path / "rec", free_port()
    args = ("--port", str(port), "--save-path", str(save_path), "--rotate-seconds", "0.3")
    process = spawn("modules.recorder", *args)
    client = ModuleClient("127.0.0.1", port, timeout=15).connect(retries=200)
    publisher = publish(
        spawn,
        "raceplane.motion",
        *("--channels", str(CHANNELS), "--rate", str(RATE), "--push-rate", str(RATE)),
        *("--count", "10000000", "--chunk", "5"),
    )
    client.request("RECORD", {"filename": "long.xdf"})
    wait_until(lambda: recorded(client, "raceplane.motion") > 200, timeout=30)
    files = wait_until(lambda: (f := client.request("STATUS")["files"])[2:] and f, timeout=30)
    client.close()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    process = spawn("modules.recorder", *args)
    client = ModuleClient("127.0.0.1", port, timeout=15).connect(retries=200)
    status = client.request("STATUS")
    # The files before the cut are the recording's; it goes on in the last of them, then on.
    assert status["files"][: len(files)] == [str(Path(f).resolve()) for f in files]
    # The cut came in the last part STATUS named, or in the next, named before it was made.
    resumed_in = status["gaps"][0]["file"]
    assert resumed_in in [
        str(Path(files[-1]).resolve()),
        f"{files[0][:-4]}.part{len(files) + 1:04d}.xdf",
    ]
    wait_until(lambda: recorded(client, "raceplane.motion") > 200, timeout=30)
    grown = wait_until(
        lambda: len((s := client.request("STATUS"))["files"]) > len(files) + 1 and s, timeout=30
    )
    assert grown["files"][len(files)].endswith(f"long.part{len(files) + 1:04d}.xdf")
    assert resumed_in in grown["files"]
    summary = client.request("STOPRECORD", timeout=30)
    publisher.send_signal(signal.SIGTERM)

    recording = load(*summary["files"])
    stream = recording.stream("raceplane.motion")
    k = sample_indices(stream.time_series)
    assert k[0] == 0 and len(np.flatnonzero(np.diff(k) != 1)) == 1
    np.testing.assert_array_equal(stream.time_series, expected_rows(k))
    assert [gap["file"] for gap in recording.gaps] in ([], [resumed_in])


def expected_rows(k: np.ndarray) -> np.ndarray:
    """Sample k's values, for each k (the publisher's expected_values, at any indices)."""
    return np.concatenate([expected_values(int(i), 1, CHANNELS) for i in k])


def test_resuming_a_recording_whose_file_is_gone_starts_it_again_and_says_so(tmp_path):
    state_file = tmp_path / "state.json"
    gone = tmp_path / "gone.xdf"
    RecordingIntent([str(gone)], {"track": "Spa"}, ["raceplane.*"], time.time() - 60).save(
        state_file
    )
    recorder = Recorder(RecorderSettings(save_path=tmp_path, state_file=state_file))
    try:
        gap = recorder.resume()
        assert gap["file"] == str(gone) and gap["last_write"] is None and gap["gap_s"] is None
        status = recorder.status()
        assert status["recording"] is True and status["duration_s"] >= 60
        assert any("nothing recorded for an unknown time" in e for e in status["errors"])
        recorder.stop_record()
    finally:
        recorder.close()
    assert load(gone).session == {"track": "Spa"} and not state_file.exists()

"""The recording engine against real LSL outlets in other processes, real files, real disks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pylsl
import pytest
import pyxdf

from dareplane_utils.testing import wait_until
from modules.recorder import load
from modules.recorder.engine import Recorder, RecorderSettings
from modules.recorder.publish import expected_strings, expected_values, stamps
from tests.recorder_support import expect, publish, samples_of


@pytest.fixture
def recorder(tmp_path: Path):
    made = Recorder(RecorderSettings(save_path=tmp_path, scan_interval=0.2, clock_interval=0.5))
    yield made
    made.close()


def test_numeric_and_string_streams_load_exactly_in_pyxdf(spawn, recorder, tmp_path):
    numeric = publish(
        spawn,
        "raceplane.num",
        "--format",
        "double64",
        "--channels",
        "5",
        "--rate",
        "200",
        "--count",
        "400",
        "--push-rate",
        "400",
        "--t0",
        "1000.0",
    )
    strings = publish(
        spawn,
        "raceplane.str",
        "--format",
        "string",
        "--rate",
        "0",
        "--count",
        "60",
        "--chunk",
        "1",
        "--push-rate",
        "100",
        "--t0",
        "2000.0",
    )
    recorder.record("a.xdf", track="Monza", session_type="Race")
    for process in (numeric, strings):
        expect(process, "done")
    wait_until(
        lambda: (
            samples_of(recorder, "raceplane.num") == 400
            and samples_of(recorder, "raceplane.str") == 60
        )
    )
    status = recorder.stop_record()
    assert status["error"] is None and status["recording"] is False

    streams, header = pyxdf.load_xdf(
        str(tmp_path / "a.xdf"), synchronize_clocks=False, dejitter_timestamps=False
    )
    assert header["info"]["session"][0]["track"] == ["Monza"]
    loaded = {s["info"]["name"][0]: s for s in streams}
    np.testing.assert_array_equal(
        loaded["raceplane.num"]["time_stamps"], stamps(0, 400, 1000.0, 200)
    )
    np.testing.assert_array_equal(
        loaded["raceplane.num"]["time_series"], expected_values(0, 400, 5, "float64")
    )
    np.testing.assert_array_equal(loaded["raceplane.str"]["time_stamps"], stamps(0, 60, 2000.0, 0))
    assert loaded["raceplane.str"]["time_series"] == [[text] for text in expected_strings(0, 60)]
    channels = loaded["raceplane.num"]["info"]["desc"][0]["channels"][0]["channel"]
    assert [c["label"][0] for c in channels] == [f"ch{i}" for i in range(5)]
    assert channels[0]["unit"] == ["count"]
    assert loaded["raceplane.num"]["info"]["source_id"] == ["raceplane.num@publish"]
    assert len(loaded["raceplane.num"]["clock_times"]) >= 1
    assert loaded["raceplane.str"]["footer"]["info"]["sample_count"] == ["60"]

    ours = load(tmp_path / "a.xdf")
    assert ours.warnings == [] and ours.session == {"track": "Monza", "session_type": "Race"}
    np.testing.assert_array_equal(
        ours.stream("raceplane.num").time_series, expected_values(0, 400, 5, "float64")
    )


def test_new_streams_are_added_and_a_returning_outlet_continues(spawn, recorder, tmp_path):
    recorder.record("b.xdf")
    first = publish(spawn, "raceplane.back", "--count", "100", "--push-rate", "200", "--t0", "10.0")
    expect(first, "done")
    wait_until(lambda: samples_of(recorder, "raceplane.back") == 100)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    # The producer restarts (same source_id) and carries on where it stopped.
    again = publish(
        spawn,
        "raceplane.back",
        "--count",
        "100",
        "--start",
        "100",
        "--push-rate",
        "200",
        "--t0",
        "10.0",
    )
    late = publish(
        spawn, "raceplane.late", "--format", "string", "--rate", "0", "--count", "5", "--chunk", "1"
    )
    expect(again, "done", timeout=60)
    expect(late, "done")
    wait_until(
        lambda: (
            samples_of(recorder, "raceplane.back") == 200
            and samples_of(recorder, "raceplane.late") == 5
        ),
        timeout=30,
    )
    recorder.stop_record()
    recording = load(tmp_path / "b.xdf")
    assert sorted(s.name for s in recording.streams) == ["raceplane.back", "raceplane.late"]
    back = recording.stream("raceplane.back")
    np.testing.assert_array_equal(back.time_stamps, stamps(0, 200, 10.0, 100))
    np.testing.assert_array_equal(back.time_series, expected_values(0, 200, 4))
    streams, _ = pyxdf.load_xdf(
        str(tmp_path / "b.xdf"), synchronize_clocks=False, dejitter_timestamps=False
    )
    assert len(streams) == 2


def test_rotated_files_join_to_every_sample_once(spawn, tmp_path):
    recorder = Recorder(RecorderSettings(save_path=tmp_path, scan_interval=0.2, rotate_seconds=0.4))
    try:
        publisher = publish(
            spawn, "raceplane.rot", "--count", "600", "--push-rate", "500", "--t0", "50.0"
        )
        recorder.record("long.xdf", track="Spa")
        expect(publisher, "done")
        wait_until(lambda: samples_of(recorder, "raceplane.rot") == 600)
        status = recorder.stop_record()
    finally:
        recorder.close()
    files = status["files"]
    assert len(files) >= 3 and files[1].endswith("long.part0002.xdf")
    per_file = [sum(len(s) for s in load(path).streams) for path in files]
    assert sum(per_file) == 600 and sum(1 for count in per_file if count) >= 2
    joined = load(*files)
    assert joined.session == {"track": "Spa"}
    np.testing.assert_array_equal(
        joined.stream("raceplane.rot").time_stamps, stamps(0, 600, 50.0, 100)
    )
    np.testing.assert_array_equal(
        joined.stream("raceplane.rot").time_series, expected_values(0, 600, 4)
    )
    # The files overlap with themselves: joining a file twice adds nothing.
    assert len(load(*files, files[-1]).stream("raceplane.rot")) == 600


def _outlet(name: str, channels: int, fmt: int) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(name, "bad", channels, 0, fmt, f"{name}@{uuid.uuid4().hex}")
    return pylsl.StreamOutlet(info)


def test_a_huge_channel_count_and_a_1mb_string_are_refused_clearly(tmp_path):
    recorder = Recorder(
        RecorderSettings(
            save_path=tmp_path, scan_interval=0.2, max_channels=1000, max_string_bytes=256 * 1024
        )
    )
    wide = _outlet("raceplane.wide", 5000, pylsl.cf_float32)  # kept alive until the end
    text = _outlet("raceplane.text", 1, pylsl.cf_string)
    try:
        recorder.record("bad.xdf")
        wait_until(lambda: text.have_consumers() and recorder.status()["refused"])
        status = recorder.status()
        assert status["refused"][0]["name"] == "raceplane.wide"
        assert "5000 channels, more than max_channels=1000" in status["refused"][0]["why"]
        big = "x" * 1_000_000
        for index, value in enumerate(["before", big, "after"]):
            text.push_sample([value], 100.0 + index)
        wait_until(lambda: samples_of(recorder, "raceplane.text") == 2)
        status = recorder.status()
        assert any("1000000 bytes, over max_string_bytes=262144" in e for e in status["errors"]), (
            status
        )
        assert status["streams"][0]["dropped"] == 1
        recorder.stop_record()
    finally:
        recorder.close()
        del wide
    recording = load(tmp_path / "bad.xdf")
    assert recording.stream("raceplane.text").time_series == [["before"], ["after"]]
    assert [s.name for s in recording.streams] == ["raceplane.text"]


def test_recording_into_an_unwritable_place_says_why(tmp_path):
    (tmp_path / "a_file").write_text("")
    recorder = Recorder(RecorderSettings(save_path=tmp_path / "a_file"))
    with pytest.raises(ValueError, match="is not a directory"):
        recorder.record("x.xdf")
    with pytest.raises(ValueError, match=r"cannot use .* as save path"):
        recorder.set_save_path(str(tmp_path / "a_file" / "sub"))
    assert recorder.status()["recording"] is False


@pytest.fixture
def tiny_disk(tmp_path: Path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_the_recording_and_keeps_it_loadable(spawn, tiny_disk):
    recorder = Recorder(RecorderSettings(save_path=tiny_disk, scan_interval=0.2))
    try:
        publisher = publish(
            spawn,
            "raceplane.fill",
            "--channels",
            "64",
            "--count",
            "5000",
            "--push-rate",
            "2000",
            "--t0",
            "7.0",
        )
        recorder.record("full.xdf")
        status = wait_until(lambda: (s := recorder.status())["error"] and s, timeout=30)
        assert "No space left on device (ENOSPC)" in status["error"]
        assert status["recording"] is False
        publisher.send_signal(signal.SIGTERM)
    finally:
        recorder.close()
    path = tiny_disk / "full.xdf"
    recording = load(path)
    assert recording.warnings == []  # cut back to whole chunks
    stream = recording.stream("raceplane.fill")
    assert 0 < len(stream) < 5000
    np.testing.assert_array_equal(stream.time_series, expected_values(0, len(stream), 64))
    streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    assert len(streams[0]["time_stamps"]) == len(stream)


def test_select_limits_the_streams_recorded(spawn, recorder, tmp_path):
    assert recorder.select(["raceplane.keep*"]) == ["raceplane.keep*"]
    keep = publish(spawn, "raceplane.keep", "--count", "20", "--push-rate", "100")
    skip = publish(
        spawn, "raceplane.skip", "--count", "20", "--push-rate", "100", "--wait-consumers", "2"
    )
    names = {s["name"]: s["selected"] for s in recorder.update()}
    assert names == {"raceplane.keep": True, "raceplane.skip": False}
    recorder.record("sel.xdf")
    expect(keep, "done")
    expect(skip, "no consumer")
    wait_until(lambda: samples_of(recorder, "raceplane.keep") == 20)
    recorder.stop_record()
    assert [s.name for s in load(tmp_path / "sel.xdf").streams] == ["raceplane.keep"]
    with pytest.raises(ValueError, match="non-empty list"):
        recorder.select([])
    assert json.loads(json.dumps(recorder.status()))["patterns"] == ["raceplane.keep*"]

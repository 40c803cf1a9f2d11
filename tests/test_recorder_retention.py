"""The recorder's retention: the newest N recordings, or N bytes, stay in the save path."""

from __future__ import annotations

import os
from pathlib import Path

from modules.recorder.engine import Recorder, RecorderSettings
from modules.recorder.retention import Recorded, Retention, to_delete


def files(*sizes: int) -> list[Recorded]:
    """Recordings f0 (oldest) ... fN (newest) of these sizes."""
    return [Recorded(Path(f"f{i}.xdf"), float(i), size) for i, size in enumerate(sizes)]


def names(recorded: list[Recorded]) -> list[str]:
    return sorted(f.path.stem for f in recorded)


def test_newest_n_files_stay():
    assert names(to_delete(files(1, 1, 1, 1), Retention(keep_files=2), set())) == ["f0", "f1"]
    assert to_delete(files(1, 1), Retention(keep_files=2), set()) == []
    assert to_delete(files(1, 1, 1), Retention(), set()) == []


def test_newest_files_up_to_n_bytes_stay():
    assert names(to_delete(files(40, 40, 40, 40), Retention(keep_bytes=100), set())) == [
        "f0",
        "f1",
    ]
    # Both limits: whichever is reached first.
    limits = Retention(keep_files=3, keep_bytes=100)
    assert names(to_delete(files(10, 10, 10, 10), limits, set())) == ["f0"]


def test_the_file_being_written_always_stays_and_counts():
    recorded = files(50, 50, 50)
    writing = {Path("f0.xdf")}  # e.g. a resumed recording whose file is older than the rest
    assert names(to_delete(recorded, Retention(keep_files=1), writing)) == ["f1", "f2"]
    assert names(to_delete(files(500), Retention(keep_bytes=100), {Path("f0.xdf")})) == []


def test_record_deletes_the_oldest_recordings_past_the_limit(tmp_path):
    for age, name in enumerate(["a.xdf", "b.xdf", "c.xdf"]):
        path = tmp_path / name
        path.write_bytes(b"old recording")
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    (tmp_path / "notes.txt").write_text("not a recording: never touched")
    settings = RecorderSettings(save_path=tmp_path, retention=Retention(keep_files=2))
    recorder = Recorder(settings)
    try:
        recorder.record("new.xdf")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["c.xdf", "new.xdf", "notes.txt"]
        assert recorder.status()["retention"] == {"keep_files": 2, "keep_bytes": 0, "deleted": 2}
    finally:
        recorder.close()

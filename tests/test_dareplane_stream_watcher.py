"""Dareplane's StreamWatcher names on ours (`samples`, `times`, `chunk_buffer`,
`update_numeric`, `update_char_p`) and its module functions (`get_channel_names`,
`get_streams_names`, `pylsl_xmlelement_to_dict`), against a real producer process."""

from __future__ import annotations

import subprocess
import uuid

import numpy as np
import pytest

from dareplane_utils.stream_watcher import synthetic
from dareplane_utils.stream_watcher.lsl_stream_watcher import (
    StreamWatcher,
    get_channel_names,
    get_streams_names,
    pylsl_xmlelement_to_dict,
)
from dareplane_utils.testing import wait_until


@pytest.fixture
def producer(spawn):
    def start(*args: str) -> tuple[str, subprocess.Popen]:
        name = f"raceplane.test.{uuid.uuid4().hex[:10]}"
        process = spawn(
            "dareplane_utils.stream_watcher.synthetic",
            *("--name", name, "--source-id", f"{name}@test", *args),
        )
        assert process.stdout.readline().strip() == b"ready"
        return name, process

    return start


@pytest.mark.parametrize("fmt", ["float32", "string"])
def test_samples_and_times_are_the_unread_samples(producer, fmt):
    name, _ = producer("--channels", "3", "--format", fmt, "--count", "5", "--wait-consumer", "20")
    watcher = StreamWatcher(name)
    watcher.connect_to_stream(timeout=10)
    try:
        assert watcher.update == watcher.update_numeric == watcher.update_char_p
        assert watcher.chunk_buffer.shape == (watcher.chunk_buffer_size, 3)
        assert watcher.chunk_buffer.dtype == watcher.buffer.dtype
        wait_until(lambda: watcher.update() or watcher.n_new >= 5, message="5 samples")
        expected = np.asarray(synthetic.frames(0, 5, 3, fmt), dtype=watcher.buffer.dtype)
        assert np.array_equal(watcher.samples, expected)
        assert len(watcher.times) == 5 and np.all(np.diff(watcher.times) >= 0)
        assert watcher.times[-1] == watcher.buffer_t[watcher.curr_i - 1]
        watcher.n_new = 0  # taken: nothing is unread any more
        assert len(watcher.samples) == 0 and len(watcher.times) == 0
    finally:
        watcher.disconnect()


def test_module_functions_describe_streams(producer):
    name, _ = producer("--channels", "2")
    wait_until(lambda: name in get_streams_names(), message=f"{name} visible")
    watcher = StreamWatcher(name)
    watcher.connect_to_stream(timeout=10)
    try:
        info = watcher.inlet.info()
        assert get_channel_names(info) == watcher.channel_names
        described = pylsl_xmlelement_to_dict(info)["info"]
        assert described["name"] == name
        assert described["channel_count"] == "2"
        labels = [channel["label"] for channel in described["desc"]["channels"]["channel"]]
        assert labels == watcher.channel_names
    finally:
        watcher.disconnect()

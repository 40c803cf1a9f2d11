"""StreamWatcher against real outlets in other processes (the synthetic producer)."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import uuid

import numpy as np
import pylsl
import pytest

from dareplane_utils.stream_watcher import synthetic
from dareplane_utils.stream_watcher.lsl_stream_watcher import (
    IRREGULAR_BUFFER_SAMPLES,
    MAX_PULL_PER_UPDATE,
    StreamLostError,
    StreamNotFoundError,
    StreamWatcher,
    StreamWatcherNotConnected,
)
from dareplane_utils.testing import wait_until, write_lsl_config

PRODUCER = "dareplane_utils.stream_watcher.synthetic"
FORMATS = ["float32", "double64", "int8", "int16", "int32", "int64", "string"]


def unique_name() -> str:
    return f"raceplane.test.{uuid.uuid4().hex[:10]}"


@pytest.fixture
def publish(spawn):
    """Start a synthetic producer; returns its process once its outlet exists."""

    def start(name: str, *args: str) -> subprocess.Popen:
        process = spawn(PRODUCER, "--name", name, "--source-id", f"{name}@test", *args)
        line = process.stdout.readline()
        assert line.strip() == b"ready", f"producer said {line!r}"
        return process

    return start


@pytest.fixture
def watchers():
    """StreamWatchers made here are disconnected at teardown."""
    made: list[StreamWatcher] = []

    def make(*args, **kwargs) -> StreamWatcher:
        watcher = StreamWatcher(*args, **kwargs)
        made.append(watcher)
        return watcher

    yield make
    for watcher in made:
        watcher.disconnect()


def pull_until(watcher: StreamWatcher, n_total: int, timeout: float = 10.0) -> None:
    def enough() -> bool:
        watcher.update()
        return watcher.n_total >= n_total

    wait_until(enough, timeout, message=f"{n_total} samples")


def expected(first: int, count: int, n_channels: int, fmt: str) -> np.ndarray:
    return np.asarray(synthetic.frames(first, count, n_channels, fmt), dtype=object)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_value_type_arrives_exactly(fmt, publish, watchers):
    name = unique_name()
    publish(
        name,
        "--format",
        fmt,
        "--channels",
        "3",
        "--rate",
        "500",
        "--chunk",
        "7",
        "--count",
        "60",
        "--wait-consumer",
        "10",
    )
    watcher = watchers(name, buffer_size_s=1)
    watcher.connect_to_stream(timeout=10)
    pull_until(watcher, 60)

    assert watcher.channel_format == fmt
    assert watcher.channel_names == ["ch000", "ch001", "ch002"]
    assert watcher.channel_units == ["count"] * 3
    assert watcher.channel_types == ["synthetic"] * 3
    assert watcher.buffer.shape == (500, 3)
    assert watcher.curr_i == 60 and watcher.n_new == 60
    data, times = watcher.last(60)
    if fmt == "string":
        assert watcher.buffer.dtype == object
        assert [[json.loads(v) for v in row] for row in data.tolist()] == [
            [{"k": k, "c": c} for c in range(3)] for k in range(60)
        ]
    else:
        assert watcher.buffer.dtype == np.dtype(fmt.replace("double64", "float64"))
        np.testing.assert_array_equal(data, synthetic.frames(0, 60, 3, fmt))
    assert np.all(times > 0)
    assert watcher.last_t == times[-1]


@pytest.mark.parametrize("fmt", ["float32", "string"])
def test_a_backlog_larger_than_the_ring_keeps_the_newest(fmt, publish, watchers):
    name = unique_name()
    publish(
        name,
        "--format",
        fmt,
        "--channels",
        "2",
        "--chunk",
        "4",
        "--count",
        "37",
        "--flat-out",
        "--wait-consumer",
        "10",
    )
    watcher = watchers(name, buffer_size_samples=10)
    watcher.connect_to_stream(timeout=10)
    # Let everything queue up in the inlet, then take it in as few pulls as possible.
    wait_until(lambda: watcher.inlet.samples_available() >= 37, message="the backlog queued")
    pull_until(watcher, 37)

    assert watcher.n_total == 37 and watcher.n_new == 37
    assert watcher.curr_i == 37 % 10
    data, times = watcher.last(10)
    np.testing.assert_array_equal(data.astype(object), expected(27, 10, 2, fmt))
    np.testing.assert_array_equal(watcher.unfold_buffer().astype(object), expected(27, 10, 2, fmt))
    np.testing.assert_array_equal(watcher.unfold_buffer_t(), times)


@pytest.mark.parametrize("fmt", ["int16", "string"])
def test_trickling_samples_wrap_around_the_ring(fmt, publish, watchers):
    name = unique_name()
    publish(
        name,
        "--format",
        fmt,
        "--channels",
        "2",
        "--rate",
        "400",
        "--chunk",
        "3",
        "--count",
        "95",
        "--wait-consumer",
        "10",
    )
    watcher = watchers(name, buffer_size_samples=7)
    watcher.connect_to_stream(timeout=10, ambiguity_wait_s=0)  # read from the first sample

    def drain() -> bool:
        watcher.update()
        return watcher.n_total >= 95

    # In one piece or several, as the machine's load has it: the ring ends the same either way.
    wait_until(drain, message="95 samples")
    assert watcher.curr_i == 95 % 7
    np.testing.assert_array_equal(watcher.unfold_buffer().astype(object), expected(88, 7, 2, fmt))
    data, _ = watcher.last(3)
    np.testing.assert_array_equal(data.astype(object), expected(92, 3, 2, fmt))


def test_one_update_takes_a_bounded_bite_of_a_flood(publish, watchers):
    name = unique_name()
    flood = MAX_PULL_PER_UPDATE + 20_000
    publish(
        name,
        "--channels",
        "1",
        "--rate",
        "100000",
        "--chunk",
        "5000",
        "--count",
        str(flood),
        "--flat-out",
        "--wait-consumer",
        "10",
    )
    watcher = watchers(name, buffer_size_samples=10)
    watcher.connect_to_stream(timeout=10, ambiguity_wait_s=0)
    wait_until(lambda: watcher.inlet.samples_available() >= flood, message="the flood queued")

    assert watcher.update() == MAX_PULL_PER_UPDATE  # returns, though more is waiting
    assert watcher.update() == flood - MAX_PULL_PER_UPDATE
    np.testing.assert_array_equal(watcher.column("ch000"), np.arange(flood - 10, flood))


def test_reads_by_count_time_and_label(publish, watchers):
    name = unique_name()
    publish(
        name,
        "--format",
        "double64",
        "--channels",
        "4",
        "--rate",
        "1000",
        "--chunk",
        "10",
        "--count",
        "200",
        "--wait-consumer",
        "10",
    )
    watcher = watchers(name, buffer_size_s=0.5)
    watcher.connect_to_stream(timeout=10)
    pull_until(watcher, 200)

    everything = synthetic.frames(0, 200, 4, "double64")
    np.testing.assert_array_equal(watcher.column("ch002"), everything[:, 2])
    np.testing.assert_array_equal(watcher.column("ch003", n=5), everything[-5:, 3])
    times = watcher.last(200)[1]
    # Stamps are the producer's clock at each push: on a loaded machine a chunk's first stamps
    # can fall at or before the previous chunk's last, so "after t" is judged by the stamps.
    later, later_times = watcher.since(times[149])
    after = times > times[149]
    assert after[150:].any()
    np.testing.assert_array_equal(later, everything[after])
    np.testing.assert_array_equal(later_times, times[after])
    assert len(watcher.since(times[-1])[0]) == 0
    assert watcher.last(0)[0].shape == (0, 4)
    with pytest.raises(KeyError, match=r"no channel 'ch02'.*did you mean"):
        watcher.column("ch02")
    with pytest.raises(ValueError, match=r"ask for 0\.\.500"):
        watcher.last(501)


def test_the_ring_is_never_empty(publish, watchers):
    irregular, slow, fixed = unique_name(), unique_name(), unique_name()
    publish(irregular, "--rate", "0", "--count", "0")
    publish(slow, "--rate", "10", "--count", "0")
    publish(fixed, "--rate", "0", "--count", "0")

    by_default = watchers(irregular)
    by_default.connect_to_stream(timeout=10)
    assert by_default.buffer.shape == (IRREGULAR_BUFFER_SAMPLES, 8)
    tiny = watchers(slow, buffer_size_s=0.001)
    tiny.connect_to_stream(timeout=10)
    assert tiny.buffer.shape == (1, 8)
    explicit = watchers(fixed, buffer_size_samples=3)
    explicit.connect_to_stream(timeout=10)
    assert explicit.buffer.shape == (3, 8) and explicit.buffer_t.shape == (3,)
    assert explicit.last(3)[0].shape == (0, 8)  # nothing arrived yet, and it says so

    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="buffer_size_s"):
            StreamWatcher("x", buffer_size_s=bad)
    with pytest.raises(ValueError, match="buffer_size_samples"):
        StreamWatcher("x", buffer_size_samples=0)


def test_no_matching_stream_is_a_clear_error(publish):
    present = unique_name()
    publish(present, "--count", "0")
    watcher = StreamWatcher(unique_name())
    with pytest.raises(StreamNotFoundError, match=r"no LSL stream matches .* within 0.5 s"):
        watcher.connect_to_stream(timeout=0.5)
    with pytest.raises(StreamWatcherNotConnected, match="connect_to_stream"):
        watcher.update()
    with pytest.raises(StreamWatcherNotConnected):
        watcher.last(1)
    with pytest.raises(ValueError, match="which stream"):
        StreamWatcher().connect_to_stream(timeout=0.1)
    with pytest.raises(ValueError, match="not a stream property"):
        StreamWatcher().connect_to_stream({"name]|//x": "y"}, timeout=0.1)


def test_several_matches_take_the_newest_and_say_so(spawn, watchers, caplog):
    name = unique_name()
    processes = []
    for producer in ("first", "second"):
        process = spawn(
            PRODUCER, "--name", name, "--source-id", f"{name}@{producer}", "--count", "0"
        )
        assert process.stdout.readline().strip() == b"ready"
        processes.append(process)

    watcher = watchers(name)
    with caplog.at_level(logging.WARNING):
        watcher.connect_to_stream(timeout=10)
    assert watcher.info.source_id() == f"{name}@second"
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "2 LSL streams match" in warning
    assert f"{name}@first" in warning and f"{name}@second" in warning

    chosen = watchers(logger=logging.getLogger("quiet"))
    chosen.connect_to_stream({"name": name, "source_id": f"{name}@first"}, timeout=10)
    assert chosen.info.source_id() == f"{name}@first"
    assert chosen.name == name


def test_recovers_when_the_producer_process_restarts(publish, watchers):
    name = unique_name()
    rate = 200
    first = publish(
        name, "--channels", "2", "--rate", str(rate), "--chunk", "1", "--wait-consumer", "10"
    )
    watcher = watchers(name, buffer_size_s=20)
    watcher.connect_to_stream(timeout=10)
    pull_until(watcher, 50)
    wait_until(lambda: watcher.tracks_restarts, message="liblsl's clock offset")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    watcher.update()
    before = watcher.n_total

    restart_at = 1_000_000
    publish(
        name, "--channels", "2", "--rate", str(rate), "--chunk", "1", "--start", str(restart_at)
    )
    pull_until(watcher, before + 20, timeout=30)
    observed_at = pylsl.local_clock()

    assert len(watcher.recoveries) == 1
    recovery = watcher.recoveries[0]
    data, times = watcher.last(watcher.n_buffered)
    k = data[:, 0].astype(np.int64) // 2  # channel 0 of sample k carries 2k
    old, new = k < restart_at, k >= restart_at
    np.testing.assert_array_equal(k[old], np.arange(before))  # nothing lost before the kill
    np.testing.assert_array_equal(np.diff(k[new]), 1)  # nor after the recovery
    assert recovery.last_t_before == times[old][-1]
    assert recovery.first_t_after == times[new][0]
    # The new producer's samples pushed before liblsl reconnected are truly missed; the estimate
    # covers them, and cannot exceed what the rate fits between the last old sample and now.
    truly_missed = int(k[new][0]) - restart_at
    assert truly_missed <= recovery.possibly_missed <= (observed_at - times[old][-1]) * rate
    assert watcher.n_possibly_missed == recovery.possibly_missed


def test_a_stream_without_source_id_that_dies_is_reported_lost(watchers):
    name = unique_name()
    code = (
        "import time, pylsl\n"
        f"o = pylsl.StreamOutlet(pylsl.StreamInfo({name!r}, 'x', 1, 10, 'float32', ''))\n"
        "print('ready', flush=True)\n"
        "while True:\n    o.push_sample([1.0]); time.sleep(0.05)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert process.stdout.readline().strip() == b"ready"
        watcher = watchers(name)
        watcher.connect_to_stream(timeout=10)
        assert watcher.channel_names == ["ch_1"]  # no desc: Dareplane's default names
        pull_until(watcher, 1)
        in_background = watchers(name)
        in_background.connect_to_stream(timeout=10, ambiguity_wait_s=0)
        in_background.start_background()
    finally:
        process.kill()
        process.wait(10)
        process.stdout.close()

    def lost() -> bool:
        try:
            watcher.update()
        except StreamLostError as exc:
            return "no source_id" in str(exc)
        return False

    wait_until(lost, message="StreamLostError")
    wait_until(lambda: not in_background.background_running, message="the thread to stop")
    with pytest.raises(StreamLostError, match="no source_id"):
        in_background.update()
    with pytest.raises(StreamLostError):  # the thread is gone; pulling says the same
        in_background.update()


def test_background_acquisition_keeps_the_ring_current(publish, watchers):
    name = unique_name()
    publish(
        name,
        "--format",
        "string",
        "--channels",
        "1",
        "--rate",
        "0",
        "--push-rate",
        "300",
        "--chunk",
        "2",
        "--count",
        "120",
        "--wait-consumer",
        "10",
    )
    watcher = watchers(name)
    watcher.connect_to_stream(timeout=10)
    watcher.start_background(poll_interval_s=0.001)
    assert watcher.background_running
    wait_until(lambda: watcher.n_total >= 120, message="120 samples in the background")
    assert watcher.update() == 0  # the thread owns the inlet
    assert watcher.n_total == 120
    data, _ = watcher.last(120)
    assert [json.loads(v)["k"] for v in data[:, 0]] == list(range(120))
    watcher.stop_background()
    assert not watcher.background_running
    assert watcher.update() == 0  # nothing new, and pulling works again


def test_streams_of_another_lsl_session_are_invisible(spawn, publish, tmp_path):
    """What keeps parallel test runs (and a demo) apart: conftest's per-run LSL session."""
    name = unique_name()
    elsewhere = write_lsl_config(tmp_path, f"another-run-{uuid.uuid4().hex}")
    other = spawn(
        PRODUCER,
        "--name",
        name,
        "--source-id",
        f"{name}@other",
        "--count",
        "0",
        env={"LSLAPICFG": str(elsewhere)},
    )
    assert other.stdout.readline().strip() == b"ready"
    with pytest.raises(StreamNotFoundError):
        StreamWatcher(name).connect_to_stream(timeout=1.0)
    publish(name, "--count", "0")
    watcher = StreamWatcher(name)
    watcher.connect_to_stream(timeout=10)
    assert watcher.info.source_id() == f"{name}@test"  # only ours, and no ambiguity warning
    watcher.disconnect()


@pytest.mark.parametrize("fmt", ["float32", "string"])
def test_pull_takes_a_flood_exactly_once_without_overrunning_a_small_ring(fmt, publish, watchers):
    name = unique_name()
    flood = 5000
    publish(
        name,
        "--format",
        fmt,
        "--channels",
        "2",
        "--chunk",
        "50",
        "--count",
        str(flood),
        "--flat-out",
        "--wait-consumer",
        "10",
    )
    watcher = watchers(name, buffer_size_samples=16)
    watcher.connect_to_stream(timeout=10, ambiguity_wait_s=0)
    wait_until(lambda: watcher.inlet.samples_available() >= flood, message="the flood queued")
    got: list[np.ndarray] = []

    def drain() -> bool:
        values, stamps = watcher.pull(max_samples=7)
        assert len(values) == len(stamps) <= 7
        got.append(values)
        return sum(len(v) for v in got) >= flood

    wait_until(drain, message="the whole flood pulled")
    np.testing.assert_array_equal(np.concatenate(got).astype(object), expected(0, flood, 2, fmt))
    assert watcher.overruns == 0
    assert watcher.pull()[0].shape == (0, 2)


def test_pull_counts_what_update_let_fall_off_the_ring(publish, watchers, caplog):
    name = unique_name()
    publish(name, "--channels", "1", "--count", "30", "--flat-out", "--wait-consumer", "10")
    watcher = watchers(name, buffer_size_samples=10)
    watcher.connect_to_stream(timeout=10, ambiguity_wait_s=0)
    wait_until(lambda: watcher.inlet.samples_available() >= 30, message="30 samples queued")
    assert watcher.update() == 30  # Dareplane's update takes everything: 20 are overwritten
    with caplog.at_level(logging.WARNING):
        values, _ = watcher.pull()
    np.testing.assert_array_equal(values[:, 0], np.arange(20, 30))
    assert watcher.overruns == 20
    assert "20 samples overwritten" in caplog.text


def test_pull_in_background_mode_reads_what_the_thread_took(publish, watchers):
    name = unique_name()
    publish(
        name,
        "--channels",
        "3",
        "--rate",
        "2000",
        "--chunk",
        "10",
        "--count",
        "400",
        "--wait-consumer",
        "10",
    )
    watcher = watchers(name, buffer_size_s=1)
    watcher.connect_to_stream(timeout=10, ambiguity_wait_s=0)
    watcher.start_background()
    got: list[np.ndarray] = []

    def drain() -> bool:
        got.append(watcher.pull()[0])
        return sum(len(v) for v in got) >= 400

    wait_until(drain, message="400 samples")
    np.testing.assert_array_equal(np.concatenate(got), synthetic.frames(0, 400, 3, "float32"))
    assert watcher.overruns == 0


@pytest.mark.parametrize("fmt", ["float32", "string"])
def test_pull_with_a_timeout_sleeps_until_the_next_sample(fmt, publish, watchers):
    name = unique_name()
    count = 30
    publish(
        name,
        "--format",
        fmt,
        "--channels",
        "2",
        "--rate",
        "20",
        "--count",
        str(count),
        "--wait-consumer",
        "10",
    )
    watcher = watchers(name, buffer_size_samples=8)
    watcher.connect_to_stream(timeout=10, ambiguity_wait_s=0)
    got: list[np.ndarray] = []
    while sum(len(v) for v in got) < count:
        values, stamps = watcher.pull(timeout=30)
        # Never empty-handed: a call returns once a sample is there, however slow the stream.
        assert len(values) == len(stamps) > 0
        got.append(values)
    np.testing.assert_array_equal(np.concatenate(got).astype(object), expected(0, count, 2, fmt))
    assert watcher.overruns == 0
    watcher.start_background()
    with pytest.raises(ValueError, match="stop_background"):
        watcher.pull(timeout=1)


@pytest.mark.parametrize("fmt", ["double64", "string"])
def test_wait_sleeps_until_a_sample_comes_and_pull_returns_it_in_order(fmt, publish, watchers):
    """An idle reader blocks in wait() instead of polling (issue 18): each sample that ends a
    wait is pulled in order with the rest, none twice, none lost; quiet, wait() gives 0."""
    name = unique_name()
    publish(
        name,
        "--format",
        fmt,
        "--channels",
        "3",
        "--rate",
        "20",
        "--chunk",
        "1",
        "--count",
        "12",
        "--wait-consumer",
        "10",
    )
    watcher = watchers(name, buffer_size_samples=8)
    watcher.connect_to_stream(timeout=10, ambiguity_wait_s=0)
    got: list[np.ndarray] = []
    waits = 0
    while sum(len(v) for v in got) < 12 and waits < 200:
        waits += 1
        if watcher.wait(5.0):
            values, _ = watcher.pull()
            got.append(values)
    np.testing.assert_array_equal(np.concatenate(got).astype(object), expected(0, 12, 3, fmt))
    assert watcher.wait(0.2) == 0  # the producer sent all it had: the wait times out
    assert watcher.pull()[0].shape == (0, 3)


def test_update_counts_what_wait_took(publish, watchers):
    """A reader by update() (the web bridge) is told of the sample wait() moved in."""
    name = unique_name()
    publish(
        name,
        "--channels",
        "2",
        "--rate",
        "20",
        "--chunk",
        "1",
        "--count",
        "5",
        "--wait-consumer",
        "10",
    )
    watcher = watchers(name, buffer_size_samples=8)
    watcher.connect_to_stream(timeout=10, ambiguity_wait_s=0)
    seen = 0
    for _ in range(100):
        if seen >= 5:
            break
        if watcher.wait(5.0):
            assert watcher.wait(5.0) >= 1  # still owed to update(): no second sample taken
            seen += watcher.update()
    assert seen == watcher.n_total == 5
    data, _ = watcher.last(5)
    np.testing.assert_array_equal(data.astype(object), expected(0, 5, 2, "double64"))

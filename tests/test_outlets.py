"""Outlet helpers: stream descriptions, desc metadata, and what a real inlet receives."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET

import numpy as np
import pylsl
import pytest

from dareplane_utils.stream_watcher.lsl_stream_watcher import StreamWatcher
from dareplane_utils.stream_watcher.outlets import (
    ChannelSpec,
    StreamSpec,
    encode_json,
    make_outlet,
    push_frame,
    push_frames,
    push_json,
    push_json_chunk,
    push_texts,
)
from dareplane_utils.testing import wait_until


def unique_name() -> str:
    return f"raceplane.test.{uuid.uuid4().hex[:10]}"


def numeric_spec(stream_name: str, **overrides) -> StreamSpec:
    fields = {
        "name": stream_name,
        "type": "lap_data",
        "channels": [
            ChannelSpec("car00.last_lap_time_ms", "ms", "lap_data"),
            ChannelSpec("car00.current_lap_num", "", "lap_data"),
            "header.session_uid_lo",
        ],
        "source_id": f"{stream_name}@test",
        "nominal_srate": 0,
        "channel_format": "float64",
    }
    return StreamSpec(**{**fields, **overrides})


@pytest.fixture
def connected():
    """(outlet, watcher) pairs over real LSL; watchers are disconnected at teardown."""
    made: list[StreamWatcher] = []

    def connect(spec: StreamSpec) -> tuple[pylsl.StreamOutlet, StreamWatcher]:
        outlet = make_outlet(spec)
        watcher = StreamWatcher(spec.name, buffer_size_samples=50)
        watcher.connect_to_stream(timeout=10, ambiguity_wait_s=0)
        made.append(watcher)
        wait_until(lambda: outlet.have_consumers(), message="the watcher to subscribe")
        return outlet, watcher

    yield connect
    for watcher in made:
        watcher.disconnect()


def receive(watcher: StreamWatcher, n: int) -> tuple[np.ndarray, np.ndarray]:
    def arrived() -> bool:
        watcher.update()
        return watcher.n_total >= n

    wait_until(arrived, message=f"{n} samples")
    return watcher.last(n)


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"name": ""}, "needs a name"),
        ({"source_id": ""}, "stable source_id"),
        ({"channels": []}, "at least one channel"),
        ({"channels": ["a", "b", "a"]}, r"duplicate channel labels: \['a'\]"),
        ({"channels": ["a", ""]}, "non-empty string"),
        ({"channel_format": "float16"}, "unknown channel_format 'float16'"),
        ({"nominal_srate": -1}, "nominal_srate must be >= 0"),
        ({"nominal_srate": float("nan")}, "nominal_srate must be >= 0"),
    ],
)
def test_a_bad_description_is_refused_with_the_reason(overrides, complaint):
    with pytest.raises(ValueError, match=complaint):
        numeric_spec("raceplane.bad", **overrides)


def test_desc_carries_labels_units_types_and_metadata():
    spec = numeric_spec(
        "raceplane.lap_data",
        metadata={"producer": "decoder", "game": {"year": 2025, "live": True}, "tag": ["a", "b"]},
    )
    assert spec.channel_format == "double64"  # numpy's name accepted, LSL's name kept
    assert spec.labels == [
        "car00.last_lap_time_ms",
        "car00.current_lap_num",
        "header.session_uid_lo",
    ]
    desc = ET.fromstring(spec.stream_info().as_xml()).find("desc")
    channels = [
        (c.findtext("label"), c.findtext("unit"), c.findtext("type"))
        for c in desc.find("channels").findall("channel")
    ]
    assert channels == [
        ("car00.last_lap_time_ms", "ms", "lap_data"),
        ("car00.current_lap_num", "", "lap_data"),
        ("header.session_uid_lo", "", ""),
    ]
    assert desc.findtext("producer") == "decoder"
    assert desc.findtext("game/year") == "2025" and desc.findtext("game/live") == "true"
    assert [e.text for e in desc.findall("tag")] == ["a", "b"]
    with pytest.raises(ValueError, match="reserved"):
        numeric_spec("raceplane.x", metadata={"channels": 1}).stream_info()


def test_json_spec_is_one_irregular_string_channel():
    spec = StreamSpec.json("raceplane.laps", "raceplane.laps@lap_timer:8103", producer="lap_timer")
    info = spec.stream_info()
    assert (info.channel_count(), info.channel_format(), info.nominal_srate()) == (
        1,
        pylsl.cf_string,
        0.0,
    )
    assert info.source_id() == "raceplane.laps@lap_timer:8103"
    assert info.desc().child_value("producer") == "lap_timer"


def test_frames_arrive_exactly_with_their_timestamps(connected):
    spec = numeric_spec(unique_name(), metadata={"producer": "test"})
    outlet, watcher = connected(spec)
    # Consumers see the whole description, so a recording is self-describing.
    assert watcher.channel_names == spec.labels
    assert watcher.channel_units == ["ms", "", ""]
    assert watcher.info.desc().child_value("producer") == "test"

    biggest_uint32 = 2**32 - 1  # float64 channels carry 32-bit ids and ms times exactly
    push_frame(outlet, [83_456, 3, biggest_uint32], timestamp=100.0)
    push_frame(outlet, np.array([1.5, 4, 7]))
    push_frames(outlet, np.array([[1, 2, 3], [4, 5, 6]]), timestamps=[200.0, 200.5])
    push_frames(outlet, [[7, 8, 9], [10, 11, 12]], timestamps=300.0)
    data, times = receive(watcher, 6)

    np.testing.assert_array_equal(
        data,
        [[83_456, 3, biggest_uint32], [1.5, 4, 7], [1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]],
    )
    assert times[0] == 100.0 and times[1] > 100.0  # None means now
    assert list(times[2:4]) == [200.0, 200.5]
    assert times[5] == 300.0  # one float stamps the newest sample


def test_bad_frames_are_refused_and_nothing_is_sent(connected):
    outlet, watcher = connected(numeric_spec(unique_name()))
    with pytest.raises(ValueError, match="exactly 3 values"):
        push_frame(outlet, [1, 2])
    with pytest.raises(ValueError, match="exactly 3 values"):
        push_frame(outlet, [[1, 2, 3]])
    with pytest.raises(ValueError, match="every frame needs 3 values, got 2"):
        push_frames(outlet, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="2-D"):
        push_frames(outlet, np.zeros(3))
    with pytest.raises(ValueError, match="2 frames but 3 timestamps"):
        push_frames(outlet, np.zeros((2, 3)), timestamps=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="one-channel string outlet"):
        push_json(outlet, {"a": 1})
    push_frames(outlet, np.zeros((0, 3)))  # an empty chunk is nothing to send
    push_frame(outlet, [1, 2, 3])
    data, _ = receive(watcher, 1)
    np.testing.assert_array_equal(data, [[1, 2, 3]])
    assert watcher.n_total == 1


def test_json_objects_round_trip(connected):
    name = unique_name()
    outlet, watcher = connected(StreamSpec.json(name, f"{name}@test"))
    lap = {
        "session_uid": "18446744073709551615",
        "lap": 3,
        "sector_ms": [28123, 31044, 25990],
        "driver": "Pérez",
        "valid": True,
        "tyre": None,
    }
    text = push_json(outlet, lap, timestamp=42.0)
    assert text == encode_json(lap) and " " not in text and "Pérez" in text
    with pytest.raises(ValueError, match="cannot send as JSON"):
        push_json(outlet, {"gap_ms": float("nan")})
    with pytest.raises(ValueError, match="cannot send as JSON"):
        push_json(outlet, {"when": object()})
    push_json(outlet, [1, 2])
    data, times = receive(watcher, 2)
    assert [json.loads(v) for v in data[:, 0]] == [lap, [1, 2]]
    assert times[0] == 42.0 and watcher.n_total == 2


def test_json_chunks_arrive_one_sample_each_with_their_timestamps(connected):
    name = unique_name()
    outlet, watcher = connected(StreamSpec.json(name, f"{name}@test"))
    laps = [{"lap": n, "driver": "Pérez", "tyre": None} for n in (1, 2, 3)]
    texts = push_json_chunk(outlet, laps, [10.0, 11.0, 12.5])
    assert texts == [encode_json(lap) for lap in laps]
    push_texts(outlet, ['{"lap":4}'], [13.0])
    with pytest.raises(ValueError, match="2 texts but 1 timestamps"):
        push_texts(outlet, ["{}", "{}"], [1.0])
    with pytest.raises(ValueError, match="cannot send as JSON"):
        push_json_chunk(outlet, [{"gap_ms": float("nan")}], [1.0])
    data, times = receive(watcher, 4)
    assert [json.loads(v) for v in data[:, 0]] == [*laps, {"lap": 4}]
    assert list(times) == [10.0, 11.0, 12.5, 13.0] and watcher.n_total == 4


def test_multi_channel_string_frames(connected):
    name = unique_name()
    spec = StreamSpec(
        name=name,
        type="markers",
        channels=["code", "detail"],
        source_id=f"{name}@t",
        channel_format="string",
    )
    outlet, watcher = connected(spec)
    push_frame(outlet, ["FTLP", "car 7"])
    push_frames(outlet, [["SCAR", ""], ["CHQF", "ünïcode"]])
    with pytest.raises(ValueError, match="every frame needs 2 values, got 1"):
        push_frames(outlet, [["only one"]])
    data, _ = receive(watcher, 3)
    assert data.tolist() == [["FTLP", "car 7"], ["SCAR", ""], ["CHQF", "ünïcode"]]

"""The loader reading part of a file (`load(only=, channels=)`, what the analysis reads a race's
laps with): the same values as a whole load, whatever the stream headers look like."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modules.recorder.loader import iter_chunks, load
from modules.recorder.xdf import SAMPLES, XdfEncoder


def header(name_xml: str, fmt: str, labels: list[str], before: str = "", desc: str = "") -> str:
    channels = "".join(f"<channel><label>{label}</label></channel>" for label in labels)
    return (
        f'<?xml version="1.0"?><info>{before}{name_xml}<type>T</type>'
        f"<channel_count>{len(labels)}</channel_count><channel_format>{fmt}</channel_format>"
        f"<nominal_srate>0</nominal_srate><source_id>{len(name_xml)}@test</source_id>"
        f"<hostname>h</hostname><desc>{desc}<channels>{channels}</channels></desc></info>"
    )


# (header, the stream's real name): names a quick look could get wrong are in here.
STREAMS = [
    (header("<name>laps</name>", "double64", ["t", "a", "b", "c"]), "laps"),
    # A device <name> in <desc>, after the stream's own.
    (header("<name>tel</name>", "float32", ["x", "y"], desc="<device><name>laps</name></device>"),
     "tel"),
    # An entity in the name: only a parser reads it right.
    (header("<name>a&amp;b</name>", "int32", ["p", "q", "r"]), "a&b"),
    # Something before the stream's <name> that has a <name> of its own.
    (header("<name>laps2</name>", "double64", ["u", "v"], before="<x><name>tel</name></x>"),
     "laps2"),
    (header("<name>events</name>", "string", ["s"]), "events"),
]  # fmt: skip


def write(path: Path) -> dict[str, tuple[np.ndarray, object]]:
    encoder = XdfEncoder()
    out = encoder.file_header({})
    expected = {}
    rng = np.random.default_rng(7)
    for sid, (xml, _name) in enumerate(STREAMS, start=1):
        out += encoder.stream_header(sid, xml)
    for sid, (xml, name) in enumerate(STREAMS, start=1):
        stamps = np.arange(30) / 10 + sid
        if name == "events":
            values = np.array([[f'{{"k": {k}}}'] for k in range(30)], dtype=object)
        else:
            width = xml.count("<label>")
            dtype = {"laps": "<f8", "tel": "<f4", "a&b": "<i4", "laps2": "<f8"}[name]
            values = (rng.normal(size=(30, width)) * 1000).astype(dtype)
            values[3, 0] = np.nan if values.dtype.kind == "f" else values[3, 0]
        for part in (slice(0, 7), slice(7, 30)):
            out += encoder.samples(sid, stamps[part], values[part])
        expected[name] = (stamps, values)
    for sid in range(1, len(STREAMS) + 1):
        out += encoder.stream_footer(sid)
    path.write_bytes(out)
    return expected


def test_only_some_streams_and_channels_give_what_a_whole_load_gives(tmp_path):
    path = tmp_path / "mixed.xdf"
    expected = write(path)
    whole = load(path)
    assert sorted(s.name for s in whole.streams) == sorted(expected)
    for only in (["laps"], ["tel"], ["a&b"], ["laps2"], ["events", "laps"], ["a&b", "tel"], []):
        part = load(path, only=only, channels={"laps": {"t", "c"}, "a&b": {"q"}})
        assert sorted(s.name for s in part.streams) == sorted(only), only
        assert part.warnings == []
        for stream in part.streams:
            stamps, values = expected[stream.name]
            np.testing.assert_array_equal(stream.time_stamps, stamps)
            if stream.name == "events":
                assert [row[0] for row in stream.time_series] == [v[0] for v in values]
                continue
            labels = whole.stream(stream.name).channel_labels
            keep = {"laps": ["t", "c"], "a&b": ["q"]}.get(stream.name, labels)
            assert stream.channel_labels == keep
            columns = [labels.index(label) for label in keep]
            np.testing.assert_array_equal(stream.time_series, values[:, columns])
            assert stream.time_series.flags.c_contiguous


def test_a_cut_file_read_in_part_keeps_its_complete_chunks(tmp_path):
    path = tmp_path / "mixed.xdf"
    expected = write(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.xdf"
    last_samples = max(item.end for item in iter_chunks(data) if item.tag == SAMPLES)
    cut.write_bytes(data[: last_samples - 10])  # into the events' second samples chunk
    part = load(cut, only=["laps", "events"], channels={"laps": {"b"}})
    assert any("incomplete" in warning for warning in part.warnings)
    laps = part.stream("laps")
    np.testing.assert_array_equal(laps.time_series, expected["laps"][1][:, [2]])
    events = part.stream("events")
    assert len(events.time_stamps) == 7  # the first chunk, not the cut one

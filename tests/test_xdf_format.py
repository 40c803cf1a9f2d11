"""The XDF encoder and our loader without sockets: bytes in, bytes out, checked against pyxdf."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import pyxdf

from modules.recorder.loader import iter_chunks, load, parse
from modules.recorder.session_params import learned_from
from modules.recorder.sink import XdfSink
from modules.recorder.xdf import MAGIC, NUMERIC_FORMATS, XdfEncoder, XdfError, chunk, varlen


def info_xml(name: str, fmt: str, channels: int, srate: float, source_id: str | None = None) -> str:
    labels = "".join(
        f"<channel><label>c{i}</label><unit>kph</unit></channel>" for i in range(channels)
    )
    return (
        f'<?xml version="1.0"?><info><name>{name}</name><type>T</type>'
        f"<channel_count>{channels}</channel_count><channel_format>{fmt}</channel_format>"
        f"<nominal_srate>{srate}</nominal_srate>"
        f"<source_id>{source_id or name + '@test'}</source_id>"
        f"<hostname>h</hostname><desc><channels>{labels}</channels></desc></info>"
    )


def sample_recording(
    formats: tuple[str, ...] = tuple(NUMERIC_FORMATS),
) -> tuple[bytes, dict[str, tuple[np.ndarray, object]]]:
    """A small file with every numeric format, a string stream, offsets, boundaries, footers."""
    encoder = XdfEncoder()
    out = encoder.file_header({"track": "Monza", "session_type": "Race"})
    expected: dict[str, tuple[np.ndarray, object]] = {}
    for stream_id, fmt in enumerate(formats):
        name = f"raceplane.{fmt}"
        out += encoder.stream_header(stream_id, info_xml(name, fmt, 3, 50.0))
        # Stamps built by repeated addition are deducible, so both encodings get exercised.
        times = [100.0]
        for _ in range(11):
            times.append(times[-1] + 1 / 50.0)
        times[7] += 0.5  # a jump: this chunk must carry explicit stamps
        stamps = np.array(times)
        values = (np.arange(36).reshape(12, 3) * (stream_id + 1) - 20).astype(NUMERIC_FORMATS[fmt])
        for part in (slice(0, 1), slice(1, 5), slice(5, 12)):
            out += encoder.samples(stream_id, stamps[part], values[part])
        out += encoder.clock_offset(stream_id, 101.0, -0.25)
        expected[name] = (stamps, values)
    strings = [["{}"], ['{"code":"FTLP","x":"ü"}'], ["x" * 300], [""]]
    string_id = 42
    out += encoder.stream_header(string_id, info_xml("raceplane.events", "string", 1, 0.0))
    stamps = np.array([1.5, 2.5, 3.5, 4.5])
    out += encoder.samples(string_id, stamps[:2], np.array(strings[:2], dtype=object))
    out += encoder.boundary()
    out += encoder.samples(
        string_id, stamps[2:], np.array([[s.encode()] for [s] in strings[2:]], dtype=object)
    )
    expected["raceplane.events"] = (stamps, strings)
    for stream_id in encoder.streams:
        out += encoder.stream_footer(stream_id)
    return out, expected


def test_varlen_picks_the_smallest_width():
    assert varlen(255) == b"\x01\xff"
    assert varlen(256) == b"\x04" + struct.pack("<I", 256)
    assert varlen(1 << 32) == b"\x08" + struct.pack("<Q", 1 << 32)
    assert chunk(5, b"ab") == b"\x01\x04\x05\x00ab"


def test_pyxdf_loads_every_sample_and_timestamp_exactly(tmp_path: Path):
    data, expected = sample_recording()
    path = tmp_path / "r.xdf"
    path.write_bytes(data)
    streams, header = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    assert header["info"]["session"][0]["track"] == ["Monza"]
    loaded = {s["info"]["name"][0]: s for s in streams}
    assert set(loaded) == set(expected)
    for name, (stamps, values) in expected.items():
        np.testing.assert_array_equal(loaded[name]["time_stamps"], stamps)
        if isinstance(values, np.ndarray):
            np.testing.assert_array_equal(loaded[name]["time_series"], values)
            assert loaded[name]["time_series"].dtype == values.dtype
        else:
            assert loaded[name]["time_series"] == values
    assert loaded["raceplane.int16"]["info"]["desc"][0]["channels"][0]["channel"][2]["unit"] == [
        "kph"
    ]
    assert loaded["raceplane.float32"]["footer"]["info"]["sample_count"] == ["12"]


def test_some_samples_are_written_without_timestamps():
    encoder = XdfEncoder()
    encoder.stream_header(0, info_xml("a", "float32", 1, 10.0))
    first = encoder.samples(0, np.array([1.0]), np.zeros((1, 1), np.float32))
    deduced = encoder.samples(0, np.array([1.1, 1.1 + 0.1]), np.zeros((2, 1), np.float32))
    stamped = encoder.samples(0, np.array([5.0, 6.0]), np.zeros((2, 1), np.float32))
    assert len(stamped) == len(first) + 13  # one more sample: 1 + 8 + 4 bytes
    assert len(deduced) == len(stamped) - 16  # two stamps of 8 bytes left out
    assert encoder.streams[0].sample_count == 5


def test_our_loader_matches_the_encoder(tmp_path: Path):
    data, expected = sample_recording()
    path = tmp_path / "r.xdf"
    path.write_bytes(data)
    recording = load(path)
    assert recording.warnings == []
    assert recording.session == {"track": "Monza", "session_type": "Race"}
    for name, (stamps, values) in expected.items():
        stream = recording.stream(name)
        np.testing.assert_array_equal(stream.time_stamps, stamps)
        if isinstance(values, np.ndarray):
            np.testing.assert_array_equal(stream.time_series, values)
        else:
            assert stream.time_series == values
    assert recording.stream("raceplane.int8").channel_labels == ["c0", "c1", "c2"]
    assert recording.stream("raceplane.int8").clock_offsets == [(101.0, -0.25)]


def test_a_file_cut_at_every_byte_loads_what_came_before_the_cut():
    data, expected = sample_recording(("int16", "double64"))
    chunk_ends = [item.end for item in iter_chunks(data)]
    total = sum(len(stamps) for stamps, _ in expected.values())
    previous = 0
    for cut in range(len(data) + 1):
        _, streams, warnings, good_end = parse(data[:cut])
        assert good_end == max([len(MAGIC)] + [end for end in chunk_ends if end <= cut]) or cut < 4
        count = sum(len(s) for s in streams)
        assert count >= previous  # more bytes never lose samples
        previous = count
        for stream in streams:  # what is there is a prefix of what was written
            stamps = expected[stream.name][0]
            np.testing.assert_array_equal(stream.time_stamps, stamps[: len(stream)])
        if cut not in chunk_ends and cut > len(MAGIC):
            assert warnings
    assert previous == total


def test_garbage_is_refused_with_a_clear_error(tmp_path: Path):
    path = tmp_path / "not.xdf"
    path.write_bytes(b"PK\x03\x04 this is a zip")
    with pytest.raises(XdfError, match="not an XDF file"):
        load(path)
    # A well-framed chunk with nonsense inside stops the load there, keeping what came before.
    data, _ = sample_recording()
    bad = data + chunk(3, struct.pack("<I", 999) + b"junk") + data[4:]
    path.write_bytes(bad)
    recording = load(path)
    assert any("before its header" in warning for warning in recording.warnings)
    assert len(recording.stream("raceplane.events")) == 4


def test_overlapping_files_join_without_duplicates(tmp_path: Path):
    xml = info_xml("raceplane.lap_data", "double64", 2, 0.0, "lap@decoder")
    stamps = np.arange(100) * 0.5
    values = np.arange(200, dtype=np.float64).reshape(100, 2)
    paths = []
    # Three recordings of the same stream: overlapping, and the last one starting in a gap.
    for index, (start, stop) in enumerate(((0, 60), (40, 80), (75, 100))):
        encoder = XdfEncoder()
        data = encoder.file_header() + encoder.stream_header(index, xml)
        data += encoder.samples(index, stamps[start:stop], values[start:stop])
        path = tmp_path / f"part{index}.xdf"
        path.write_bytes(data)
        paths.append(path)
    joined = load(*paths).stream("raceplane.lap_data")
    np.testing.assert_array_equal(joined.time_stamps, stamps)
    np.testing.assert_array_equal(joined.time_series, values)


def test_append_continues_after_the_last_complete_chunk(tmp_path: Path):
    data, expected = sample_recording()
    path = tmp_path / "a.xdf"
    path.write_bytes(data + b"\x04\xff\xff")  # a chunk cut short by a crash
    sink = XdfSink(path, append=True)
    assert sink.resumed and sink.next_stream_id == 43
    encoder = XdfEncoder()
    more = encoder.stream_header(43, info_xml("raceplane.events", "string", 1, 0.0))
    more += encoder.samples(43, np.array([9.5]), np.array([["later"]], dtype=object))
    sink.write(more)
    sink.close()
    assert path.read_bytes() == data + more
    events = load(path).stream("raceplane.events")
    assert events.time_series == [*expected["raceplane.events"][1], ["later"]]
    streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    assert len(streams) == len(expected) + 1


def test_a_write_error_is_reported_clearly():
    sink = XdfSink(Path("/dev/full"))
    with pytest.raises(
        OSError, match=r"write to /dev/full failed: No space left on device \(ENOSPC\)"
    ):
        sink.write(XdfEncoder().file_header())
    with pytest.raises(OSError, match="ENOSPC"):  # and it stays failed
        sink.write(XdfEncoder.boundary())
    sink.close()


def test_an_unwritable_path_is_reported_clearly(tmp_path: Path):
    (tmp_path / "file").write_text("")
    with pytest.raises(
        OSError, match=r"cannot open .*file/x.xdf for writing: .*is not a directory"
    ):
        XdfSink(tmp_path / "file" / "x.xdf")


def test_unknown_stream_formats_are_refused():
    encoder = XdfEncoder()
    with pytest.raises(XdfError, match="channel_format"):
        encoder.stream_header(0, info_xml("x", "float16", 1, 0.0))
    encoder.stream_header(1, info_xml("y", "float32", 2, 0.0))
    with pytest.raises(XdfError, match="expected"):
        encoder.samples(1, np.array([1.0]), np.zeros((1, 3), np.float32))


def test_the_file_header_is_rewritten_in_place_with_learned_session_parameters(tmp_path: Path):
    encoder = XdfEncoder()
    first = encoder.file_header({"setup_file": "demo.toml"}, reserve=100)
    rest = encoder.stream_header(0, info_xml("raceplane.x", "float32", 1, 0.0))
    rest += encoder.samples(0, np.array([1.0, 2.0]), np.array([[1.0], [2.0]]))
    learned = encoder.session_header({"setup_file": "demo.toml", "track": "Monza"})
    assert learned is not None and len(learned) == len(first) - len(MAGIC)
    assert encoder.session_header({"track": "x" * 200}) is None  # no room: the caller says so
    path = tmp_path / "learned.xdf"
    path.write_bytes(MAGIC + learned + rest)
    assert load(path).session == {"setup_file": "demo.toml", "track": "Monza"}
    streams, header = pyxdf.load_xdf(str(path))
    assert header["info"]["session"][0]["track"] == ["Monza"]
    assert len(streams[0]["time_stamps"]) == 2


def test_resuming_a_cut_file_closes_its_streams_with_a_gap_note(tmp_path: Path):
    data, _ = sample_recording(("float32",))
    whole = data[: max(c.end for c in iter_chunks(data) if c.tag == 3)]  # cut after the samples
    path = tmp_path / "cut.xdf"
    path.write_bytes(whole + b"\x04\xff\x00")  # and a partial chunk, as a SIGKILL leaves
    sink = XdfSink(path, append=True)
    assert [s.name for s in sink.cut_streams] == ["raceplane.float32", "raceplane.events"]
    assert sink.last_write is not None and sink.next_stream_id == 43
    encoder = XdfEncoder()
    for stream in sink.cut_streams:
        encoder.adopt(stream.stream_id, stream.info_xml, stream.time_stamps, stream.clock_offsets)
        sink.write(encoder.stream_footer(stream.stream_id, cut={"resumed": "12.5", "gap_s": "3"}))
    sink.close()
    recording = load(path)
    assert recording.warnings == []
    assert recording.gaps == [{"file": str(path), "resumed": "12.5", "gap_s": "3"}]
    streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    for stream, cut in zip(streams, sink.cut_streams, strict=True):
        footer = stream["footer"]["info"]
        assert footer["sample_count"] == [str(len(cut))]
        assert footer["last_timestamp"] == [repr(float(cut.time_stamps[-1]))]
        assert footer["cut"][0]["gap_s"] == ["3"]


@pytest.mark.parametrize(
    ("sample", "learned"),
    [
        (
            '{"track_id": 10, "track_name": "Monza", "session_type": 15}',
            {"track": "Monza", "session_type": "15"},
        ),
        (b'{"track_id": 3, "session_type_name": "Race"}', {"track": "3", "session_type": "Race"}),
        ('{"track_id": true, "track_name": ""}', {}),
        ("not json", {}),
        ("[1, 2]", {}),
    ],
)
def test_session_parameters_learned_from_a_session_sample(sample, learned):
    assert learned_from(sample) == learned

"""The raw UDP capture format: writer and reader round trip, any chunking, and bad files."""

from __future__ import annotations

import struct

import pytest

from modules.f1_udp.capture import (
    MAGIC,
    MAX_DATAGRAM,
    CaptureError,
    CaptureParser,
    CaptureWriter,
    Datagram,
    encode_record,
    file_header,
    read_capture,
)

DATAGRAMS = [
    Datagram(1_700_000_000.125, b"\x01" * 29),
    Datagram(1_700_000_000.126, b""),
    Datagram(1_700_000_000.5, bytes(range(256)) * 5),
    Datagram(1_700_000_001.0, b"x" * MAX_DATAGRAM),
]


def write(path, datagrams=DATAGRAMS) -> None:
    with CaptureWriter(path) as writer:
        for datagram in datagrams:
            writer.write(datagram.payload, datagram.time_s)


def test_round_trip_through_a_file(tmp_path):
    path = tmp_path / "race.rpcap"
    write(path)
    assert list(read_capture(path)) == DATAGRAMS
    assert path.read_bytes()[:8] == MAGIC


def test_byte_layout_is_the_documented_one(tmp_path):
    path = tmp_path / "one.rpcap"
    write(path, [Datagram(2.5, b"abc")])
    assert (
        path.read_bytes()
        == b"RPUDPCAP" + struct.pack("<I", 1) + struct.pack("<dI", 2.5, 3) + b"abc"
    )


def test_writer_stamps_receive_time_when_not_given(tmp_path):
    path = tmp_path / "now.rpcap"
    with CaptureWriter(path) as writer:
        writer.write(b"payload")
    (datagram,) = read_capture(path)
    assert datagram.payload == b"payload" and datagram.time_s > 1_600_000_000


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_parser_accepts_any_chunking(chunk):
    data = file_header() + b"".join(encode_record(d.time_s, d.payload) for d in DATAGRAMS)
    parser = CaptureParser()
    out = []
    for start in range(0, len(data), chunk):
        out += parser.feed(data[start : start + chunk])
    parser.close()
    assert out == DATAGRAMS


def test_cut_short_file_keeps_every_complete_record_then_says_so(tmp_path):
    path = tmp_path / "cut.rpcap"
    write(path)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    got = []
    with pytest.raises(CaptureError, match="cut short"):
        for datagram in read_capture(path):
            got.append(datagram)
    assert got == DATAGRAMS[:-1]


def test_not_a_capture_is_refused_at_once():
    with pytest.raises(CaptureError, match="bad magic"):
        CaptureParser().feed(b"GARBAGE!")
    with pytest.raises(CaptureError, match="bad magic"):
        CaptureParser().feed(b"X")


def test_unknown_version_is_refused():
    with pytest.raises(CaptureError, match="version 9"):
        CaptureParser().feed(MAGIC + struct.pack("<I", 9))


def test_corrupt_length_names_the_offset():
    data = file_header() + encode_record(1.0, b"ok") + struct.pack("<dI", 2.0, MAX_DATAGRAM + 1)
    parser = CaptureParser()
    with pytest.raises(CaptureError, match="at byte 26"):
        parser.feed(data)


def test_empty_file_is_not_a_capture(tmp_path):
    path = tmp_path / "empty.rpcap"
    path.write_bytes(b"")
    with pytest.raises(CaptureError, match="shorter than its header"):
        list(read_capture(path))


def test_oversized_datagram_cannot_be_written():
    with pytest.raises(CaptureError, match="exceeds"):
        encode_record(0.0, b"x" * (MAX_DATAGRAM + 1))

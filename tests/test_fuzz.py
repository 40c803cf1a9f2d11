"""Property-based fuzzing of every parser that takes bytes from outside the process.

Each parser may refuse input only with its documented error type (or an error event), must
never lose a message that was well formed, and must give the same result however the bytes are
split across reads. Examples are bounded so the file runs in seconds;
RACEPLANE_FUZZ_EXAMPLES=N runs N examples per property (e.g. a longer CI job or `make soak`).
"""

from __future__ import annotations

import itertools
import json
import os
import struct
import tomllib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dareplane_utils.default_server.protocol import (
    BadMessage,
    Command,
    CommandConnection,
    CommandParser,
    encode_command,
)
from dareplane_utils.logging.framing import (
    HEADER,
    Frame,
    FrameDecoder,
    FrameError,
    encode_frame,
    encode_payload,
)
from dareplane_utils.logging.records import normalize
from modules.control_room.setup import SetupError, parse_setup
from modules.f1_udp import PACKET_SIZES, UnknownPacketError, parse_packet
from modules.f1_udp.capture import CaptureError, CaptureParser, encode_record, file_header
from modules.recorder.loader import parse as parse_xdf
from modules.recorder.xdf import SAMPLES, XdfEncoder, XdfError, chunk, varlen
from modules.telemetry_decoder.core import NOTICES, Datagram, DecoderCore

EXAMPLES = int(os.environ.get("RACEPLANE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REPO = Path(__file__).resolve().parent.parent


def split_points(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at the given offsets (taken modulo its length): the reads a socket might do."""
    offsets = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(offsets)]


cuts = st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=8)
# Bytes rich in the characters the command grammar cares about, plus anything else.
command_bytes = st.lists(
    st.one_of(
        st.sampled_from([b";", b"|", b"{", b"}", b'"', b" ", b"UP", b"HELLO", b'{"a":1}', b"\xff"]),
        st.binary(max_size=12),
    ),
    max_size=40,
).map(b"".join)

# ---- the command protocol (dareplane_utils/default_server/protocol.py) --------------------


@FUZZ
@given(data=command_bytes, cut=cuts, limit=st.integers(min_value=4, max_value=64))
def test_command_parser_takes_any_bytes_and_ignores_how_they_are_split(data, cut, limit):
    whole = CommandParser(max_message_bytes=limit).feed(data)
    parser = CommandParser(max_message_bytes=limit)
    pieces = [m for piece in split_points(data, cut) for m in parser.feed(piece)]
    assert all(isinstance(m, Command | BadMessage) for m in whole)
    assert all(isinstance(m.error, str) and m.error for m in whole if isinstance(m, BadMessage))
    # Held bytes never exceed the limit, whatever arrives.
    assert parser.pending_bytes <= limit
    # Without an over-long message, splitting changes nothing. (With one, where the limit trips
    # depends on the reads, by design: the message is dropped up to its ';' either way.)
    if not any(isinstance(m, BadMessage) and "longer than" in m.error for m in whole + pieces):
        assert pieces == whole


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
command_names = st.text(
    alphabet=st.characters(blacklist_characters=";|", blacklist_categories=("Cs", "Zs", "Cc")),
    min_size=1,
    max_size=16,
).filter(lambda name: name == name.strip())


@FUZZ
@given(
    commands=st.lists(
        st.tuples(command_names, st.dictionaries(st.text(max_size=8), json_values, max_size=4)),
        min_size=1,
        max_size=6,
    ),
    noise=st.lists(st.sampled_from([b"", b";", b" ; ", b"\n;"]), min_size=7, max_size=7),
    cut=cuts,
)
def test_every_encoded_command_comes_back_exactly(commands, noise, cut):
    """What a client encodes (any name, any JSON kwargs) the server reads back unchanged."""
    wire = noise[0] + b"".join(
        encode_command(name, kwargs) + noise[i + 1] for i, (name, kwargs) in enumerate(commands)
    )
    connection = CommandConnection()
    got = [m for piece in split_points(wire, cut) for m in connection.feed(piece)]
    assert got == [Command(name.strip(), kwargs) for name, kwargs in commands]


@FUZZ
@given(
    good=st.lists(st.sampled_from(["UP", "STATUS", "GO"]), min_size=1, max_size=4),
    garbage=command_bytes,
)
def test_garbage_never_swallows_the_commands_after_it(good, garbage):
    """After any garbage and a `;`, well-formed commands are read as sent."""
    parser = CommandParser(max_message_bytes=128)
    parser.feed(garbage + b";")
    assert parser.feed(b"".join(encode_command(n) for n in good)) == [Command(n) for n in good]


@FUZZ
@given(depth=st.integers(min_value=1, max_value=20), wrap=st.sampled_from(["[", '{"a":']))
def test_nested_json_payload_parses_or_is_refused(depth, wrap):
    close = "]" if wrap == "[" else "}"
    payload = '{"x":' + wrap * depth + "1" + close * depth + "}"
    (message,) = CommandParser().feed(f"GO|{payload};".encode())
    assert message == Command("GO", json.loads(payload))


def test_deeply_nested_json_payload_is_refused_not_raised():
    messages = CommandParser().feed(b"GO|" + b"[" * 100_000 + b";UP;")
    assert isinstance(messages[0], BadMessage) and messages[0].name == "GO"
    assert "nested too deeply" in messages[0].error
    assert messages[1] == Command("UP")


# ---- log frames (dareplane_utils/logging/framing.py, records.py) --------------------------

frame_bytes = st.lists(
    st.one_of(
        st.binary(max_size=16),
        st.builds(lambda n: HEADER.pack(n), st.integers(min_value=0, max_value=40)),
        st.sampled_from([encode_payload(b'{"msg": "x"}'), encode_payload(b"[1]"), b"\x00\x00"]),
    ),
    max_size=20,
).map(b"".join)


@FUZZ
@given(data=frame_bytes, cut=cuts)
def test_frame_decoder_takes_any_bytes_and_ignores_how_they_are_split(data, cut):
    whole = FrameDecoder(max_frame_bytes=32).feed(data)
    decoder = FrameDecoder(max_frame_bytes=32)
    pieces = [e for piece in split_points(data, cut) for e in decoder.feed(piece)]
    assert pieces == whole
    assert all(isinstance(e, Frame | FrameError) for e in whole)
    errors = [i for i, e in enumerate(whole) if isinstance(e, FrameError)]
    # At most one error, always the last event; afterwards the decoder is spent.
    assert errors in ([], [len(whole) - 1])
    if errors:
        assert decoder.feed(encode_frame({"after": 1})) == []
        assert decoder.pending == 0
    else:
        assert decoder.pending <= HEADER.size + 32
    for event in whole:
        if isinstance(event, Frame):
            assert json.loads(event.payload) == event.obj


@FUZZ
@given(
    records=st.lists(st.dictionaries(st.text(max_size=10), json_values, max_size=6), max_size=6),
    cut=cuts,
)
def test_every_encoded_frame_comes_back_exactly(records, cut):
    wire = b"".join(encode_frame(r) for r in records)
    decoder = FrameDecoder()
    events = [e for piece in split_points(wire, cut) for e in decoder.feed(piece)]
    assert [e.obj for e in events] == records
    assert decoder.pending == 0


@FUZZ
@given(
    obj=st.dictionaries(
        st.sampled_from(
            [
                "msg",
                "args",
                "message",
                "levelname",
                "levelno",
                "created",
                "name",
                "host",
                "exc_info",
                "exc_text",
                "lineno",
            ]
        )
        | st.text(max_size=6),
        json_values,
        max_size=8,
    )
)
def test_any_json_object_normalizes_to_a_record(obj):
    """What the log server does with every frame's object: it must never raise."""
    record = normalize(obj, peer_host="10.0.0.1")
    assert isinstance(record["message"], str)
    assert isinstance(record["timestamp"], str) and record["timestamp"]
    assert "levelname" in record and "name" in record
    json.dumps(record, default=str)


# ---- UDP packets (modules/f1_udp, modules/telemetry_decoder/core.py) ----------------------

PACKET_KINDS = sorted(PACKET_SIZES)


def packet_like(kind: tuple[int, int], seed: int, size_change: int) -> bytes:
    """A datagram with a real (format, id) header and random body bytes, maybe mis-sized."""
    fmt, packet_id = kind
    size = max(0, PACKET_SIZES[kind] + size_change)
    data = bytearray(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    if size >= 7:
        data[0:2] = struct.pack("<H", fmt)
        data[6] = packet_id
    return bytes(data)


datagrams = st.one_of(
    st.binary(max_size=64),
    st.builds(
        packet_like,
        st.sampled_from(PACKET_KINDS),
        st.integers(min_value=0, max_value=2**32 - 1),
        st.sampled_from([0, 0, 0, 0, -1, 1, -29]),
    ),
)


@FUZZ
@given(
    kind=st.sampled_from(PACKET_KINDS), seed=st.integers(0, 2**32 - 1), change=st.integers(-40, 40)
)
def test_parse_packet_reads_right_sized_packets_and_refuses_the_rest(kind, seed, change):
    data = packet_like(kind, seed, change)
    try:
        packet = parse_packet(data)
    except (UnknownPacketError, ValueError) as error:
        assert change != 0 and str(error)
    else:
        assert change == 0 and packet.dtype.itemsize == len(data)


@FUZZ
@given(batches=st.lists(st.lists(datagrams, max_size=6), min_size=1, max_size=4))
def test_decoder_core_survives_any_datagrams_and_accounts_for_each(batches):
    core = DecoderCore(now=0.0)
    fed = 0
    for number, batch in enumerate(batches):
        publications = core.feed(
            [Datagram(d, ("10.0.0.9", 20777 + i % 2), float(number)) for i, d in enumerate(batch)]
        )
        fed += len(batch)
        for publication in publications:
            if publication.rows is not None:
                assert publication.rows.dtype == np.float64
                assert len(publication.rows) == len(publication.timestamps)
            else:
                assert publication.objects is not None
                assert len(publication.objects) == len(publication.timestamps)
                for obj in publication.objects:  # what goes onto a JSON stream must encode
                    json.dumps(obj, allow_nan=False)
            if publication.stream != NOTICES:
                assert publication.stream.startswith("raceplane.")
    # Every datagram is either published (counted by stream) or rejected (counted by reason).
    assert core.received == fed
    assert sum(core.packets.values()) + sum(core.rejects.values()) == fed
    status = core.status(now=10.0)
    json.dumps(status, allow_nan=False)
    report = core.reject_report(now=10.0)
    assert (report is None) == (not core.rejects)


# ---- capture files (modules/f1_udp/capture.py) --------------------------------------------

records = st.lists(
    st.tuples(st.floats(allow_nan=False, allow_infinity=False), st.binary(max_size=40)), max_size=8
)


@FUZZ
@given(records=records, cut=cuts)
def test_capture_records_come_back_exactly_however_read(records, cut):
    data = file_header() + b"".join(encode_record(t, p) for t, p in records)
    parser = CaptureParser()
    got = [d for piece in split_points(data, cut) for d in parser.feed(piece)]
    parser.close()
    assert [(d.time_s, d.payload) for d in got] == records


@FUZZ
@given(
    records=records,
    flips=st.lists(st.tuples(st.integers(0, 1 << 12), st.integers(0, 255)), max_size=4),
    cut_at=st.integers(min_value=0, max_value=1 << 12),
)
def test_damaged_capture_raises_capture_error_only_and_keeps_what_came_before(
    records, flips, cut_at
):
    data = bytearray(file_header() + b"".join(encode_record(t, p) for t, p in records))
    for position, value in flips:
        if data:
            data[position % len(data)] = value
    data = bytes(data[: cut_at % (len(data) + 1)])
    parser = CaptureParser()
    got = []
    try:
        got += parser.feed(data)
        parser.close()
    except CaptureError as error:
        assert str(error)
    # Whatever was returned is a complete, in-limit record.
    assert all(len(d.payload) <= 65535 for d in got)


@FUZZ
@given(data=st.binary(max_size=64))
def test_capture_parser_takes_any_bytes(data):
    parser = CaptureParser()
    try:
        parser.feed(data)
        parser.close()
    except CaptureError as error:
        assert str(error)


# ---- setup files (modules/control_room/setup.py) ------------------------------------------

DEMO_LINES = (REPO / "configs" / "demo.toml").read_text().splitlines()
toml_tokens = st.sampled_from(
    [
        '"x"',
        "0",
        "-1",
        "70000",
        "true",
        "[]",
        '["nope"]',
        "{}",
        "{ a = 1 }",
        "1.5",
        '"{laps}"',
        "[modules.x]",
        "kind",
        "=",
        "[[macros.start_race.steps]]",
        "port = 1",
        "\\",
        '"',
        "\x00",
    ]
)


@FUZZ
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, len(DEMO_LINES) - 1),
            st.sampled_from(["drop", "value", "add"]),
            toml_tokens,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_edited_setup_file_loads_or_raises_setup_error(edits):
    lines = list(DEMO_LINES)
    for line, action, token in edits:
        line %= len(lines)
        if action == "drop":
            del lines[line]
        elif action == "value" and "=" in lines[line]:
            lines[line] = lines[line].split("=", 1)[0] + "= " + token
        else:
            lines.insert(line, token)
        if not lines:
            lines = ["#"]
    text = "\n".join(lines)
    try:
        setup = parse_setup(text, REPO / "configs" / "fuzzed.toml")
    except SetupError as error:
        assert "fuzzed.toml" in str(error)
    else:
        # Accepted only if it is valid TOML with modules, all on valid ports.
        tomllib.loads(text)
        assert setup.modules and all(1 <= m.port <= 65535 for m in setup.modules.values())


@FUZZ
@given(text=st.text(max_size=200))
def test_any_text_as_setup_file_loads_or_raises_setup_error(text):
    try:
        parse_setup(text)
    except SetupError as error:
        assert "<setup>" in str(error)


# ---- XDF files (modules/recorder/loader.py) -----------------------------------------------


def small_xdf() -> bytes:
    info = (
        '<?xml version="1.0"?><info><name>raceplane.{n}</name><type>T</type>'
        "<channel_count>{c}</channel_count><channel_format>{f}</channel_format>"
        "<nominal_srate>{r}</nominal_srate><source_id>{n}@fuzz</source_id></info>"
    )
    encoder = XdfEncoder()
    out = encoder.file_header({"track": "Monza"})
    out += encoder.stream_header(1, info.format(n="lap_data", c=2, f="double64", r=60.0))
    stamps = np.arange(5) / 60.0 + 10.0
    out += encoder.samples(1, stamps, np.arange(10, dtype=float).reshape(5, 2))
    out += encoder.stream_header(2, info.format(n="laps", c=1, f="string", r=0))
    out += encoder.samples(2, stamps[:2], np.array([['{"lap": 1}'], ["ü"]], dtype=object))
    out += encoder.clock_offset(1, 11.0, -0.5) + encoder.boundary()
    out += encoder.stream_footer(1) + encoder.stream_footer(2)
    return out


XDF = small_xdf()


@FUZZ
@given(cut_at=st.integers(min_value=0, max_value=len(XDF)))
def test_xdf_cut_at_any_byte_loads_every_complete_chunk(cut_at):
    _header, streams, warnings, good_end = parse_xdf(XDF[:cut_at])
    assert good_end <= cut_at
    full = {s.name: len(s) for s in parse_xdf(XDF)[1]}
    for stream in streams:
        assert len(stream) <= full[stream.name]
    if cut_at == len(XDF):
        assert warnings == [] and {s.name: len(s) for s in streams} == full
    elif cut_at > 0:
        # A cut inside a chunk says so; a cut between chunks looks like a file without footers.
        assert bool(warnings) == (good_end < cut_at)


@FUZZ
@given(
    flips=st.lists(
        st.tuples(st.integers(0, len(XDF) - 1), st.integers(0, 255)), min_size=1, max_size=6
    )
)
def test_xdf_with_damaged_bytes_loads_or_raises_xdf_error(flips):
    data = bytearray(XDF)
    for position, value in flips:
        data[position] = value
    try:
        _, streams, _warnings, _ = parse_xdf(bytes(data))
    except XdfError as error:
        assert data[:4] != b"XDF:" and str(error)
    else:  # damage may leave no stream at all: that loads too
        assert all(len(s.time_stamps) == len(s.time_series) for s in streams)


def test_xdf_sample_count_larger_than_its_chunk_is_a_warning():
    encoder = XdfEncoder()
    info = (
        '<?xml version="1.0"?><info><name>a</name><type>T</type><channel_count>1</channel_count>'
        "<channel_format>double64</channel_format><nominal_srate>0</nominal_srate></info>"
    )
    data = encoder.file_header() + encoder.stream_header(1, info)
    data += chunk(SAMPLES, struct.pack("<I", 1) + varlen(1 << 40) + b"\x08" + bytes(16))
    _, _, warnings, _ = parse_xdf(data)
    assert warnings

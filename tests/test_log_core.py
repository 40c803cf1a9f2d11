"""The logging parts without I/O: the frame decoder, record normalization, filters, rendering."""

from __future__ import annotations

import json
import logging
import re
import struct
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dareplane_utils.logging.display import RecordFilter, parse_time, render
from dareplane_utils.logging.framing import (
    Frame,
    FrameDecoder,
    FrameError,
    encode_frame,
    encode_payload,
)
from dareplane_utils.logging.records import format_message, normalize


def frames_of(events: list) -> list[dict]:
    assert all(isinstance(event, Frame) for event in events), events
    return [event.obj for event in events]


# -- framing -------------------------------------------------------------------------------------


@given(
    st.lists(
        st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=20)), max_size=8
    ),
    st.lists(st.integers(min_value=1, max_value=64), max_size=30),
)
def test_frames_survive_any_split_of_the_byte_stream(objects, cuts):
    stream = b"".join(encode_frame(obj) for obj in objects)
    decoder = FrameDecoder()
    decoded, position = [], 0
    for cut in [*cuts, len(stream)]:
        decoded += frames_of(decoder.feed(stream[position : position + cut]))
        position += cut
    decoded += frames_of(decoder.feed(stream[position:]))
    assert decoded == objects
    assert decoder.pending == 0


def test_integers_of_any_size_decode_exactly():
    objects = [{"uid": 2**64}, {"uid": -(2**63) - 1}, {"big": 10**30, "pi": 3.14}, {"n": 2**63}]
    assert frames_of(FrameDecoder().feed(b"".join(map(encode_frame, objects)))) == objects


def test_over_long_length_fails_at_once_without_waiting_for_the_bytes():
    decoder = FrameDecoder(max_frame_bytes=1000)
    events = decoder.feed(encode_frame({"a": 1}) + struct.pack(">L", 0xFFFFFFFF) + b"{")
    assert isinstance(events[0], Frame) and events[0].obj == {"a": 1}
    assert isinstance(events[1], FrameError) and "4294967295" in events[1].reason
    assert decoder.feed(encode_frame({"b": 2})) == []  # spent: the connection is to be closed


def test_bad_payloads_say_what_was_wrong():
    cases = {
        b"\xff\xfe{}": "not UTF-8",
        b'{"a": ': "not JSON",
        b"[1, 2]": "list, not an object",
        b'"text"': "str, not an object",
        b"[" * 100_000: "not JSON",  # nesting deep enough to exhaust the recursion limit
    }
    for payload, reason in cases.items():
        (event,) = FrameDecoder().feed(encode_payload(payload))
        assert isinstance(event, FrameError) and reason in event.reason, (payload[:10], event)


# -- records -------------------------------------------------------------------------------------


def test_format_message_follows_logrecord_rules():
    assert format_message("lap %s of %d", ["three", 3]) == ("lap three of 3", None)
    assert format_message("%(a)s/%(b)d", {"a": "x", "b": 2}) == ("x/2", None)
    assert format_message("100% done", []) == ("100% done", None)  # no args: no formatting
    assert format_message("100% done", "()") == ("100% done", None)
    # dareplane-utils' str() fallback sends args as the repr of a tuple
    assert format_message("lap %s of %d", "('three', 3)") == ("lap three of 3", None)


def test_format_errors_keep_the_record_and_say_why():
    message, error = format_message("lap %d", ["x"])
    assert "lap %d" in message and "'x'" in message
    assert error.startswith("TypeError")
    message, error = format_message("%s %s", ["one"])
    assert "one" in message and "not enough arguments" in error
    message, error = format_message("%999999999s", [1])
    assert len(message) < 100 and "huge" in error
    message, error = format_message("%s", "(<object at 0x1>,)")  # not a literal: kept as text
    assert message == "(<object at 0x1>,)" and error is None


def test_raw_logrecord_becomes_a_raceplane_record():
    raw = logging.makeLogRecord(
        {"name": "dp", "msg": "lap %s", "args": ("3",), "levelname": "WARNING", "levelno": 30}
    ).__dict__
    raw = json.loads(json.dumps({**raw, "args": list(raw["args"]), "car": 7}))
    record = normalize(raw, peer_host="10.0.0.5")
    assert record["message"] == "lap 3"
    assert record["levelname"] == "WARNING"
    assert record["host"] == "10.0.0.5"
    assert record["car"] == 7
    assert "msg" not in record and "args" not in record and "created" not in record
    created = datetime.fromtimestamp(raw["created"], tz=UTC)
    assert datetime.fromisoformat(record["timestamp"]) == created


def test_raw_record_after_the_str_fallback():
    # What dareplane-utils sends when a value (exc_info) is not JSON: every non-int is text.
    raw = {
        "name": "dp",
        "msg": "failed at %s",
        "args": "('turn 3',)",
        "levelname": "ERROR",
        "created": "1713889360.199748",
        "exc_info": "(<class 'KeyError'>, KeyError('x'), <traceback object at 0x1>)",
        "exc_text": "Traceback (most recent call last):\nKeyError: 'x'",
        "stack_info": "None",
        "process": 57978,
    }
    record = normalize(raw)
    assert record["message"] == "failed at turn 3"
    assert record["exc_info"].endswith("KeyError: 'x'")
    assert "stack_info" not in record
    assert record["timestamp"].startswith("2024-04-23T16:22:40.199748")


@pytest.mark.parametrize("created", [1e20, -1e20, 253402300800.0, float("nan"), "inf"])
def test_a_raw_record_from_beyond_the_calendar_keeps_its_message(created):
    before = datetime.now(UTC)
    record = normalize({"name": "dp", "msg": "lap %d", "args": [4], "created": created})
    assert record["message"] == "lap 4"
    assert before <= datetime.fromisoformat(record["timestamp"]) <= datetime.now(UTC)
    assert str(record["created"]) == str(created)  # the unusable value is kept, not lost


def test_our_records_pass_through_and_gaps_are_filled():
    ours = {"timestamp": "2026-01-01T00:00:00+00:00", "name": "a", "levelname": "INFO"}
    record = normalize({**ours, "message": 5, "host": ""}, peer_host="h")
    assert record == {**ours, "message": "5", "host": "h"}


# -- viewer core ---------------------------------------------------------------------------------

RECORDS = [
    {"timestamp": "2026-01-01T10:00:00+00:00", "name": "lap_timer", "levelname": "INFO",
     "message": "lap 3 done", "process": 1, "host": "h"},
    {"timestamp": "2026-01-01T10:05:00+00:00", "name": "lap_timer.db", "levelname": "ERROR",
     "message": "write failed", "exc_info": "Traceback...\nOSError: disk full", "process": 1},
    {"timestamp": "2026-01-01T10:10:00+00:00", "name": "recorder", "levelname": "WARNING",
     "message": "stream lost", "stream": "raceplane.motion", "process": 2},
]  # fmt: skip


def names(record_filter: RecordFilter) -> list[str]:
    return [record["message"] for record in RECORDS if record_filter.matches(record)]


def test_filters():
    assert names(RecordFilter()) == ["lap 3 done", "write failed", "stream lost"]
    assert names(RecordFilter(modules=["lap_timer"])) == ["lap 3 done", "write failed"]
    assert names(RecordFilter(modules=["lap"])) == []  # a module, not a prefix of letters
    assert names(RecordFilter(min_level=logging.WARNING)) == ["write failed", "stream lost"]
    since = parse_time("2026-01-01T10:01:00")
    until = parse_time("2026-01-01T10:06:00+00:00")
    assert names(RecordFilter(since=since, until=until)) == ["write failed"]
    assert names(RecordFilter(pattern=re.compile("disk"))) == ["write failed"]  # in traceback
    assert names(RecordFilter(pattern=re.compile(r"lap \d"))) == ["lap 3 done"]


def test_parse_time_ages():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_time("10m", now) == datetime(2026, 1, 1, 11, 50, tzinfo=UTC)
    assert parse_time("2h", now) == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def test_render_shows_extras_and_the_whole_traceback():
    text = render(RECORDS[1], color=False)
    assert text.splitlines()[0].endswith("ERROR    lap_timer.db[1]: write failed")
    assert text.splitlines()[1:] == ["    Traceback...", "    OSError: disk full"]
    assert "stream=raceplane.motion" in render(RECORDS[2], color=False)
    assert "\x1b[" not in render(RECORDS[2], color=False)
    assert "\x1b[33m" in render(RECORDS[2], color=True)  # warnings in yellow


def test_stderr_level_filters_only_the_terminal_lines(tmp_path):
    code = (
        "import logging\n"
        "from dareplane_utils.logging.logger import get_logger\n"
        "log = get_logger('quiet', stderr_level=logging.WARNING)\n"
        "log.info('routine detail')\n"
        "log.warning('needs a look')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "needs a look" in done.stderr
    assert "routine detail" not in done.stderr

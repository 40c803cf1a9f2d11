"""The command protocol without sockets: bytes in, messages out; replies as bytes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dareplane_utils.default_server.protocol import (
    BadMessage,
    Command,
    CommandConnection,
    CommandParser,
    encode_command,
    json_error,
    json_ok,
    legacy_reply,
    parse_message,
)


def feed_all(data: bytes, parser: CommandParser | None = None) -> list:
    return (parser or CommandParser()).feed(data)


def test_bare_command_and_command_with_payload():
    assert feed_all(b'UP;START|{"laps": 3, "name": "x"};') == [
        Command("UP"),
        Command("START", {"laps": 3, "name": "x"}),
    ]


def test_empty_segments_whitespace_and_crlf_are_ignored():
    assert feed_all(b';;  UP \r\n;\r\n;STOP|;  GO | {"a": 1} ;') == [
        Command("UP"),
        Command("STOP"),
        Command("GO", {"a": 1}),
    ]


def test_bytes_without_semicolon_wait_for_the_rest():
    parser = CommandParser()
    assert parser.feed(b'START|{"la') == []
    assert parser.pending_bytes == len(b'START|{"la')
    assert parser.feed(b'ps": 2}') == []
    assert parser.feed(b";UP") == [Command("START", {"laps": 2})]
    assert parser.feed(b";") == [Command("UP")]
    assert parser.pending_bytes == 0


@given(st.lists(st.integers(min_value=0, max_value=60), max_size=8))
def test_any_split_of_the_stream_gives_the_same_messages(cuts):
    stream = b'UP;GO|{"a": [1, 2]};;BAD|[1];X|{"s": "\xc3\xa9"};\xff;GET_PCOMMS;'
    whole = feed_all(stream)
    parser = CommandParser()
    pieces, start = [], 0
    for cut in sorted(cuts):
        pieces.append(stream[start:cut])
        start = max(start, cut)
    pieces.append(stream[start:])
    assert [m for piece in pieces for m in parser.feed(piece)] == whole
    assert len(whole) == 6


def test_unicode_payload():
    assert parse_message('SAY|{"text": "Grüße 🏁"}'.encode()) == Command(
        "SAY", {"text": "Grüße 🏁"}
    )


def test_invalid_json_is_a_bad_message_naming_the_command():
    message = parse_message(b"GO|{bad")
    assert isinstance(message, BadMessage)
    assert message.name == "GO"
    assert "invalid JSON payload for GO" in message.error


@pytest.mark.parametrize(
    ("payload", "kind"), [("[1, 2]", "array"), ('"x"', "string"), ("3", "number")]
)
def test_payload_that_is_not_an_object_is_refused(payload, kind):
    message = parse_message(f"GO|{payload}".encode())
    assert message == BadMessage(
        "GO", f"payload of GO must be a JSON object of keyword arguments, not a JSON {kind}"
    )


def test_more_than_one_bar_is_refused():
    message = parse_message(b'GO|{"a": 1}|{"b": 2}')
    assert isinstance(message, BadMessage)
    assert "more than one '|'" in message.error


def test_bar_inside_a_json_string_is_fine():
    assert parse_message(b'GO|{"a": "x|y"}') == Command("GO", {"a": "x|y"})


def test_missing_name_is_refused():
    message = parse_message(b'|{"a": 1}')
    assert isinstance(message, BadMessage)
    assert "no command name" in message.error


def test_non_utf8_bytes_are_refused_with_their_position():
    assert feed_all(b"UP\xfe\xff;UP;") == [
        BadMessage(None, "message is not valid UTF-8 (byte 0xfe at offset 2)"),
        Command("UP"),
    ]


def test_ten_megabytes_without_semicolon_is_one_error_and_nothing_of_it_survives():
    parser = CommandParser(max_message_bytes=1024 * 1024)
    chunk = b"A" * 65536
    messages = []
    for _ in range(160):  # 10 MiB, fed as a socket would
        messages += parser.feed(chunk)
    assert messages == [
        BadMessage(None, "message longer than 1048576 bytes: dropped up to its ';'")
    ]
    assert parser.pending_bytes == 0
    # The tail of the long message ends at the next ';' and is dropped with it.
    assert parser.feed(b"AAAA;UP;") == [Command("UP")]


def test_over_long_message_arriving_whole_is_refused_too():
    parser = CommandParser(max_message_bytes=100)
    assert parser.feed(b"X" * 101 + b";UP;") == [
        BadMessage(None, "message longer than 100 bytes: dropped up to its ';'"),
        Command("UP"),
    ]
    assert parser.feed(b"Y" * 100 + b";") == [Command("Y" * 100)]


def test_message_exactly_at_the_limit_is_accepted():
    parser = CommandParser(max_message_bytes=10)
    assert parser.feed(b"ABCDEFGHIJ") == []
    assert parser.feed(b";") == [Command("ABCDEFGHIJ")]


def test_connection_starts_in_legacy_mode():
    connection = CommandConnection()
    assert not connection.json_mode
    assert connection.reply("UP", 1) == connection.up_reply == b"1"
    assert connection.reply("GET_PCOMMS", ["A", "STOP", "UP"]) == b"A|STOP|UP"
    assert connection.reply("START", {"x": 1}) == b""
    assert connection.error("START", "nope") == b""


def test_hello_switches_to_one_json_line_per_command():
    connection = CommandConnection()
    assert connection.hello({"protocol": 2}) is None
    assert connection.json_mode
    assert json.loads(connection.reply("UP", 1)) == {"ok": True, "cmd": "UP", "result": 1}
    assert connection.up_reply == connection.reply("UP", 1)
    line = connection.error("GO", "bad lap")
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"ok": False, "cmd": "GO", "error": "bad lap"}


def test_hello_with_another_protocol_is_refused_and_stays_legacy():
    connection = CommandConnection()
    assert connection.hello({"protocol": 3}) == "unsupported protocol 3: this server speaks 2"
    assert not connection.json_mode


def test_result_json_cannot_carry_becomes_an_error_line():
    line = json.loads(json_ok("GO", {"t": float("nan")}))
    assert line["ok"] is False and "cannot be sent as JSON" in line["error"]
    line = json.loads(json_ok("GO", object()))
    assert line["ok"] is False and "cannot be sent as JSON" in line["error"]


def test_reply_lines_never_contain_a_line_break_inside():
    line = json_ok("GO", {"text": "two\nlines"})
    assert line.count(b"\n") == 1 and json.loads(line)["result"] == {"text": "two\nlines"}
    assert json_error(None, "x\ny").count(b"\n") == 1


def test_legacy_reply_matches_dareplane():
    assert legacy_reply("UP", 1) == b"1"
    assert legacy_reply("GET_PCOMMS", ["GO", "STOP", "CLOSE", "GET_PCOMMS", "UP"]) == (
        b"GO|STOP|CLOSE|GET_PCOMMS|UP"
    )
    assert legacy_reply("STOP", None) == b""


def test_encode_command_round_trips_even_with_semicolons_and_bars():
    kwargs = {"path": "a;b|c", "n": [1, 2.5, None], "ok": True}
    wire = encode_command("SAVE", kwargs)
    assert wire.count(b";") == 1 and wire.count(b"|") == 1
    assert feed_all(wire) == [Command("SAVE", kwargs)]
    assert encode_command("UP") == b"UP;"


@pytest.mark.parametrize("name", ["", "A;B", "A|B", " UP"])
def test_encode_command_refuses_names_the_wire_cannot_carry(name):
    with pytest.raises(ValueError, match="invalid command name"):
        encode_command(name)

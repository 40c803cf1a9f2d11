"""The live timing parts without sockets: SignalR framing, topic decoding, files, the session."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from modules.lap_timer.inputs import Inputs
from modules.lap_timer.store import Store
from modules.lap_timer.timer import LapTimer
from modules.livetiming import signalr
from modules.livetiming.savefile import Message, SaveWriter, merge_files, parse_line
from modules.livetiming.state import (
    CAR_STATUS,
    CAR_TELEMETRY,
    CLASSIFICATION,
    EVENTS,
    LAP_DATA,
    LIVETIMING,
    MOTION,
    PARTICIPANTS,
    SESSION,
    LiveSession,
)
from modules.livetiming.topics import (
    TopicError,
    decode,
    encode_z,
    format_timestamp,
    merge,
    parse_timestamp,
    time_ms,
)
from modules.stream_catalogue import STREAMS
from tests.livetiming_server import synthetic_race

RS = signalr.RS


# ----------------------------------------------------------------------- SignalR protocol


def test_handshake_then_messages_split_anywhere():
    protocol = signalr.HubProtocol()
    assert json.loads(protocol.handshake_request()[:-1]) == {"protocol": "json", "version": 1}
    text = (
        "{}"
        + RS
        + json.dumps({"type": 1, "target": "feed", "arguments": ["A", {"x": 1}, "t"]})
        + RS
        + json.dumps({"type": 6})
        + RS
        + json.dumps({"type": 3, "invocationId": "1", "result": {"A": {}}})
        + RS
    )
    events = []
    for i in range(0, len(text), 7):  # any split of the stream gives the same events
        events += protocol.feed(text[i : i + 7])
    assert events == [
        signalr.HandshakeDone(),
        signalr.Invocation("feed", ["A", {"x": 1}, "t"], None),
        signalr.Ping(),
        signalr.Completion("1", {"A": {}}, None),
    ]


def test_handshake_refused():
    protocol = signalr.HubProtocol()
    assert protocol.feed('{"error": "nope"}' + RS) == [signalr.HandshakeFailed("nope")]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"type": 42}', "unknown message type"),
        ('{"type": 1, "target": 5, "arguments": []}', "string target"),
        ('{"type": 3}', "malformed"),
    ],
)
def test_bad_messages_are_reported_and_the_next_one_is_read(text, reason):
    protocol = signalr.HubProtocol()
    protocol.feed("{}" + RS)
    events = protocol.feed(text + RS + '{"type": 6}' + RS)
    assert isinstance(events[0], signalr.BadMessage) and reason in events[0].reason
    assert events[1:] == [signalr.Ping()]


def test_over_long_message_is_dropped_up_to_its_separator():
    protocol = signalr.HubProtocol(max_message_chars=100)
    protocol.feed("{}" + RS)
    events = protocol.feed("x" * 150)
    assert isinstance(events[0], signalr.BadMessage) and "longer" in events[0].reason
    assert protocol.feed("y" * 500) == []  # still inside the long message
    assert protocol.feed("tail" + RS + '{"type": 6}' + RS) == [signalr.Ping()]


def test_invocation_ids_count_up_and_binary_garbage_is_reported():
    protocol = signalr.HubProtocol()
    first, text = protocol.invoke("Subscribe", [["A", "B"]])
    second, _ = protocol.invoke("Subscribe", [["C"]])
    assert (first, second) == ("1", "2")
    assert json.loads(text[:-1]) == {
        "type": 1,
        "invocationId": "1",
        "target": "Subscribe",
        "arguments": [["A", "B"]],
    }
    assert isinstance(protocol.feed(b"\xff\xfe\x00")[0], signalr.BadMessage)


# ----------------------------------------------------------------------- topics


def test_z_topics_are_raw_deflate_in_base64():
    value = {"Entries": [{"Utc": "2024-03-02T15:00:00Z", "Cars": {"1": {"Channels": {"2": 300}}}}]}
    text = encode_z(value)
    assert decode("CarData.z", text) == value
    assert decode("TimingData", {"a": 1}) == {"a": 1}
    for bad in ("%%%not base64", "aGVsbG8=", 17):
        with pytest.raises(TopicError, match=r"CarData\.z"):
            decode("CarData.z", bad)


def test_merge_applies_list_changes_by_index_and_deletions():
    state = {"Lines": {"1": {"Sectors": [{"Value": "28.1"}, {"Value": ""}]}}, "Gone": 1}
    merge(state, {"Lines": {"1": {"Sectors": {"1": {"Value": "38.2"}, "2": {"Value": "23.0"}}}}})
    merge(state, {"_deleted": ["Gone"]})
    assert state == {
        "Lines": {"1": {"Sectors": [{"Value": "28.1"}, {"Value": "38.2"}, {"Value": "23.0"}]}}
    }


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1:32.456", 92456), ("28.123", 28123), ("+1.234", 1234), ("1 L", None), ("", None)],
)
def test_times(text, ms):
    assert time_ms(text) == ms


def test_timestamps_with_seven_fraction_digits():
    moment = parse_timestamp("2024-03-02T15:03:41.8372155Z")
    assert moment == datetime(2024, 3, 2, 15, 3, 41, 837215, tzinfo=UTC)
    assert parse_timestamp(format_timestamp(moment)) == moment


# ----------------------------------------------------------------------- files


def test_lines_in_fastf1_form_read_back_including_apostrophes(tmp_path):
    writer = SaveWriter(tmp_path / "a.txt")
    writer.write_state({"DriverList": {"1": {"FullName": "Max O'NEIL"}}})
    writer.write_feed("TimingData", {"Lines": {"1": {"InPit": True}}}, "2024-03-02T15:00:01.5Z")
    writer.close()
    lines = (tmp_path / "a.txt").read_text().splitlines()
    assert lines[1] == "['TimingData', {'Lines': {'1': {'InPit': True}}}, '2024-03-02T15:00:01.5Z']"
    state, change = (parse_line(line) for line in lines)
    assert state.is_state and state.topic == "DriverList"
    assert state.data == {"1": {"FullName": "Max O'NEIL"}}
    assert change.data == {"Lines": {"1": {"InPit": True}}}
    assert change.time == datetime(2024, 3, 2, 15, 0, 1, 500000, tzinfo=UTC)


def test_bad_lines_are_counted_and_the_rest_is_kept(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text(
        "['A', {'x': 1}, '2024-03-02T15:00:00Z']\n"
        "garbage\n"
        "['A', {'x': 2}]\n"
        "['A', {'x': 3}, 'not a time']\n"
        "['A', {'x': 4}, '2024-03-02T15:00:01Z']\n"
    )
    reports = []
    messages = merge_files([path], reports)
    assert [m.data["x"] for m in messages] == [1, 4]
    assert (reports[0].lines, reports[0].bad_lines) == (5, 3)
    assert "line 2" in reports[0].first_error


def _write(path, start, count, state=None, first=0):
    writer = SaveWriter(path)
    if state:
        writer.write_state(state)
    for i in range(first, first + count):
        stamp = format_timestamp(start + timedelta(seconds=i))
        writer.write_feed("Heartbeat", {"n": i}, stamp)
    writer.close()


def test_several_files_in_time_order_overlaps_taken_once(tmp_path):
    t0 = datetime(2024, 3, 2, 15, 0, tzinfo=UTC)
    _write(tmp_path / "b.txt", t0, 10, state={"Heartbeat": {"n": -1}}, first=6)  # overlaps a
    _write(tmp_path / "a.txt", t0, 8, state={"Heartbeat": {"n": -1}})
    _write(tmp_path / "c.txt", t0, 3, state={"Heartbeat": {"n": 99}}, first=30)  # after a gap
    reports = []
    messages = merge_files([tmp_path / "c.txt", tmp_path / "b.txt", tmp_path / "a.txt"], reports)
    numbers = [m.data["n"] for m in messages]
    # a's state, 0..15 once, then c's state (it brings the state up to date after the gap).
    assert numbers == [-1, *range(16), 99, 30, 31, 32]
    by_name = {r.path.name: r for r in reports}
    assert by_name["b.txt"].overlapping == 3  # its state line and messages 6 and 7
    assert by_name["c.txt"].overlapping == 0


# ----------------------------------------------------------------------- the session


def _samples(race):
    session = LiveSession()
    t0 = parse_timestamp(race.feed[0][2])
    out = []
    for topic, data in race.state.items():
        out += session.feed(Message(topic, data, t0, "", is_state=True))
    for topic, data, stamp in race.feed:
        out += session.feed(Message(topic, data, parse_timestamp(stamp), ""))
    return session, out


def test_samples_fit_the_catalogue_layouts():
    race = synthetic_race()
    session, samples = _samples(race)
    streams = {s.stream for s in samples}
    assert {
        LIVETIMING,
        SESSION,
        PARTICIPANTS,
        LAP_DATA,
        CAR_STATUS,
        CAR_TELEMETRY,
        MOTION,
    } <= streams
    for sample in samples:
        if isinstance(sample.value, np.ndarray):
            assert sample.value.shape == (len(STREAMS[sample.stream].channels),)
    labels = [c.label for c in STREAMS[CAR_TELEMETRY].channels]
    row = next(s.value for s in samples if s.stream == CAR_TELEMETRY)
    car = session.drivers["1"].slot
    assert row[labels.index(f"car{car:02d}.speed_kph")] == 250
    assert row[labels.index(f"car{car:02d}.throttle")] == 1.0
    assert row[labels.index("car21.speed_kph")] == 0  # an empty slot is zeros
    assert np.isnan(row[labels.index(f"car{car:02d}.steer")])  # the feed has no steering
    motion = [c.label for c in STREAMS[MOTION].channels]
    position = next(s.value for s in samples if s.stream == MOTION)
    assert position[motion.index(f"car{car:02d}.world_position_x_m")] == 100.0
    assert position[motion.index(f"car{car:02d}.world_position_y_m")] == 3.0  # height
    session_json = next(s.value for s in samples if s.stream == SESSION)
    assert session_json["track_name"] == "Sakhir" and session_json["session_type"] == 15
    assert session_json["header"]["session_uid"] == str(1229 << 32 | 9472)
    raw = [s.value for s in samples if s.stream == LIVETIMING]
    assert len(raw) == len(race.state) + len(race.feed)
    assert any(r["topic"] == "CarData.z" and isinstance(r["data"], dict) for r in raw)


def test_a_session_gives_the_lap_timer_its_laps_and_standings(tmp_path):
    """The lap timer, fed the samples as its feed would, finds every lap the race had."""
    race = synthetic_race()
    _, samples = _samples(race)
    timer = LapTimer(Store(tmp_path / "laps.sqlite3"))
    inputs = Inputs(timer)
    for name in (LAP_DATA, CAR_STATUS):
        inputs.set_channels(name, [c.label for c in STREAMS[name].channels])
    batch = [(s.stream, s.value) for s in samples if s.stream in inputs._handlers]
    assert inputs.handle_batch(batch) == []
    laps = timer.get_laps()
    got = {(lap["driver"], lap["lap"], lap["lap_time_ms"], tuple(lap["sector_ms"])) for lap in laps}
    want = {
        (race.names[number], lap, time, sectors)
        for number, entries in race.laps.items()
        for lap, time, sectors in entries
    }
    assert got == want
    pit = {
        (lap["driver"], lap["lap"]): (lap["pit_in"], lap["pit_out"], lap["tyre"]) for lap in laps
    }
    assert pit[("Charles LECLERC", 2)] == (True, False, "soft")
    assert pit[("Charles LECLERC", 3)] == (False, True, "hard")
    table = timer.get_standings()
    assert table["track"] == "Sakhir" and table["session_type"] == "Race"
    assert [row["driver"] for row in table["rows"]] == [race.names[n] for n in race.final_order]
    assert all(row["laps"] == 3 and row["status"] == "finished" for row in table["rows"])


def test_laps_go_out_timed_by_the_feed_and_lap_data_never_carries_a_lap_time():
    t0 = datetime(2024, 3, 2, 15, tzinfo=UTC)
    session = LiveSession()
    labels = [c.label for c in STREAMS[LAP_DATA].channels]

    def feed(seconds, data):
        samples = session.feed(Message("TimingData", data, t0 + timedelta(seconds=seconds), ""))
        row = next(s.value for s in samples if s.stream == LAP_DATA)
        laps = [s.value for s in samples if s.stream == EVENTS and s.value["code"] == "FLAP"]
        lap = {k: row[labels.index(f"car00.{k}")] for k in ("current_lap_num", "last_lap_time_ms")}
        return lap, laps

    assert feed(0, {"Lines": {"1": {"NumberOfLaps": 0}}})[0]["current_lap_num"] == 1
    # Lap 1 of a race has no time in the feed: it ends untimed.
    assert feed(90, {"Lines": {"1": {"NumberOfLaps": 1}}}) == (
        {"current_lap_num": 2, "last_lap_time_ms": 0},
        [],
    )
    feed(120, {"Lines": {"1": {"Sectors": {"0": {"Value": "28.5"}}}}})
    feed(150, {"Lines": {"1": {"Sectors": {"1": {"Value": "31.5"}}}}})
    # Lap 2: the count comes first, its time and sector 3 a message later each.
    assert feed(180, {"Lines": {"1": {"NumberOfLaps": 2}}})[1] == []
    assert feed(181, {"Lines": {"1": {"LastLapTime": {"Value": "1:31.002"}}}})[1] == []
    row, laps = feed(182, {"Lines": {"1": {"Sectors": {"2": {"Value": "31.002"}}}}})
    assert row == {"current_lap_num": 3, "last_lap_time_ms": 0}
    assert [(e["vehicle_idx"], e["lap"], e["lap_time_ms"], e["sector_ms"]) for e in laps] == [
        (0, 2, 91002, [28500, 31500, 31002])
    ]


def test_garbage_topic_data_is_refused_with_its_topic():
    session = LiveSession()
    t0 = datetime(2024, 3, 2, 15, tzinfo=UTC)
    with pytest.raises(TopicError, match=r"Position\.z"):
        session.feed(Message("Position.z", "!!!", t0, ""))
    # Odd shapes give nothing rather than failing the session.
    assert [s.stream for s in session.feed(Message("TimingData", {"Lines": 5}, t0, ""))] == [
        LIVETIMING
    ]
    samples = session.feed(Message("CarData.z", encode_z({"Entries": "x"}), t0, ""))
    assert [s.stream for s in samples] == [LIVETIMING]


@pytest.mark.parametrize(
    "data",
    [
        {"Message": "True north; False start; None left", "Flag": None, "Ok": True},
        {"Name": "Pato O'WARD", "Note": 'say "hi"'},
        {"Path": "a\\b", "Tab": "a\tb", "Text": "Pérez"},
        {"n": [1, 2.5, -3e-05, {"x": False}]},
        {"None": "True", "Nonesuch": [None, True, "False"], "Falsey": "it is None"},
        {"NoKeyword": ["a", 1, {"b": 2}]},
    ],
)
def test_every_python_literal_line_reads_back_exactly(data):
    line = str(["RaceControlMessages", data, "2024-03-02T15:00:00Z"])
    assert parse_line(line).data == data


def test_the_session_identity_is_taken_first_from_a_subscribe_reply(tmp_path):
    race = synthetic_race()
    state = dict(reversed(list(race.state.items())))  # TimingData before SessionInfo
    writer = SaveWriter(tmp_path / "a.txt")
    writer.write_state(state)
    writer.write_feed(*race.feed[0])
    writer.close()
    session = LiveSession()
    uids = {
        sample.value["header"]["session_uid"]
        for message in merge_files([tmp_path / "a.txt"])
        for sample in session.feed(message)
        if isinstance(sample.value, dict) and "header" in sample.value
    }
    assert uids == {str(1229 << 32 | 9472)}
    assert session.session_uid() == 1229 << 32 | 9472


def test_track_status_weather_race_control_and_qualifying_gaps_reach_the_streams():
    t0 = datetime(2024, 3, 2, 15, tzinfo=UTC)
    session = LiveSession()
    labels = [c.label for c in STREAMS[LAP_DATA].channels]

    def feed(seconds, topic, data):
        return session.feed(Message(topic, data, t0 + timedelta(seconds=seconds), ""))

    def of(samples, stream):
        return [s.value for s in samples if s.stream == stream]

    feed(0, "SessionInfo", {"Meeting": {"Key": 1}, "Key": 2, "Name": "Qualifying"})
    feed(1, "TimingData", {"SessionPart": 2, "Lines": {"1": {"Line": 1}}})
    (info,) = of(
        feed(2, "WeatherData", {"AirTemp": "21.5", "TrackTemp": "35.0", "Rainfall": "1"}), SESSION
    )
    assert info["session_type_name"] == "Qualifying Q2" and info["session_part"] == 2
    assert (info["weather_name"], info["air_temperature_c"], info["track_temperature_c"]) == (
        "rain",
        21.5,
        35.0,
    )
    samples = feed(3, "TrackStatus", {"Status": "4", "Message": "SCDeployed"})
    (info,) = of(samples, SESSION)
    assert info["safety_car_status_name"] == "full" and info["track_status"] == "safety car"
    assert [(e["code"], e["safety_car_type"], e["event_type"]) for e in of(samples, EVENTS)] == [
        ("SCAR", 1, 0)
    ]
    samples = feed(4, "TrackStatus", {"Status": "2", "Message": "Yellow"})
    assert of(samples, SESSION)[0]["marshal_zones"] == [{"zone_flag": 3}]
    assert [(e["code"], e["event_type"]) for e in of(samples, EVENTS)] == [("SCAR", 2)]
    samples = feed(
        5,
        "RaceControlMessages",
        {
            "Messages": [
                {"Category": "Flag", "Flag": "YELLOW", "Message": "YELLOW IN TRACK SECTOR 4"}
            ]
        },
    )
    assert [(e["code"], e["name"], e["flag"]) for e in of(samples, EVENTS)] == [
        ("RCMS", "YELLOW IN TRACK SECTOR 4", "YELLOW")
    ]
    samples = feed(
        6,
        "TimingData",
        {
            "Lines": {
                "1": {
                    "Stats": {
                        "1": {"TimeDiffToFastest": "+0.530", "TimeDifftoPositionAhead": "+0.120"}
                    }
                }
            }
        },
    )
    (row,) = of(samples, LAP_DATA)
    assert row[labels.index("car00.delta_to_race_leader_ms")] == 530
    assert row[labels.index("car00.delta_to_car_in_front_ms")] == 120


def test_statuses_follow_the_feed_and_the_classification_comes_when_the_session_is_final():
    t0 = datetime(2024, 3, 2, 15, tzinfo=UTC)
    session = LiveSession()
    labels = [c.label for c in STREAMS[LAP_DATA].channels]

    def feed(seconds, topic, data):
        return session.feed(Message(topic, data, t0 + timedelta(seconds=seconds), ""))

    def status(samples, car):
        (row,) = [s.value for s in samples if s.stream == LAP_DATA]
        return row[labels.index(f"car{car:02d}.result_status")]

    feed(
        0, "DriverList", {n: {"Line": i, "FullName": n} for i, n in enumerate(["1", "2", "3", "4"])}
    )
    lines = {"1": {"Line": 1, "NumberOfLaps": 5}, "2": {"Line": 2, "NumberOfLaps": 5}}
    lines |= {"3": {"Line": 3, "NumberOfLaps": 2}, "4": {"Line": 4}}
    feed(1, "TimingData", {"Lines": lines})
    assert status(feed(2, "TimingData", {"Lines": {"2": {"KnockedOut": True}}}), 1) == 8
    assert status(feed(3, "TimingData", {"Lines": {"3": {"Stopped": True}}}), 2) == 9
    samples = feed(4, "TimingData", {"Lines": {"3": {"Stopped": False, "Retired": True}}})
    assert status(samples, 2) == 7
    assert [s.value["code"] for s in samples if s.stream == EVENTS] == ["RTMT"]
    # Finished (a part, or the race) is not final; Finalised is.
    assert not [
        s for s in feed(5, "SessionStatus", {"Status": "Finished"}) if s.stream == CLASSIFICATION
    ]
    (final,) = [
        s.value
        for s in feed(6, "SessionStatus", {"Status": "Finalised"})
        if s.stream == CLASSIFICATION
    ]
    got = [(e["position"], e["result_status"]) for e in final["classification_data"][:4]]
    assert got == [(1, 3), (2, 8), (3, 7), (4, 10)]  # car 4 never counted a lap: did not start
    assert not [
        s for s in feed(7, "SessionStatus", {"Status": "Ends"}) if s.stream == CLASSIFICATION
    ]

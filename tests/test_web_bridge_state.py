"""LiveState and the hub's client-message parsing, without sockets or LSL."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modules.stream_catalogue import CATALOGUE
from modules.web_bridge.hub import (
    Subscription,
    SubscriptionError,
    parse_client_message,
    parse_subscription,
)
from modules.web_bridge.state import LiveState, TelemetryFrame

LABELS = {s.name: [c.label for c in s.channels] for s in CATALOGUE}
UID = (7 << 32) | 9


def row(stream: str, cars: dict[int, dict[str, float]]) -> np.ndarray:
    labels = LABELS[stream]
    values = np.zeros(len(labels))
    values[labels.index("header.session_uid_hi")] = 7
    values[labels.index("header.session_uid_lo")] = 9
    for car, fields in cars.items():
        for field, value in fields.items():
            values[labels.index(f"car{car:02d}.{field}")] = value
    return values


def live_state(*names: str) -> LiveState:
    state = LiveState()
    for name in names:
        state.plan(name, LABELS[name])
    return state


def lap_frame(order: list[int], finished: bool = False) -> np.ndarray:
    return row(
        "raceplane.lap_data",
        {
            car: {
                "car_position": position,
                "result_status": 3 if finished else 2,
                "current_lap_num": 2,
                "delta_to_race_leader_ms": 1000 * (position - 1),
                "delta_to_car_in_front_ms": 1000 if position > 1 else 0,
            }
            for position, car in enumerate(order, start=1)
        },
    )


def test_tower_follows_live_positions_and_reports_changes_once() -> None:
    state = live_state("raceplane.lap_data")
    state.on_json(
        "raceplane.participants",
        {"participants": [{"name": n, "team_name": "Ferrari"} for n in ("A", "B", "C")]},
    )
    assert state.on_rows("raceplane.lap_data", [lap_frame([0, 1, 2])]) == []
    messages = state.tower_news()  # built when asked, not with every row
    assert [m.type for m in messages] == ["tower"]
    assert [r["driver"] for r in messages[0].data] == ["A", "B", "C"]
    assert state.session_uid == str(UID)
    assert state.tower_news() == []  # no row since
    state.on_rows("raceplane.lap_data", [lap_frame([0, 1, 2])])
    assert state.tower_news() == []  # nothing new
    state.on_rows("raceplane.lap_data", [lap_frame([0, 1, 2])])
    state.on_rows("raceplane.lap_data", [lap_frame([0, 2, 1])])
    overtaken = state.tower_news()
    tower = overtaken[0].data
    assert [(r["position"], r["driver"]) for r in tower] == [(1, "A"), (2, "C"), (3, "B")]
    assert tower[2]["gap_ms"] == 2000 and tower[2]["interval_ms"] == 1000


def test_finished_cars_take_the_lap_timers_gaps() -> None:
    state = live_state("raceplane.lap_data")
    table = {
        "session_uid": str(UID),
        "rows": [
            {"position": 1, "car_index": 0, "driver": "A", "gap_ms": 0, "best_lap_ms": 65000},
            {"position": 2, "car_index": 1, "driver": "B", "gap_ms": 4321, "interval_ms": 4321},
        ],
    }
    state.on_json("raceplane.standings", table)
    state.on_rows("raceplane.lap_data", [lap_frame([0, 1], finished=True)])
    tower = state.tower()
    assert tower[1]["gap_ms"] == 4321 and tower[1]["status"] == "finished"
    assert tower[0]["best_lap_ms"] == 65000


def test_manual_board_only_when_no_game_is_live() -> None:
    state = LiveState()
    board = {"session_uid": "manual-1", "rows": [{"position": 1, "driver": "Ada", "laps": 1}]}
    messages = state.on_json("raceplane.standings", board)
    assert [m.type for m in messages + state.tower_news()] == ["standings", "tower"]
    assert state.tower()[0]["driver"] == "Ada"
    assert state.snapshot()["boards"] == [board]


def test_session_header_and_leader_lap() -> None:
    state = live_state("raceplane.lap_data")
    packet = {
        "header": {"session_uid": str(UID)},
        "track_name": "Monza",
        "session_type_name": "Race",
        "total_laps": 5,
        "weather_name": "light rain",
        "safety_car_status_name": "virtual",
        "num_marshal_zones": 2,
        "marshal_zones": [{"zone_flag": 3}, {"zone_flag": 0}, {"zone_flag": 4}],
    }
    session = state.on_json("raceplane.session", packet)[0].data
    assert session["flags"] == ["yellow"]  # the third zone is beyond num_marshal_zones
    assert session["safety_car"] == "virtual" and session["lap"] is None
    assert state.on_json("raceplane.session", packet) == []  # unchanged: no message
    updates = state.on_rows("raceplane.lap_data", [lap_frame([0, 1])])
    assert [m.type for m in updates + state.tower_news()] == ["session", "tower"]
    assert updates[0].data["lap"] == 2


@pytest.mark.parametrize(
    ("event", "text"),
    [
        ({"code": "FTLP", "vehicle_idx": 1, "lap_time_s": 81.2346}, "Fastest lap: B 1:21.235"),
        ({"code": "RTMT", "vehicle_idx": 0}, "Retired: A"),
        ({"code": "PENA", "vehicle_idx": 1, "penalty_type": 4, "lap_num": 3}, "B: time penalty"),
        ({"code": "SCAR", "safety_car_type": 2, "event_type": 0}, "Virtual safety car deployed"),
        (
            {"code": "OVTK", "overtaking_vehicle_idx": 1, "being_overtaken_vehicle_idx": 0},
            "Overtake: B on A",
        ),
        ({"code": "CHQF"}, "Chequered flag"),
    ],
)
def test_events_read_as_text(event: dict, text: str) -> None:
    state = LiveState()
    state.on_json("raceplane.participants", {"participants": [{"name": "A"}, {"name": "B"}]})
    message = state.on_json("raceplane.events", event)[0]
    assert message.data["text"].startswith(text)


def test_noise_and_garbage_are_ignored() -> None:
    state = LiveState()
    assert state.on_json("raceplane.events", {"code": "SPTP", "vehicle_idx": 1}) == []
    assert state.on_json("raceplane.events", ["not", "an", "object"]) == []
    assert state.on_json("raceplane.tyre_sets", {"x": 1}) == []
    assert state.on_rows("raceplane.unplanned", [[1.0, 2.0]]) == []


def test_telemetry_and_positions_per_car() -> None:
    state = live_state("raceplane.car_telemetry", "raceplane.motion", "raceplane.lap_data")
    state.on_rows("raceplane.lap_data", [lap_frame([4])])
    state.on_rows("raceplane.car_telemetry", [row("raceplane.car_telemetry", {4: {"gear": 6}})])
    motion = row("raceplane.motion", {4: {"world_position_x_m": 10.5, "world_position_z_m": -3}})
    state.on_rows("raceplane.motion", [motion])
    assert state.telemetry([4])["4"]["gear"] == 6
    assert state.positions() == [{"car_index": 4, "x": 10.5, "z": -3.0}]


def test_a_telemetry_frame_encodes_each_subscription_as_json_would() -> None:
    state = live_state("raceplane.car_telemetry", "raceplane.motion", "raceplane.lap_data")
    state.on_rows("raceplane.lap_data", [lap_frame([4, 9])])
    values = {4: {"gear": 6, "speed_kph": 250.5}, 9: {"gear": 3, "engine_rpm": 11000}}
    state.on_rows("raceplane.car_telemetry", [row("raceplane.car_telemetry", values)])
    motion = {4: {"world_position_x_m": 10.5, "world_position_z_m": -3}}
    state.on_rows("raceplane.motion", [row("raceplane.motion", motion)])
    frame = TelemetryFrame.of(12, 1234.5, state)
    for cars, with_map in [((9, 4), True), ((4,), False), ((), True), ((4, 30), False)]:
        expected = {"cars": state.telemetry(cars)}
        if with_map:
            expected["positions"] = state.positions()
        decoded = json.loads(frame.message(cars, with_map))
        assert decoded == {"type": "telemetry", "t": 1234.5, "data": expected}
    assert json.loads(TelemetryFrame.of(0, None, LiveState()).message((1,), True)) == {
        "type": "telemetry",
        "t": None,
        "data": {"cars": {"1": {}}, "positions": []},
    }


@pytest.mark.parametrize(
    "text",
    ["nope", "[]", '{"type": "hello"}', "x" * 5000],
)
def test_client_messages_that_are_refused(text: str) -> None:
    with pytest.raises(SubscriptionError):
        parse_client_message(text)


@pytest.mark.parametrize(
    "change",
    [{"cars": [22]}, {"cars": "3"}, {"cars": [True]}, {"rate_hz": 0}, {"rate_hz": "fast"}],
)
def test_subscriptions_that_are_refused(change: dict) -> None:
    with pytest.raises(SubscriptionError):
        parse_subscription({"type": "subscribe", **change}, Subscription())


def test_subscription_keeps_what_is_not_changed() -> None:
    first = parse_subscription({"cars": [3, 3, 5], "rate_hz": 5}, Subscription())
    assert first == Subscription((3, 5), 5.0, True)
    assert parse_subscription({"map": False}, first) == Subscription((3, 5), 5.0, False)


def test_track_outline_is_kept_for_late_clients_and_sent_in_pieces() -> None:
    state = live_state("raceplane.motion", "raceplane.lap_data")
    state.on_rows("raceplane.lap_data", [lap_frame([0, 1])])
    pieces = []
    for step in range(60):
        x = 10.0 * step  # 10 m apart: every frame adds a point
        frame = row("raceplane.motion", {0: {"world_position_x_m": x}, 1: {}})
        pieces += state.on_rows("raceplane.motion", [frame])
    assert len(state.outline) == 60 and state.outline[-1] == (590.0, 0.0)
    assert [m.type for m in pieces] == ["outline", "outline"]
    assert pieces[1].data["start"] == 25 and len(pieces[1].data["points"]) == 25
    assert state.snapshot()["outline"] == state.outline
    # A new session starts a new outline.
    state.on_rows("raceplane.lap_data", [lap_frame([0, 1])])
    other = row("raceplane.motion", {0: {"world_position_x_m": 5.0}})
    other[LABELS["raceplane.motion"].index("header.session_uid_lo")] = 10
    state.on_rows("raceplane.motion", [other])
    assert state.outline == [(5.0, 0.0)]


def test_session_header_shows_the_chequered_flag_until_a_new_session() -> None:
    state = LiveState()
    session = {"header": {"session_uid": str(UID)}, "track_name": "Monza", "marshal_zones": []}
    [first] = state.on_json("raceplane.session", session)
    assert first.data["chequered"] is False
    messages = state.on_json("raceplane.events", {"code": "CHQF", "header": session["header"]})
    assert [m.data["chequered"] for m in messages if m.type == "session"] == [True]
    assert state.on_json("raceplane.session", session) == []  # still chequered: nothing new
    [next_session] = state.on_json("raceplane.session", {**session, "header": {"session_uid": "1"}})
    assert next_session.data["chequered"] is False

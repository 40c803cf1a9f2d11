"""The live client's cores without LSL: callbacks, the rate by the game's clock, topics and
the telemetry plan."""

from __future__ import annotations

import asyncio
import itertools
import logging

import numpy as np
import pytest

from modules.live.dispatch import Callbacks, Decimator
from modules.live.topics import (
    LIVETIMING_STREAM,
    TelemetryPlan,
    decode_json,
    stream_of_fields,
    stream_of_topic,
)
from modules.stream_catalogue import STREAMS


def test_a_raising_callback_is_logged_and_the_others_still_run(caplog):
    callbacks = Callbacks(logging.getLogger("test.live"))
    seen: list[tuple[str, int]] = []

    def broken(record: int) -> None:
        raise RuntimeError("boom")

    callbacks.add("laps", lambda r: seen.append(("first", r)))
    callbacks.add("laps", broken)
    callbacks.add("laps", lambda r: seen.append(("last", r)))
    for record in (1, 2):
        assert callbacks.deliver("laps", record) == []
    assert seen == [("first", 1), ("last", 1), ("first", 2), ("last", 2)]
    assert callbacks.errors == {broken.__qualname__: 2}
    assert callbacks.delivered == {"laps": 2}
    assert "boom" in caplog.text and "the other callbacks go on" in caplog.text
    with pytest.raises(TypeError, match="callable"):
        callbacks.add("laps", 3)  # type: ignore[arg-type]


def test_async_callbacks_are_awaited_and_guarded():
    callbacks = Callbacks(logging.getLogger("test.live"))
    seen: list[int] = []

    async def store(record: int) -> None:
        await asyncio.sleep(0)
        seen.append(record)

    async def broken(record: int) -> None:
        raise ValueError("async boom")

    callbacks.add("laps", store)
    callbacks.add("laps", broken)

    async def main() -> None:
        for record in (1, 2):
            for pending in callbacks.deliver("laps", record):
                await pending

    asyncio.run(main())
    assert seen == [1, 2]
    assert callbacks.errors == {broken.__qualname__: 2}


def test_the_rate_follows_the_game_clock_and_restarts_after_a_rewind():
    tenth = Decimator(10)
    clock = [i / 60 for i in range(121)]  # 2 s of a 60 Hz stream
    passed = [t for t in clock if tenth.passes(t)]
    assert len(passed) == 21
    assert all(0.1 - 1e-9 <= b - a <= 0.1 + 1 / 60 for a, b in itertools.pairwise(passed))
    assert tenth.passes(0.5)  # a flashback to 0.5 s: followed at once
    assert not tenth.passes(0.55)
    every = Decimator(None)
    assert all(every.passes(t) for t in clock)
    with pytest.raises(ValueError, match="rate_hz"):
        Decimator(0)


def test_topics_name_their_streams():
    assert stream_of_topic("laps") == "raceplane.laps"
    assert stream_of_topic("standings") == "raceplane.standings"
    assert stream_of_topic("TimingData") == LIVETIMING_STREAM
    assert stream_of_topic("CarData.z") == LIVETIMING_STREAM
    with pytest.raises(ValueError, match="topic"):
        stream_of_topic("")
    assert decode_json("raceplane.laps", '{"lap": 3}') == ("laps", {"lap": 3})
    message = '{"topic": "TimingData", "data": {}, "timestamp": "x"}'
    assert decode_json(LIVETIMING_STREAM, message)[0] == "TimingData"
    assert decode_json("raceplane.laps", "[1]") is None
    assert decode_json("raceplane.laps", "not json") is None


def test_channels_are_found_in_the_stream_that_has_them():
    assert stream_of_fields(["speed_kph", "throttle"]) == "raceplane.car_telemetry"
    assert stream_of_fields(["fuel_in_tank_kg"]) == "raceplane.car_status"
    with pytest.raises(ValueError, match="no channel"):
        stream_of_fields(["speed_kph", "fuel_in_tank_kg"])
    with pytest.raises(ValueError, match="no channel"):
        stream_of_fields(["nonsense"])
    with pytest.raises(ValueError, match="not a per-car stream"):
        stream_of_fields(["speed_kph"], stream="raceplane.laps")
    with pytest.raises(ValueError, match="at least one"):
        stream_of_fields([])


def test_a_telemetry_plan_picks_cars_and_fields_with_names_and_units():
    definition = STREAMS["raceplane.car_telemetry"]
    labels = [c.label for c in definition.channels]
    rows = np.zeros((3, len(labels)))
    col = {label: i for i, label in enumerate(labels)}
    for i in range(3):
        rows[i, col["header.session_uid_hi"]] = 1
        rows[i, col["header.session_uid_lo"]] = 7
        rows[i, col["header.session_time_s"]] = i * 0.05
        rows[i, col["header.frame_identifier"]] = 100 + i
        rows[i, col["car03.speed_kph"]] = 200 + i
        rows[i, col["car03.throttle"]] = np.nan  # a field the game did not give
    plan = TelemetryPlan("raceplane.car_telemetry", (3,), ("speed_kph", "throttle"), 10)
    records = plan.records(rows, np.array([10.0, 10.05, 10.1]))
    assert [(r.frame, r["speed_kph"], r["throttle"]) for r in records] == [
        (100, 200.0, None),
        (102, 202.0, None),
    ]
    first = records[0]
    assert first.session_uid == (1 << 32) | 7 and first.car == 3 and first.time == 10.0
    assert first.units == {"speed_kph": "km/h", "throttle": "0..1"}
    with pytest.raises(ValueError, match="cars are indices"):
        TelemetryPlan("raceplane.car_telemetry", (22,), ("speed_kph",), None)

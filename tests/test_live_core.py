"""The live client's cores without LSL: callbacks, the rate by the game's clock, the inbox
between reader threads and delivery, topics and the telemetry plan."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading

import numpy as np
import pytest

from modules.live.dispatch import Callbacks, Decimator
from modules.live.inbox import Inbox
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


def test_the_inbox_merges_streams_by_time_and_keeps_each_streams_order():
    inbox = Inbox()
    stop = threading.Event()
    assert inbox.put("raceplane.laps", [(1.0, "laps", "lap a"), (3.0, "laps", "lap b")], stop)
    # A clock that stepped back within a stream (a restarted producer) reorders nothing.
    assert inbox.put("raceplane.events", [(2.0, "events", "e1"), (0.5, "events", "e2")], stop)
    assert inbox.put("raceplane.laps", [(4.0, "laps", "lap c")], stop)
    records = inbox.take(0)
    assert [r for _, r in records] == ["lap a", "e1", "e2", "lap b", "lap c"]
    assert inbox.take(0) == []


def test_the_inbox_wakes_its_taker_on_arrival_and_holds_readers_when_full():
    inbox = Inbox(limit=2)
    stop = threading.Event()
    arrivals: list[int] = []
    inbox.on_arrival = lambda: arrivals.append(1)
    taken: list[list] = []
    taker = threading.Thread(target=lambda: taken.append(inbox.take(60)))
    taker.start()
    inbox.put("s", [(1.0, "t", "first")], stop)
    taker.join(timeout=60)
    assert not taker.is_alive() and taken == [[("t", "first")]]  # woken well before 60 s
    assert arrivals == [1]

    inbox.put("s", [(2.0, "t", "a")], stop)
    inbox.put("s", [(3.0, "t", "b")], stop)
    assert arrivals == [1, 1]  # only when the inbox goes from empty to not
    done = threading.Event()
    reader = threading.Thread(target=lambda: inbox.put("s", [(4.0, "t", "c")], stop) and done.set())
    reader.start()
    assert not done.wait(0.3)  # full: the reader waits (its backlog stays in liblsl)
    assert [r for _, r in inbox.take(0)] == ["a", "b"]
    reader.join(timeout=60)
    assert done.is_set() and [r for _, r in inbox.take(0)] == ["c"]

    inbox.put("s", [(5.0, "t", "d")], stop)
    inbox.put("s", [(6.0, "t", "e")], stop)
    stop.set()
    assert not inbox.put("s", [(7.0, "t", "f")], stop)  # stopping: not handed over
    inbox.take(0)
    inbox.wake()
    assert inbox.take(60) == []  # stop() ends a waiting take at once

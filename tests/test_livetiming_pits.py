"""Pit stops of the live timing feed (PitLaneTimeCollection, PitStopSeries): the parser on
hand-made messages, and the same messages in a race through the live timing module into a lap
timer, whose session report must show each stop (in-lap, pit-lane time, stationary time) as it
shows a game's; what cannot be read is said, and costs nothing else."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.testing import free_port, wait_until
from modules.lap_timer.inputs import NUMERIC, Inputs
from modules.lap_timer.inputs import STREAMS as READ
from modules.lap_timer.store import Store
from modules.lap_timer.timer import LapTimer
from modules.livetiming.pits import LANE_TIMES, STOP_SERIES, FeedPitStop, FeedPitStops
from modules.livetiming.savefile import SaveWriter, merge_files
from modules.livetiming.state import LiveSession
from modules.livetiming.topics import format_timestamp, merge, parse_timestamp
from modules.stream_catalogue import STREAMS
from tests.livetiming_server import Race, synthetic_race


def series_entry(number: str, lap: str, stop: str, lane: str) -> dict[str, Any]:
    return {
        "Timestamp": "2024-03-02T15:03:00.000Z",
        "PitStop": {"RacingNumber": number, "Lap": lap, "PitStopTime": stop, "PitLaneTime": lane},
    }


def test_the_parser_reads_both_topics_once_each_and_says_what_it_cannot_read() -> None:
    pits = FeedPitStops()
    lanes: Any = None

    def lane_change(change: Any) -> tuple[list[FeedPitStop], list[str]]:
        nonlocal lanes
        lanes = merge(lanes, change)
        return pits.read(LANE_TIMES, lanes)

    # In the pit lane: an entry without a time is no stop yet.
    entering = {"PitTimes": {"16": {"RacingNumber": "16", "Duration": "", "Lap": "2"}}}
    assert lane_change(entering) == ([], [])
    # Out: timed; told again (a repeat, the whole state again) it is no news.
    timed = {"PitTimes": {"16": {"Duration": "20.123"}}}
    assert lane_change(timed) == ([FeedPitStop("16", 2, 20123, None)], [])
    assert lane_change(timed) == ([], [])
    assert pits.read(LANE_TIMES, lanes) == ([], [])
    # Off the screen: the stop stands, nothing to tell.
    assert lane_change({"PitTimes": {"_deleted": ["16"]}}) == ([], [])
    assert lanes == {"PitTimes": {}}

    # The series times the same stop better: a correction, with its stationary time.
    series: Any = merge(None, {"PitTimes": {"16": [series_entry("16", "2", "2.41", "20.087")]}})
    assert pits.read(STOP_SERIES, series) == ([FeedPitStop("16", 2, 20087, 2410)], [])
    # A later stop comes keyed by its index; the first is not told again.
    series = merge(series, {"PitTimes": {"16": {"1": series_entry("16", "31", "3.0", "21.5")}}})
    assert pits.read(STOP_SERIES, series) == ([FeedPitStop("16", 31, 21500, 3000)], [])
    # The collection's rougher time of a stop the series timed changes nothing.
    assert lane_change({"PitTimes": {"16": {"Duration": "21.9", "Lap": "31"}}}) == ([], [])

    # Garbage: each bad value said once, the good stops beside it kept.
    bad = {
        "PitTimes": {
            "44": {"0": series_entry("44", "3", "fast", "19.5")},
            "1": {"0": series_entry("1", "3", "2.9", "19.9")},
            "4x": {"0": series_entry("4", "3", "2.9", "19.9")},
            "63": {"0": series_entry("63", "-", "2.9", "19.9")},
            "81": {"0": "nonsense"},
        }
    }
    stops, problems = pits.read(STOP_SERIES, merge(None, bad))
    assert stops == [FeedPitStop("1", 3, 19900, 2900)]
    assert len(problems) == 4
    assert "car 44 lap 3: PitStopTime 'fast' is not a time" in problems[0]
    assert "'4x' is not a racing number" in problems[1]
    assert "car 63: Lap '-' is not a lap number" in problems[2]
    assert "car 81: 'nonsense' is not a pit stop" in problems[3]
    assert pits.read(STOP_SERIES, merge(None, bad)) == ([], [])  # said once
    assert pits.read(LANE_TIMES, "nonsense")[1] == [
        "PitLaneTimeCollection: no PitTimes object in 'nonsense'"
    ]


# ----- a race through the module's core into the lap timer ------------------------------------


def with_pit_messages(race: Race) -> tuple[Race, dict[str, Any]]:
    """The synthetic race (car 16 in the pit lane across the line of lap 2) with the feed's pit
    topics added: car 16's stop as both topics time it, told again and taken off the screen; car
    1 through the pit lane on lap 3; a stop of a car not in the race; garbage beside a good stop."""
    start = parse_timestamp(race.feed[0][2])

    def at_ms(ms: int) -> str:
        return format_timestamp(start + timedelta(milliseconds=ms))

    def crossing(number: str, lap: int) -> int:
        return sum(time for n, time, _ in race.laps[number][:lap])

    pit_in_16 = crossing("16", 2) - 5000  # as synthetic_race puts it
    pit_out_16 = crossing("16", 2) + 15000
    pit_in_1, pit_out_1 = crossing("1", 2) + 40000, crossing("1", 2) + 60000
    entering = {"RacingNumber": "16", "Duration": "", "Lap": "2"}
    unknown = {"RacingNumber": "99", "Duration": "21.0", "Lap": "2"}
    out_1 = {"InPit": False, "PitOut": True, "NumberOfPitStops": 1}
    series_16 = series_entry("16", "2", "2.41", "20.087")
    garbage = {
        "44": {"0": series_entry("44", "3", "fast", "19.5")},
        "1": {"0": series_entry("1", "3", "2.9", "19.9")},
    }
    added = [
        (pit_in_16 + 1, LANE_TIMES, {"PitTimes": {"16": entering}}),
        (pit_out_16 + 10, LANE_TIMES, {"PitTimes": {"16": {"Duration": "20.123"}}}),
        (pit_out_16 + 500, LANE_TIMES, {"PitTimes": {"16": {"Duration": "20.123"}}}),
        (pit_out_16 + 900, STOP_SERIES, {"PitTimes": {"16": [series_16]}}),
        (pit_out_16 + 1000, LANE_TIMES, {"PitTimes": {"99": unknown}}),
        (pit_out_16 + 3000, LANE_TIMES, {"PitTimes": {"_deleted": ["16"]}}),
        (pit_in_1, "TimingData", {"Lines": {"1": {"InPit": True}}}),
        (pit_out_1, "TimingData", {"Lines": {"1": out_1}}),
        (pit_out_1 + 700, STOP_SERIES, {"PitTimes": garbage}),
    ]
    feed = race.feed + [(topic, data, at_ms(ms)) for ms, topic, data in added]
    feed.sort(key=lambda message: message[2])
    want = {
        race.names["16"]: [
            {"lap": 2, "kind": "tyres", "pit_lane_ms": 20087, "stationary_ms": 2410}
        ],
        race.names["1"]: [{"lap": 3, "kind": "tyres", "pit_lane_ms": 19900, "stationary_ms": 2900}],
        race.names["44"]: [],
    }
    return Race(race.state, feed, race.laps, race.final_order, race.names), want


def connect(port: int) -> ModuleClient:
    return ModuleClient("127.0.0.1", port, timeout=15).connect(retries=300, interval=0.05)


def save(race: Race, path: Path) -> Path:
    writer = SaveWriter(path)
    writer.write_state(race.state)
    for topic, data, stamp in race.feed:
        writer.write_feed(topic, data, stamp)
    writer.close()
    return path


def test_the_lap_timer_reports_the_feeds_pit_stops_as_a_games(tmp_path: Path) -> None:
    race, want = with_pit_messages(synthetic_race())
    path = save(race, tmp_path / "race.txt")
    store = Store(tmp_path / "laps.sqlite3")
    timer = LapTimer(store)
    inputs = Inputs(timer)
    for name in NUMERIC:
        inputs.set_channels(name, [c.label for c in STREAMS[name].channels])
    session = LiveSession()
    batch, feed_events = [], []
    for message in merge_files([path], []):
        samples = session.feed(message)
        batch += [(s.stream, s.value) for s in samples if s.stream in READ]
        feed_events += [
            s.value["name"]
            for s in samples
            if isinstance(s.value, dict) and s.value.get("code") == "FEED"
        ]
    assert inputs.handle_batch(batch) == []
    report = timer.get_report()
    store.close()
    got = {row["driver"]: row["pit_stops"] for row in report["classification"]}
    assert got == want
    assert len(session.problems) == 2
    assert "car 99 (lap 2), which is not in the driver list" in session.problems[0]
    assert "car 44 lap 3: PitStopTime 'fast' is not a time" in session.problems[1]
    assert feed_events == [f"not read: {p}" for p in session.problems]
    # Everything else as without the pit topics: every lap, the feed's stop counts.
    assert sum(row["laps"] for row in report["classification"]) == 9
    counts = {row["driver"]: row["pit_stop_count"] for row in report["classification"]}
    assert counts == {race.names["16"]: 1, race.names["1"]: 1, race.names["44"]: 0}


# ----- the same race through the real processes -------------------------------------------------


def test_a_replay_through_the_module_gives_the_lap_timer_process_the_stops(
    spawn, start_lap_timer, tmp_path: Path
) -> None:
    race, want = with_pit_messages(synthetic_race())
    path = save(race, tmp_path / "race.txt")
    live_port, timer_port = free_port(), free_port()
    log = open(tmp_path / "livetiming.log", "a")  # noqa: SIM115 (the child holds it)
    spawn("modules.livetiming", "--port", str(live_port), "--log-port", str(free_port()),
          "--wait-s", "30", stdout=log)  # fmt: skip
    timer = start_lap_timer(timer_port, tmp_path / "laps.sqlite3")
    with connect(live_port) as live, connect(timer_port) as lap_timer:
        live.request("REPLAY", {"paths": [str(path)], "flat_out": True})

        def finished() -> dict[str, Any] | None:
            status = live.request("STATUS")
            return status if status["state"] == "idle" else None

        replay = wait_until(finished, timeout=120, message="the replay ends")["replay"]
        # The messages with bad values were kept (nothing refused); what was not read is said.
        assert replay["done"] and replay["refused"] == 0
        assert replay["messages"] == replay["total"]
        assert replay["unread"] == 2
        assert "car 99 (lap 2), which is not in the driver list" in replay["first_unread"]

        def stops() -> dict[str, list] | None:
            try:
                report = lap_timer.request("GET_REPORT")
            except ModuleError:  # no session yet: the replay's data is still on its way
                return None
            rows = report["classification"]
            if sum(row["laps"] for row in rows) < 9:
                return None
            return {row["driver"]: row["pit_stops"] for row in rows}

        wait_until(lambda: stops() == want, timeout=60, message=f"the stops {want}")
        lap_timer.send("CLOSE")
        live.send("CLOSE")
    assert timer.wait(timeout=30) == 0
    assert "not read: PitStopSeries: car 44 lap 3: PitStopTime 'fast'" in (
        tmp_path / "livetiming.log"
    ).read_text(encoding="utf-8")

"""Deleted laps as the feed tells them: race control's message, and TimingData taking the car's
best back. Hand-made messages for each form, then the shared sessions, judged by their own race
control texts and FastF1's lap times."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modules.livetiming.savefile import Message, merge_files
from modules.livetiming.state import EVENTS, LiveSession
from modules.livetiming.topics import time_ms
from tests.fastf1_judge import SESSIONS, fastf1_laps, shared_file

T0 = datetime(2024, 6, 22, 13, tzinfo=UTC)


class Feed:
    """A LiveSession fed hand-made messages, one second apart; LDEL events as (car, lap)."""

    def __init__(self) -> None:
        self.session = LiveSession()
        self.seconds = 0
        self.send("DriverList", {"1": {"Line": 1, "FullName": "Max VERSTAPPEN"}})

    def send(self, topic: str, data: dict) -> list[tuple[str, int]]:
        self.seconds += 1
        message = Message(topic, data, T0 + timedelta(seconds=self.seconds), "")
        return [
            ("1", s.value["lap"])
            for s in self.session.feed(message)
            if s.stream == EVENTS and s.value["code"] == "LDEL"
        ]

    def line(self, **change) -> list[tuple[str, int]]:
        return self.send("TimingData", {"Lines": {"1": change}})

    def lap(self, count: int, time: str, s1: str, s2: str, s3: str, best: dict) -> None:
        """One lap's sectors, then its end: the count, the time, sector 3 and the new best."""
        self.line(Sectors={"0": {"Value": s1}, "1": {"Value": ""}, "2": {"Value": ""}})
        self.line(Sectors={"1": {"Value": s2}})
        self.line(
            NumberOfLaps=count, LastLapTime={"Value": time}, Sectors={"2": {"Value": s3}}, **best
        )

    def timed(self) -> dict[int, int]:
        return {lap.lap: lap.lap_time_ms for lap in self.session.lap_times.get("1", [])}

    def race_control(self, text: str) -> list[tuple[str, int]]:
        message = {"Utc": "2024-06-22T13:30:00", "Category": "Other", "Message": text}
        return self.send("RaceControlMessages", {"Messages": [message]})


def q1_bests(time: str) -> dict:
    return {"BestLapTimes": {"0": {"Value": time}}, "BestLapTime": {"Value": time}}


def qualifying() -> Feed:
    """Q1: out of the garage (the count numbers the lap in progress), an out-lap, laps 2 and 3
    timed (1:20.000, then the best 1:19.000)."""
    feed = Feed()
    feed.send("TimingData", {"SessionPart": 1, "Lines": {"1": {"InPit": True}}})
    feed.line(NumberOfLaps=1, InPit=False, PitOut=True)
    feed.lap(2, "5:00.000", "30.0", "40.0", "30.0", {})  # the out-lap: garage time in it
    feed.lap(3, "1:20.000", "25.0", "25.0", "30.0", q1_bests("1:20.000"))
    feed.lap(4, "1:19.000", "24.5", "24.5", "30.0", q1_bests("1:19.000"))
    assert feed.timed() == {2: 80000, 3: 79000}
    return feed


def test_a_best_taken_back_deletes_that_lap_and_race_control_after_it_adds_nothing():
    feed = qualifying()
    # The best goes back to the slower lap: the 1:19.000 (lap 3) is deleted.
    withdrawn = {**q1_bests("1:20.000"), "LastLapTime": {"PersonalFastest": False}}
    assert feed.line(**withdrawn) == [("1", 3)]
    assert feed.race_control("CAR 1 (VER) TIME 1:19.000 DELETED - TRACK LIMITS AT TURN 4") == []
    # Then that one too: no best left.
    assert feed.line(**q1_bests("")) == [("1", 2)]


def test_race_control_first_then_the_best_taken_back_deletes_once():
    feed = qualifying()
    assert feed.race_control("CAR 1 (VER) TIME 1:19.000 DELETED - TRACK LIMITS AT TURN 4") == [
        ("1", 3)
    ]
    assert feed.line(**q1_bests("1:20.000")) == []


def test_a_screen_cleared_deletes_nothing():
    feed = qualifying()
    # A new part clears the screen: the best with the last lap time and the sectors.
    cleared = {**q1_bests(""), "LastLapTime": {"Value": ""}, "Sectors": {"0": {"Value": ""}}}
    assert feed.line(**cleared) == []
    # And the next part's bests are the next part's: Q2 begins without one.
    assert feed.send("TimingData", {"SessionPart": 2}) == []
    assert feed.line(BestLapTimes={"1": {"Value": ""}}, BestLapTime={"Value": ""}) == []


def test_a_best_the_feed_never_timed_as_a_lap_deletes_nothing():
    feed = qualifying()
    feed.line(**q1_bests("1:18.000"))  # a best with no lap of that time among ours
    assert feed.line(**q1_bests("1:19.000")) == []


def test_race_control_lap_numbers_are_the_count_plus_one():
    # Qualifying: the count numbers the lap in progress from the garage exit, race control
    # counts one more ("LAP 4" is lap 3 here, as FastF1 numbers it).
    feed = qualifying()
    text = "CAR 1 (VER) LAP DELETED - TRACK LIMITS AT TURN 12 LAP 4 15:30:12"
    assert feed.race_control(text) == [("1", 3)]
    # A race: the count is laps done, race control's lap k is lap k.
    feed = Feed()
    feed.line(Sectors={"0": {"Value": "40.0"}})
    feed.line(Sectors={"1": {"Value": "35.0"}})
    feed.line(NumberOfLaps=1)  # lap 1 of a race: no time in the feed
    feed.lap(2, "1:31.002", "28.5", "31.5", "31.002", {"BestLapTime": {"Value": "1:31.002"}})
    feed.lap(3, "1:30.000", "28.0", "31.0", "31.0", {"BestLapTime": {"Value": "1:30.000"}})
    assert feed.timed() == {2: 91002, 3: 90000}
    text = "CAR 1 (VER) LAP DELETED - TRACK LIMITS AT TURN 4 LAP 2 15:03:00"
    assert feed.race_control(text) == [("1", 2)]
    # In a race the best has no parts: BestLapTime going back to lap 2's deletes lap 3.
    assert feed.line(BestLapTime={"Value": "1:31.002", "Lap": 2}) == [("1", 3)]
    # A lap the feed never timed (race control's lap 1): nothing to delete.
    assert feed.race_control("CAR 1 (VER) LAP DELETED - TRACK LIMITS LAP 1 15:01:00") == []


# -------------------------------------------------------------------- the shared sessions

# (racing number, lap as FastF1 numbers it) of every lap deleted in each session, as its race
# control messages say. 2024 Spain: PIA's "LAP DELETED ... LAP 17" is his last lap (16 here),
# which the feed never timed, and SAI's "TIME 16:05.442 DELETED" the clock time of an out-lap:
# neither is a timed lap, so neither deletes one.
DELETED = {
    "2023_baku_sprint": {("14", 2), ("18", 2), ("31", 2), ("77", 2), ("14", 4), ("18", 4)},
    "2021_mexico_qualifying": {("47", 2), ("22", 15)},
    "2024_spain_qualifying": {("81", 13)},
}
# Of those, the ones whose best TimingData took back (the others were not the car's best).
BEST_TAKEN_BACK = {
    "2023_baku_sprint": {("14", 2), ("18", 2), ("31", 2), ("77", 2)},
    "2021_mexico_qualifying": {("47", 2), ("22", 15)},
    "2024_spain_qualifying": {("81", 13)},
}
TIME_DELETED = re.compile(r"^CAR (\d+)\b.*?TIME ([\d:.]+) DELETED")


def deleted_laps(path: Path, skip: str = "") -> dict[tuple[str, int], int]:
    """Replay a file in-process: each lap deleted (LDEL), with its time as we published it."""
    session = LiveSession()
    times: dict[tuple[str, int], int] = {}
    out: dict[tuple[str, int], int] = {}
    for message in merge_files([path]):
        if message.topic == skip:
            continue
        for sample in session.feed(message):
            if sample.stream != EVENTS or sample.value["code"] not in ("FLAP", "LDEL"):
                continue
            slot = sample.value["vehicle_idx"]
            number = next(n for n, d in session.drivers.items() if d.slot == slot)
            key = (number, sample.value["lap"])
            if sample.value["code"] == "FLAP":
                times[key] = sample.value["lap_time_ms"]
            else:
                assert key not in out, f"{key} deleted twice"
                out[key] = times[key]
    return out


def race_control_times(path: Path) -> set[tuple[str, int]]:
    """(racing number, time) of every "TIME t DELETED" message in the file."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        topic, data, _ = ast.literal_eval(line)
        if topic != "RaceControlMessages":
            continue
        messages = data.get("Messages")
        messages = messages.values() if isinstance(messages, dict) else messages
        for message in messages:
            match = TIME_DELETED.match(message.get("Message", ""))
            if match:
                out.add((match[1], time_ms(match[2])))
    return out


@pytest.mark.parametrize("name", SESSIONS)
def test_the_laps_race_control_deleted_in_a_real_session(name, tmp_path):
    pytest.importorskip("fastf1")
    path = shared_file(name, tmp_path)
    ours = deleted_laps(path)
    assert set(ours) == DELETED[name]
    # Each is the lap FastF1 times alike, and one race control named by that time (or by its
    # number, where it gave no time).
    theirs = fastf1_laps(path)
    assert all(theirs[key][0] == time for key, time in ours.items())
    named = race_control_times(path)
    assert {(n, t) for (n, _), t in ours.items()} <= named
    # TimingData alone (race control's messages left out) deletes the laps whose best it took
    # back, and nothing when it clears the screen (2021 Mexico: ten cars' Q2 bests before Q3).
    assert set(deleted_laps(path, skip="RaceControlMessages")) == BEST_TAKEN_BACK[name]

"""Lap timer domain logic, fed LapData frames and decoded packets directly (no sockets)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from modules.lap_timer.detector import FIELDS, HEADER, FrameLayout, LapDetector, LapFrame
from modules.lap_timer.laptime import format_lap_time, parse_lap_time
from modules.lap_timer.points import RACE, SPRINT, PointsRules
from modules.lap_timer.store import Store
from modules.lap_timer.timer import LapTimer

UID = (7 << 32) | 12345
LABELS = [f"header.{name}" for name in HEADER] + [
    f"car{i:02d}.{name}" for i in range(22) for name in (*FIELDS, "lap_distance_m")
]
LAYOUT = FrameLayout(LABELS)


class Track:
    """Builds LapData samples the way the game fills them in, car by car."""

    def __init__(self, cars: int = 3, uid: int = UID) -> None:
        self.uid = uid
        self.time = 0.0
        self.frame_id = 0
        self.values = {name: np.zeros(22) for name in FIELDS}
        for i in range(cars):
            self.set(i, current_lap_num=1, result_status=2, car_position=i + 1, grid_position=i + 1)
            self.set(i, driver_status=4)  # on track

    def set(self, car: int, **fields: float) -> None:
        for name, value in fields.items():
            self.values[name][car] = value

    def frame(self, dt: float = 0.1) -> LapFrame:
        return LAYOUT.frame(self.sample(dt))

    def sample(self, dt: float = 0.1) -> np.ndarray:
        """The next `raceplane.lap_data` sample, `dt` seconds of session time on."""
        self.time += dt
        self.frame_id += 1
        sample = np.zeros(len(LABELS))
        header = {
            "session_uid_hi": self.uid >> 32,
            "session_uid_lo": self.uid & 0xFFFFFFFF,
            "session_time_s": self.time,
            "frame_identifier": self.frame_id,
            "overall_frame_identifier": self.frame_id,
        }
        for i, label in enumerate(LABELS):
            kind, name = label.split(".")
            if kind == "header":
                sample[i] = header.get(name, 0)
            else:
                sample[i] = self.values.get(name, np.zeros(22))[int(kind[3:])]
        return sample

    def drive_lap(
        self, car: int, s1: int, s2: int, s3: int, invalid: bool = False
    ) -> list[LapFrame]:
        """Frames of one car's lap: sector 1 and 2 shown while running, then the line."""
        frames = []
        self.set(car, sector1_time_ms=s1, current_lap_invalid=int(invalid))
        frames.append(self.frame())
        self.set(car, sector2_time_ms=s2)
        frames.append(self.frame())
        lap = self.values["current_lap_num"][car]
        self.set(
            car,
            current_lap_num=lap + 1,
            last_lap_time_ms=s1 + s2 + s3,
            sector1_time_ms=0,
            sector2_time_ms=0,
            current_lap_invalid=0,
        )
        frames.append(self.frame())
        return frames


def feed(detector: LapDetector, frames: list[LapFrame], tyres=None) -> list:
    return [event for frame in frames for event in detector.feed(frame, tyres)]


# ------------------------------------------------------------------ lap times typed by hand


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("1:23.456", 83_456),
        ("1.23.456", 83_456),
        ("83.456", 83_456),
        ("83", 83_000),
        (83.456, 83_456),
        (83, 83_000),
        (" 1:05.1 ", 65_100),
        ("0:59.999", 59_999),
        ("12:00.000", 720_000),
        ("59.50", 59_500),
        ("83.45", 83_450),
        ("1:05", 65_000),
    ],
)
def test_lap_time_forms(text, millis):
    assert parse_lap_time(text) == millis


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "1:2.3",
        "1:75.000",
        "inf",
        "nan",
        "-83.4",
        "0",
        "0.000",
        "1:23.4567",
        None,
        True,
        "1e3",
        "1::23",
        [],
        "99999",
        "1.23",
        "1.23.",
        "4.999",
    ],
)
def test_lap_time_refused_clearly(text):
    with pytest.raises(ValueError, match="lap time"):
        parse_lap_time(text)


def test_lap_time_format_round_trip():
    for millis in (5_000, 59_999, 83_456, 600_001):
        assert parse_lap_time(format_lap_time(millis)) == millis


# ------------------------------------------------------------------ detector


def test_lap_with_sectors_captured_before_the_increment():
    track = Track(cars=1)
    detector = LapDetector()
    events = feed(detector, [track.frame(), *track.drive_lap(0, 30_000, 31_000, 29_500)])
    assert len(events) == 1
    lap = events[0]
    assert (lap.car_index, lap.lap, lap.lap_time_ms) == (0, 1, 90_500)
    assert lap.sector_ms == (30_000, 31_000, 29_500)
    assert lap.valid and not lap.pit_in and not lap.pit_out


def test_invalid_lap_and_unused_slots_ignored():
    track = Track(cars=2)
    detector = LapDetector()
    events = feed(detector, [track.frame(), *track.drive_lap(1, 30_000, 30_000, 30_000, True)])
    assert [(e.car_index, e.valid) for e in events] == [(1, False)]


def test_pit_in_then_pit_out_lap_and_tyres():
    track = Track(cars=1)
    detector = LapDetector()
    tyres = [16] * 22
    feed(detector, [track.frame()], tyres)
    track.set(0, sector1_time_ms=30_000, sector2_time_ms=30_000)
    feed(detector, [track.frame()], tyres)
    track.set(0, pit_status=1)  # into the pit lane before the line
    feed(detector, [track.frame()], tyres)
    track.set(0, current_lap_num=2, last_lap_time_ms=95_000, sector1_time_ms=0, sector2_time_ms=0)
    in_lap = feed(detector, [track.frame()], tyres)
    tyres = [17] * 22  # new mediums fitted in the box, after the line
    track.set(0, pit_status=2)
    feed(detector, [track.frame()], tyres)
    track.set(0, pit_status=0, num_pit_stops=1)
    out_lap = feed(detector, [track.frame(), *track.drive_lap(0, 35_000, 30_000, 30_000)], tyres)
    assert [(e.lap, e.pit_in, e.pit_out, e.tyre) for e in in_lap] == [(1, True, False, 16)]
    assert [(e.lap, e.pit_in, e.pit_out, e.tyre) for e in out_lap] == [(2, False, True, 17)]


def test_flashback_retracts_laps_after_it():
    track = Track(cars=1)
    detector = LapDetector()
    feed(detector, [track.frame(), *track.drive_lap(0, 30_000, 30_000, 30_000)])
    saved = (track.time, dict((k, v.copy()) for k, v in track.values.items()))
    feed(detector, track.drive_lap(0, 31_000, 31_000, 31_000))
    # Rewind to lap 2 in progress.
    track.time, values = saved
    track.values = values
    events = feed(detector, [track.frame()])
    assert [(type(e).__name__, e.from_lap) for e in events] == [("LapsRetracted", 2)]
    again = feed(detector, track.drive_lap(0, 29_000, 29_000, 29_000))
    assert [(e.lap, e.lap_time_ms, e.sector_ms) for e in again] == [(2, 87_000, (29_000,) * 3)]


def test_car_joining_late_gives_only_laps_it_was_seen_on():
    track = Track(cars=1)
    detector = LapDetector()
    feed(detector, [track.frame()])
    track.set(5, current_lap_num=4, result_status=2, sector1_time_ms=30_000, sector2_time_ms=30_000)
    track.set(5, driver_status=4)
    assert feed(detector, [track.frame()]) == []
    track.set(5, current_lap_num=5, last_lap_time_ms=91_000, sector1_time_ms=0, sector2_time_ms=0)
    events = feed(detector, [track.frame()])
    assert [(e.car_index, e.lap, e.sector_ms) for e in events] == [(5, 4, (30_000, 30_000, 31_000))]


def test_frames_lost_over_a_line_keep_time_drop_sectors():
    track = Track(cars=1)
    detector = LapDetector()
    feed(detector, [track.frame()])
    track.set(0, current_lap_num=3, last_lap_time_ms=92_000)
    events = feed(detector, [track.frame()])
    assert [(e.lap, e.lap_time_ms, e.sector_ms) for e in events] == [(2, 92_000, (None,) * 3)]


def test_layout_names_missing_channels():
    with pytest.raises(ValueError, match=r"car00\.current_lap_num"):
        FrameLayout([label for label in LABELS if label != "car00.current_lap_num"])


# ------------------------------------------------------------------ timer: races and hard cases


class Recorder:
    def __init__(self) -> None:
        self.laps: list[dict] = []
        self.standings: list[dict] = []


@pytest.fixture
def timer(tmp_path):
    out = Recorder()
    store = Store(tmp_path / "laps.sqlite3")
    timer = LapTimer(store, PointsRules(), out.laps.append, out.standings.append)
    timer.out = out
    yield timer
    store.close()


def header(uid: int = UID, year: int = 25) -> dict:
    return {"session_uid": str(uid), "game_year": year, "session_time_s": 0.0}


def start_race(timer: LapTimer, track: Track, year: int = 25, session_type: int = 15) -> None:
    timer.on_session(
        {
            "header": header(track.uid, year),
            "session_type": session_type,
            "track_name": "Monza",
            "total_laps": 3,
        }
    )
    names = [{"name": f"Driver {i}", "team_name": f"Team {i // 2}"} for i in range(22)]
    timer.on_participants(
        {"header": header(track.uid), "num_active_cars": 22, "participants": names}
    )
    timer.on_lap_data(track.frame())


def lap_of(timer, track, car, s1, s2, s3, invalid=False):
    for frame in track.drive_lap(car, s1, s2, s3, invalid):
        timer.on_lap_data(frame)


def test_race_standings_gaps_points(timer):
    track = Track(cars=3)
    start_race(timer, track, year=24)
    # Car 0 leads, car 1 0.5 s behind, car 2 retires on lap 2.
    lap_of(timer, track, 0, 30_000, 30_000, 30_000)
    lap_of(timer, track, 1, 30_200, 30_200, 30_100)
    lap_of(timer, track, 2, 31_000, 31_000, 31_000)
    lap_of(timer, track, 0, 29_000, 29_000, 29_000)
    lap_of(timer, track, 1, 28_900, 29_000, 29_000, invalid=True)
    track.set(2, result_status=7)
    timer.on_event({"header": header(), "code": "RTMT", "vehicle_idx": 2})
    timer.on_lap_data(track.frame())
    timer.flush()
    table = timer.out.standings[-1]
    rows = table["rows"]
    assert (table["session_type"], table["track"]) == ("Race", "Monza")
    assert [r["driver"] for r in rows] == ["Driver 0", "Driver 1", "Driver 2"]
    assert [r["status"] for r in rows] == ["running", "running", "dnf"]
    assert [r["laps"] for r in rows] == [2, 2, 1]
    assert rows[1]["gap_ms"] == (90_500 + 86_900) - (90_000 + 87_000)
    assert rows[1]["interval_ms"] == 400
    assert rows[1]["best_lap_ms"] == 90_500  # its faster lap 2 was invalid
    # Fastest lap (87.0 s, car 0) scores its point in a 2024 game; the retired car scores nothing.
    assert [r["points"] for r in rows] == [26, 18, 0]
    assert table["fastest_lap"] == {
        "car_index": 0,
        "driver": "Driver 0",
        "lap": 2,
        "lap_time_ms": 87_000,
    }
    assert rows[0]["best_sectors_ms"] == [29_000, 29_000, 29_000]
    assert len(timer.out.laps) == 5
    assert timer.out.laps[-1]["valid"] is False


def test_no_fastest_lap_point_in_2025_and_sprint_table(timer):
    track = Track(cars=2)
    start_race(timer, track, year=25)
    lap_of(timer, track, 0, 30_000, 30_000, 30_000)
    lap_of(timer, track, 1, 29_000, 29_000, 29_000)
    timer.on_final_classification(
        {
            "header": header(),
            "num_cars": 2,
            "classification_data": [
                {"position": 1, "result_status": 3, "num_pit_stops": 0},
                {"position": 2, "result_status": 3, "num_pit_stops": 1},
            ],
        }
    )
    table = timer.get_standings()
    assert table["final"] is True
    assert [r["points"] for r in table["rows"]] == [25, 18]
    assert [r["status"] for r in table["rows"]] == ["finished", "finished"]
    timer.rules = PointsRules(table="sprint")
    assert [r["points"] for r in timer.get_standings()["rows"]] == [8, 7]
    timer.rules = PointsRules(tables={"league": [10, 9]}, table="league", fastest_lap_point="on")
    assert [r["points"] for r in timer.get_standings()["rows"]] == [10, 10]


def test_points_table_validation():
    assert PointsRules().tables["race"] == RACE and PointsRules().tables["sprint"] == SPRINT
    with pytest.raises(ValueError, match="unknown"):
        PointsRules(table="nope")
    with pytest.raises(ValueError, match="non-negative"):
        PointsRules(tables={"x": [10, -1]}, table="x")


def test_qualifying_orders_by_best_valid_lap(timer):
    track = Track(cars=3)
    start_race(timer, track, session_type=7)
    lap_of(timer, track, 0, 30_000, 30_000, 30_000)
    lap_of(timer, track, 1, 29_000, 29_000, 29_000, invalid=True)
    lap_of(timer, track, 1, 29_500, 29_500, 29_500)
    table = timer.get_standings()
    assert table["session_type"] == "Qualifying 3"
    rows = table["rows"]
    assert [(r["car_index"], r["best_lap_ms"], r["gap_ms"]) for r in rows] == [
        (1, 88_500, 0),
        (0, 90_000, 1_500),
        (2, None, None),
    ]
    assert all(r["points"] == 0 for r in rows)


def test_flashback_event_and_replacement_lap(timer):
    track = Track(cars=1)
    start_race(timer, track)
    lap_of(timer, track, 0, 30_000, 30_000, 30_000)
    rewind_time = track.time
    state = {k: v.copy() for k, v in track.values.items()}
    lap_of(timer, track, 0, 40_000, 40_000, 40_000)
    assert [lap["lap_time_ms"] for lap in timer.get_laps()] == [90_000, 120_000]
    timer.on_event(
        {
            "header": header(),
            "code": "FLBK",
            "flashback_session_time_s": rewind_time,
        }
    )
    assert [lap["lap_time_ms"] for lap in timer.get_laps()] == [90_000]
    track.time, track.values = rewind_time, state
    lap_of(timer, track, 0, 29_000, 29_000, 29_000)
    assert [(lap["lap"], lap["lap_time_ms"]) for lap in timer.get_laps(car=0)] == [
        (1, 90_000),
        (2, 87_000),
    ]


def test_new_session_uid_is_a_new_session(timer):
    first = Track(cars=1)
    start_race(timer, first)
    lap_of(timer, first, 0, 30_000, 30_000, 30_000)
    restart = Track(cars=1, uid=UID + 1)
    start_race(timer, restart)
    assert timer.status()["current_session"] == str(UID + 1)
    assert timer.get_laps() == []
    assert len(timer.get_laps(session_uid=str(UID))) == 1


def test_red_flag_pit_lane_is_not_a_pit_stop(timer):
    track = Track(cars=1)
    start_race(timer, track)
    timer.on_event({"header": header(), "code": "RDFL"})
    track.set(0, sector1_time_ms=30_000, sector2_time_ms=30_000)
    timer.on_lap_data(track.frame())
    track.set(0, pit_status=1)
    timer.on_lap_data(track.frame())
    track.set(0, current_lap_num=2, last_lap_time_ms=150_000, sector1_time_ms=0, sector2_time_ms=0)
    timer.on_lap_data(track.frame())
    assert timer.get_standings()["red_flag"] is True
    timer.on_event({"header": header(), "code": "LGOT"})
    track.set(0, pit_status=0)
    lap_of(timer, track, 0, 30_000, 30_000, 30_000)
    laps = timer.get_laps()
    assert [(lap["lap"], lap["pit_in"], lap["pit_out"]) for lap in laps] == [
        (1, False, False),
        (2, False, False),
    ]
    assert timer.get_standings()["red_flag"] is False


def test_session_history_corrects_and_fills(timer):
    track = Track(cars=1)
    start_race(timer, track)
    lap_of(timer, track, 0, 30_000, 30_000, 30_000)
    lap_of(timer, track, 0, 30_000, 30_000, 30_000)
    history = [
        {"lap_time_ms": 90_000, "sector_ms": [30_000, 30_000, 30_000], "valid": True},
        {"lap_time_ms": 90_001, "sector_ms": [30_000, 30_000, 30_001], "valid": False},
        {"lap_time_ms": 0, "sector_ms": [0, 0, 0], "valid": True},
    ]
    assert timer.reconcile(str(UID), 0, history) == 1
    assert [(lap["lap_time_ms"], lap["valid"]) for lap in timer.get_laps()] == [
        (90_000, True),
        (90_001, False),
    ]
    assert timer.status()["history_corrections"] == 1


def test_session_history_fills_the_tyre_of_a_lap_seen_before_the_car_status(timer):
    track = Track(cars=1)
    start_race(timer, track)
    lap_of(timer, track, 0, 30_000, 30_000, 30_000)  # no CarStatus yet: tyre unknown
    assert timer.get_laps()[0]["tyre"] == ""
    history = [
        {"lap_time_ms": 90_000, "sector_ms": [30_000, 30_000, 30_000], "valid": True, "tyre": 16}
    ]
    assert timer.reconcile(str(UID), 0, history) == 1
    [lap] = timer.get_laps()
    assert (lap["lap_time_ms"], lap["tyre"]) == (90_000, "soft")
    assert timer.reconcile(str(UID), 0, history) == 0  # nothing left to fill


# ------------------------------------------------------------------ manual board, export, restart


def test_manual_laps_commands_and_refusals(timer, tmp_path):
    assert timer.set_track("Spa") == "Spa" and timer.get_track() == "Spa"
    a = timer.add_lap(driver="Ann", team="Red", time="1:45.123")
    timer.add_lap(driver="Bob", team="Blue", time="104.9")
    timer.add_lap(driver="Ann", time="1.44.500")
    for bad in ("", "1:60.000", "fast", "inf"):
        with pytest.raises(ValueError, match="lap time"):
            timer.add_lap(driver="Cy", team="", time=bad)
    with pytest.raises(ValueError, match="driver"):
        timer.add_lap(driver=" ", time="1:40.000")
    table = timer.get_standings()
    assert (table["session_type"], table["track"]) == ("Hot Lap Board", "Spa")
    assert [(r["driver"], r["best_lap_ms"], r["laps"], r["gap_ms"]) for r in table["rows"]] == [
        ("Ann", 104_500, 2, 0),
        ("Bob", 104_900, 1, 400),
    ]
    assert a["source"] == "manual" and a["lap_time_ms"] == 105_123
    timer.delete_lap(id=a["id"])
    with pytest.raises(ValueError, match="no lap with id"):
        timer.delete_lap(id=a["id"])
    with pytest.raises(ValueError, match="integer id"):
        timer.delete_lap(id="x")
    assert [lap["lap_time_ms"] for lap in timer.get_laps(car="Ann")] == [104_500]
    result = timer.export(path=str(tmp_path / "board.csv"))
    with open(result["path"], newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["position", "driver", "team", "laps", "best lap", "gap", "points"],
        ["1", "Ann", "Red", "1", "1:44.500", "", "0"],
        ["2", "Bob", "Blue", "1", "1:44.900", "+0.400", "0"],
    ]
    with pytest.raises(ValueError, match="does not exist"):
        timer.export(path=str(tmp_path / "missing" / "x.csv"))
    new = timer.reset()["session_uid"]
    assert timer.get_standings()["rows"] == [] and new != a["session_uid"]
    assert len(timer.get_laps(session_uid=a["session_uid"])) == 2


def test_restart_restores_sessions_laps_and_hand_typed_times(tmp_path):
    path = tmp_path / "laps.sqlite3"
    store = Store(path)
    timer = LapTimer(store)
    track = Track(cars=2)
    start_race(timer, track)
    lap_of(timer, track, 0, 30_000, 30_000, 30_000)
    lap_of(timer, track, 1, 30_000, 30_000, 31_000)
    timer.set_track("Monza")
    typed = timer.add_lap(driver="Ann", team="Red", time="1:21.000")
    deleted = timer.add_lap(driver="Ann", team="Red", time="1:29.000")
    timer.delete_lap(id=deleted["id"])
    before_race = timer.get_standings(session_uid=str(UID))
    before_board = timer.get_standings()
    store.close()  # as a killed process would: every lap was committed when made

    again = LapTimer(Store(path))
    assert again.get_standings(session_uid=str(UID)) == before_race
    assert again.get_standings() == before_board
    assert again.get_laps(car="Ann") == [typed]
    assert again.get_track() == "Monza"
    assert again.status()["sessions"] == 2
    # Nothing is ever erased from the file: the deleted lap is still there, marked.
    assert Store(path)._run("SELECT removed FROM laps WHERE id=?", (deleted["id"],)).fetchone() == (
        "deleted",
    )


def test_unknown_session_is_refused(timer):
    with pytest.raises(ValueError, match="no session yet"):
        timer.get_standings()
    with pytest.raises(ValueError, match="no session 'x'"):
        timer.get_laps(session_uid="x")


def test_leaving_the_garage_starts_an_out_lap_not_a_pit_stop():
    track = Track(cars=1)
    track.set(0, driver_status=0)  # in the garage
    detector = LapDetector()
    feed(detector, [track.frame()])
    track.set(0, pit_status=1, driver_status=3)
    feed(detector, [track.frame()])
    track.set(0, pit_status=0)
    events = feed(detector, [track.frame(), *track.drive_lap(0, 40_000, 30_000, 30_000)])
    assert [(e.lap, e.pit_in, e.pit_out) for e in events] == [(1, False, True)]


def test_first_seen_on_an_in_lap_in_the_pit_lane():
    track = Track(cars=1)
    track.set(0, pit_status=1, driver_status=2, sector1_time_ms=30_000, sector2_time_ms=30_000)
    detector = LapDetector()
    feed(detector, [track.frame()])
    track.set(0, current_lap_num=2, last_lap_time_ms=99_000, sector1_time_ms=0, sector2_time_ms=0)
    events = feed(detector, [track.frame()])
    assert [(e.lap, e.pit_in, e.pit_out, e.sector_ms) for e in events] == [
        (1, True, False, (30_000, 30_000, 39_000))
    ]


def test_chequered_flag_completes_the_last_lap_and_flashback_takes_it_back():
    track = Track(cars=1)
    detector = LapDetector()
    feed(detector, [track.frame()])
    track.set(0, sector1_time_ms=30_000, sector2_time_ms=30_000)
    feed(detector, [track.frame()])
    # The game marks the car finished and keeps its lap number.
    track.set(0, result_status=3, last_lap_time_ms=91_000)
    events = feed(detector, [track.frame(), track.frame()])
    assert [(e.lap, e.lap_time_ms, e.sector_ms) for e in events] == [
        (1, 91_000, (30_000, 30_000, 31_000))
    ]
    track.set(0, result_status=2)
    assert [(type(e).__name__, e.from_lap) for e in feed(detector, [track.frame()])] == [
        ("LapsRetracted", 1)
    ]


def test_garbage_on_the_input_streams_is_refused_and_the_rest_goes_on(timer):
    from modules.lap_timer.inputs import Inputs

    inputs = Inputs(timer)
    inputs.set_channels("raceplane.lap_data", LABELS)
    track = Track(cars=1)
    good = [track.sample(), *[f for f in _lap_samples(track)]]
    batch = [
        ("raceplane.session_history", {"header": header(), "car_idx": 0}),
        ("raceplane.final_classification", {"no": "header"}),
        ("raceplane.events", {"header": header(), "code": "FLBK"}),
        ("raceplane.lap_data", np.zeros(5)),
    ] + [("raceplane.lap_data", sample) for sample in good]
    refused = inputs.handle_batch(batch)
    assert [stream for stream, _ in refused] == [
        "raceplane.session_history",
        "raceplane.final_classification",
        "raceplane.events",
        "raceplane.lap_data",
    ]
    assert [lap["lap_time_ms"] for lap in timer.get_laps()] == [90_000]
    with pytest.raises(ValueError, match="car_status stream lacks"):
        inputs.set_channels("raceplane.car_status", ["header.session_uid_hi"])


def _lap_samples(track: Track) -> list[np.ndarray]:
    track.set(0, sector1_time_ms=30_000, sector2_time_ms=30_000)
    first = track.sample()
    track.set(0, current_lap_num=2, last_lap_time_ms=90_000, sector1_time_ms=0, sector2_time_ms=0)
    return [first, track.sample()]


def test_a_database_that_is_not_one_is_refused_and_left_alone(spawn, tmp_path):
    path = tmp_path / "laps.sqlite3"
    path.write_bytes(b"not a database, but somebody's file" * 100)
    before = path.read_bytes()
    process = spawn("modules.lap_timer", "--db", str(path), "--port", "0")
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 2
    assert "cannot open the lap database" in output and "not a database" in output
    assert path.read_bytes() == before


def test_repeated_session_history_texts_parse_as_json_does() -> None:
    # The feed parses a SessionHistory body it has seen once and reuses it: every sample must
    # still come out exactly as a full parse, header included, whatever the text holds.
    import orjson

    from modules.lap_timer.feed import _json, _RepeatedJson

    body = {"car_idx": 3, "num_laps": 1, "lap_history_data": [{"lap_time_ms": 90000}]}
    texts = [
        orjson.dumps({"header": {"session_uid": "7", "frame_identifier": f}, **body}).decode()
        for f in (1, 2, 3)
    ]
    texts.append(orjson.dumps({"header": {"session_uid": "a},b"}, **body}).decode())
    texts.append('{"header":{"session_uid":"7"},"car_idx":3,"header":{"session_uid":"8"}}')
    texts.append('{"header":{"session_uid":"7"},"car_idx":3,"header":{"session_uid":"9"}}')
    reader = _RepeatedJson()
    for text in texts:
        parsed = reader.parse([text])
        assert parsed == _json([text]) and list(parsed) == list(_json([text]))

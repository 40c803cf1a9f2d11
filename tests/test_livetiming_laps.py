"""FeedLaps: a car's laps from TimingData changes, in every order and grouping the feed uses."""

from __future__ import annotations

import itertools

import pytest

from modules.livetiming.laps import FeedLap, FeedLaps


def sectors(**values: str) -> dict:
    return {"Sectors": {str(int(k[1]) - 1): {"Value": v} for k, v in values.items()}}


def run(laps: FeedLaps, changes: list[tuple[str, dict]]) -> list[FeedLap]:
    out = []
    for number, change in changes:
        out += laps.change(number, change)
    return out


def timed(out: list[FeedLap]) -> list[tuple]:
    return [(lap.number, lap.lap, lap.lap_time_ms, lap.sector_ms) for lap in out]


# A race lap's end in its parts: the count, the lap time, sector 3.
COUNT = {"NumberOfLaps": 2}
TIME = {"LastLapTime": {"Value": "1:31.002"}}
S3 = sectors(s3="31.002")
LAP_2 = ("1", 2, 91002, (28500, 31500, 31002))


def race_car_on_lap_2(laps: FeedLaps, number: str = "1") -> None:
    """Lap 1 of a race (driven, then counted: no time in the feed), lap 2's sectors 1 and 2."""
    run(laps, [(number, sectors(s1="40.0")), (number, sectors(s2="35.0"))])
    run(laps, [(number, {"NumberOfLaps": 1}), (number, sectors(s1="28.5", s2="", s3=""))])
    run(laps, [(number, sectors(s2="31.5"))])


@pytest.mark.parametrize("order", list(itertools.permutations([COUNT, TIME, S3])))
def test_a_lap_end_in_three_messages_in_any_order(order):
    laps = FeedLaps()
    race_car_on_lap_2(laps)
    out = run(laps, [("1", change) for change in order])
    # ... and the next lap's first sector settles nothing more.
    out += laps.change("1", sectors(s1="28.7", s2="", s3=""))
    assert timed(out) == [LAP_2]


def test_a_lap_end_in_one_message():
    laps = FeedLaps()
    race_car_on_lap_2(laps)
    assert timed(laps.change("1", {**COUNT, **TIME, **S3})) == [LAP_2]


def test_time_first_then_the_next_lap_begins_before_its_count():
    laps = FeedLaps()
    race_car_on_lap_2(laps)
    out = run(laps, [("1", TIME), ("1", sectors(s1="28.7", s2="", s3=""))])
    out += run(laps, [("1", COUNT), ("1", S3)])  # far apart, after lap 3 has begun
    assert timed(out) == [("1", 2, 91002, (28500, 31500, None))]
    assert laps.lap_in_progress("1") == 3


def test_interleaved_with_other_cars_each_keeps_its_own_laps():
    laps = FeedLaps()
    race_car_on_lap_2(laps, "1")
    race_car_on_lap_2(laps, "44")
    out = run(
        laps,
        [
            ("1", COUNT),
            ("44", {"NumberOfLaps": 2, "LastLapTime": {"Value": "1:32.000"}}),
            ("44", sectors(s3="32.000")),
            ("1", TIME),
            ("44", sectors(s1="29.0", s2="", s3="")),
            ("1", S3),
        ],
    )
    assert sorted(timed(out)) == [LAP_2, ("44", 2, 92000, (28500, 31500, 32000))]


def others(k: int) -> list[tuple[str, dict]]:
    """What other cars send meanwhile: positions, gaps, a sector of a car on another lap."""
    return [
        ("16", {"Line": k, "Position": str(k)}),
        ("44", {"GapToLeader": f"+{k}.000", "IntervalToPositionAhead": {"Value": "+0.5"}}),
        ("63", sectors(s1=f"2{k}.5")),
        ("63", {"Sectors": {"0": {"PersonalFastest": True}}}),
    ] * 3


@pytest.mark.parametrize("order", list(itertools.permutations([COUNT, TIME, S3])))
def test_a_lap_end_in_three_messages_far_apart_among_other_cars(order):
    laps = FeedLaps()
    race_car_on_lap_2(laps, "1")
    race_car_on_lap_2(laps, "44")
    # Car 44's lap end, split too, between car 1's parts.
    theirs = [
        ("44", {"LastLapTime": {"Value": "1:32.000"}}),
        ("44", {"NumberOfLaps": 2, **sectors(s3="32.000")}),
        ("44", sectors(s1="29.0", s2="", s3="")),
    ]
    changes: list[tuple[str, dict]] = []
    for k, change in enumerate(order):
        changes += [("1", change), *others(k + 1), theirs[k]]
    out = run(laps, changes)
    out += laps.change("1", sectors(s1="28.7", s2="", s3=""))
    assert sorted(timed(out)) == [LAP_2, ("44", 2, 92000, (28500, 31500, 32000))]
    assert laps.lap_in_progress("1") == laps.lap_in_progress("44") == 3


def test_a_slow_lap_the_feed_times_is_timed_though_fastf1_leaves_it_untimed():
    """DESIGN.md's rule: FastF1 drops a lap time over 150 s whose sectors had not all come
    before it (laps under a red or yellow flag); the feed timed it, so it is timed here."""
    laps = FeedLaps()
    race_car_on_lap_2(laps)
    out = run(
        laps,
        [
            ("1", {"LastLapTime": {"Value": "2:45.000"}}),  # the time before the count ...
            ("1", COUNT),
            ("1", sectors(s3="1:45.000")),  # ... and before sector 3
        ],
    )
    assert timed(out) == [("1", 2, 165000, (28500, 31500, 105000))]


def test_a_late_time_after_the_next_lap_has_a_sector_is_not_taken_for_it():
    laps = FeedLaps()
    race_car_on_lap_2(laps)
    out = run(laps, [("1", COUNT), ("1", sectors(s1="28.7", s2="", s3=""))])
    assert out == []  # lap 2 closed without a time: untimed, never timed from the clock
    out = laps.change("1", {"NumberOfLaps": 3, "LastLapTime": {"Value": "1:30.000"}})
    # Lap 3 has its time but not all its sectors: it is settled when lap 4 begins.
    out += laps.change("1", sectors(s1="28.0", s2="", s3=""))
    assert [(lap.lap, lap.lap_time_ms, lap.sector_ms) for lap in out] == [
        (3, 90000, (28700, None, None))
    ]


def qualifying_run(laps: FeedLaps, first_count: int, out_lap_time: str) -> list[FeedLap]:
    """Garage exit, out-lap, a flying lap, an in-lap, as a qualifying session sends them."""
    n = first_count
    return run(
        laps,
        [
            ("1", {"NumberOfLaps": n, "InPit": False, "PitOut": True}),
            ("1", {"PitOut": False}),
            ("1", sectors(s2="40.931")),
            ("1", {"NumberOfLaps": n + 1, **sectors(s3="25.920")}),
            ("1", {"LastLapTime": {"Value": out_lap_time}}),
            ("1", sectors(s1="21.680", s2="", s3="")),
            ("1", sectors(s2="28.887")),
            ("1", {"NumberOfLaps": n + 2, "LastLapTime": {"Value": "1:12.306"}, **S3_Q}),
            ("1", sectors(s1="29.797", s2="", s3="")),
            ("1", sectors(s2="42.484")),
            ("1", {"InPit": True}),
            ("1", {"LastLapTime": {"Value": "1:42.809"}, **sectors(s3="30.528")}),
        ],
    )


S3_Q = sectors(s3="21.739")


def test_qualifying_laps_follow_the_count_from_the_garage_exit_and_out_laps_stay_untimed():
    laps = FeedLaps()
    laps.change("1", {"InPit": True, "LastLapTime": {"Value": ""}})
    out = qualifying_run(laps, 1, "23:03.437")  # the out-lap's "time" spans the garage
    assert [(lap.lap, lap.lap_time_ms, lap.sector_ms, lap.pit_in, lap.pit_out) for lap in out] == [
        (2, 72306, (21680, 28887, 21739), False, False),
        (3, 102809, (29797, 42484, 30528), True, False),  # the in-lap, before any count
    ]
    # The next run: the garage exit raises the count (the in-lap is over); a new out-lap.
    out = laps.change("1", {"NumberOfLaps": 4, "InPit": False, "PitOut": True})
    assert out == [] and laps.lap_in_progress("1") == 4


def test_an_out_lap_whose_sectors_add_up_to_its_time_is_timed():
    laps = FeedLaps()
    laps.change("1", {"InPit": True})
    run(laps, [("1", {"NumberOfLaps": 1, "InPit": False})])
    run(laps, [("1", sectors(s1="30.0")), ("1", sectors(s2="40.0"))])
    out = laps.change("1", {"NumberOfLaps": 2, "LastLapTime": {"Value": "1:35.000"}})
    out += laps.change("1", sectors(s3="25.0"))
    assert timed(out) == [("1", 1, 95000, (30000, 40000, 25000))]
    assert out[0].pit_out


def test_a_lap_equal_to_the_last_one_gets_its_time_though_the_feed_sends_none():
    laps = FeedLaps()
    race_car_on_lap_2(laps)
    run(laps, [("1", {**COUNT, **TIME, **S3})])
    run(laps, [("1", sectors(s1="28.5", s2="", s3="")), ("1", sectors(s2="31.5"))])
    out = laps.change("1", {"NumberOfLaps": 3, **S3})  # no LastLapTime: it did not change
    assert timed(out) == [("1", 3, 91002, (28500, 31500, 31002))]


def test_a_count_going_back_is_late_data_and_ignored():
    laps = FeedLaps()
    race_car_on_lap_2(laps)
    run(laps, [("1", {**COUNT, **TIME, **S3})])
    assert laps.change("1", {"NumberOfLaps": 1}) == []
    assert laps.lap_in_progress("1") == 3


# ----------------------------------------------------------------- bad files, real sessions


def replay_laps(paths, caplog) -> tuple:
    """Replay files in-process (no pacing); the laps published per session, and the report."""
    import logging

    from modules.livetiming.replay import replay

    laps: dict[str, set] = {}

    def publish(sample) -> None:
        value = sample.value
        if sample.stream == "raceplane.events" and value["code"] == "FLAP":
            uid = value["header"]["session_uid"]
            lap = (value["vehicle_idx"], value["lap"], value["lap_time_ms"])
            laps.setdefault(uid, set()).add(lap)

    with caplog.at_level(logging.WARNING):
        report = replay(paths, publish, logging.getLogger("test"), flat_out=True)
    return laps, report


def test_garbage_lines_and_a_cut_last_line_are_reported_and_nothing_else_is_lost(tmp_path, caplog):
    from tests.fastf1_judge import shared_file

    clean = shared_file("2024_spain_qualifying", tmp_path)
    want, _ = replay_laps([clean], caplog)
    lines = clean.read_text(encoding="utf-8").splitlines(keepends=True)
    # FastF1's own with_errors style: lines that are not a message, among the good ones;
    # and a file cut off in the middle of its last line (a recorder killed mid-write).
    spoiled = tmp_path / "spoiled.txt"
    garbage = ["garbage\n", "['TimingData', {'Lines': \n", "\x00\x01\n", "[1, 2, 3]\n"]
    body = []
    for i, line in enumerate(lines):
        body.append(line)
        if i % 2000 == 1000:
            body.append(garbage[(i // 2000) % len(garbage)])
    spoiled.write_text("".join(body) + lines[-1][: len(lines[-1]) // 2], encoding="utf-8")
    got, report = replay_laps([spoiled], caplog)
    assert got == want
    (file,) = report.files
    assert file.bad_lines == 5 and "spoiled.txt, line" in file.first_error
    assert "5 of" in caplog.text and "lines unreadable" in caplog.text


def test_another_session_appended_is_a_session_of_its_own(tmp_path, caplog):
    from tests.fastf1_judge import shared_file

    first = shared_file("2021_mexico_qualifying", tmp_path)
    second = shared_file("2024_spain_qualifying", tmp_path)
    want_first, _ = replay_laps([first], caplog)
    want_second, _ = replay_laps([second], caplog)
    joined = tmp_path / "joined.txt"
    joined.write_text(first.read_text() + second.read_text(), encoding="utf-8")
    got, report = replay_laps([joined], caplog)
    assert got == {**want_first, **want_second} and len(got) == 2
    assert report.sessions == ["2024/2024-06-23_Spanish_Grand_Prix/2024-06-22_Qualifying/"]
    assert "another session begins" in caplog.text


def test_a_file_cut_off_mid_session_loses_nothing_before_the_cut_and_says_it_is_not_final(
    tmp_path, caplog
):
    from tests.fastf1_judge import shared_file

    clean = shared_file("2024_spain_qualifying", tmp_path)
    full, report = replay_laps([clean], caplog)
    assert report.final and report.session_status == "Ends"
    assert "before the session is final" not in caplog.text
    lines = clean.read_text(encoding="utf-8").splitlines(keepends=True)
    half = len(lines) // 2
    # Cut in the middle of a line, half way through Q2 (a recorder stopped, a broken copy).
    cut = tmp_path / "cut.txt"
    cut.write_text("".join(lines[:half]) + lines[half][:30], encoding="utf-8")
    whole_lines = tmp_path / "whole_lines.txt"
    whole_lines.write_text("".join(lines[:half]), encoding="utf-8")
    want, _ = replay_laps([whole_lines], caplog)
    caplog.clear()
    got, report = replay_laps([cut], caplog)
    (uid,) = got
    assert got == want and got[uid] < full[uid]  # every lap before the cut, none after it
    assert report.files[0].bad_lines == 1 and "cut.txt, line" in report.files[0].first_error
    assert not report.final and report.session_status == "Started"
    assert "the files end before the session is final (last SessionStatus: Started)" in (
        caplog.text
    )

"""SequenceMerge without LSL: samples of several inputs in the producer's order."""

from __future__ import annotations

import pytest

from dareplane_utils.stream_watcher.merge import SequenceMerge

INPUTS = ["session", "lap_data", "car_status", "events"]


def merge(*connected: str) -> SequenceMerge:
    m = SequenceMerge(INPUTS, watermark_s=1.0, sparse_wait_s=0.01)
    for name in connected or ("lap_data", "car_status"):
        m.add_input(name)
    return m


def names(released) -> list[str]:
    return [item for _, item in released]


def drained(m: SequenceMerge, at: float, *streams: str) -> None:
    for stream in streams or INPUTS:
        m.drained(stream, at)


def test_b_before_a_in_a_frame_is_released_in_rank_order_once_all_have_passed():
    m = merge(*INPUTS)
    for stream in INPUTS:
        m.push(stream, "S", -2, f"{stream}-2", arrived=0.0)
    for frame in (-1, 0, 1):  # dense from here: steps of one, three in a row
        m.push("car_status", "S", frame, f"car_status{frame}", arrived=0.0)
        m.push("lap_data", "S", frame, f"lap_data{frame}", arrived=0.0)
    assert names(m.release()) == ["session-2", "lap_data-2", "car_status-2", "events-2"]
    assert m.release() == []  # session and events have not passed frame -1, nor been polled
    drained(m, 0.02, "session", "events")
    assert names(m.release())[-2:] == ["lap_data1", "car_status1"]
    # Frame 2 arrives B (car_status) first, then events, then lap_data.
    m.push("car_status", "S", 2, "car_status2", arrived=1.0)
    m.push("events", "S", 2, "events2", arrived=1.0)
    drained(m, 5.0, "session")
    assert m.release() == []  # lap_data (dense) has not passed frame 2: no time limit
    m.push("lap_data", "S", 2, "lap_data2", arrived=1.001)
    assert names(m.release()) == ["lap_data2", "car_status2", "events2"]
    assert m.applied == ("S", 2)


def test_a_sparse_input_is_waited_for_until_polled_empty_a_moment_after():
    m = merge("lap_data", "events")
    m.push("events", "S", 0, "E0", arrived=0.0)
    m.push("lap_data", "S", 1, "L1", arrived=0.0)
    m.push("lap_data", "S", 2, "L2", arrived=0.0)
    assert names(m.release()) == ["E0"]
    m.drained("events", 0.005)  # empty, but too soon after L1 arrived: it may be in transit
    assert m.release() == [] and m.next_due() == pytest.approx(0.01)
    m.push("events", "S", 1, "E1", arrived=0.006)  # it was: same step, ranked after lap_data
    assert names(m.release()) == ["L1", "E1"]
    m.drained("events", 0.011)
    assert names(m.release()) == ["L2"]


def test_a_backlogged_input_holds_the_others_however_long_it_takes():
    m = merge("lap_data", "car_status")
    m.push("lap_data", "S", 10, "L10", arrived=0.0)
    m.push("car_status", "S", 9, "C9", arrived=0.0)
    # car_status never polled empty (a backlog in its inlet): no watermark applies.
    assert names(m.release()) == ["C9"]
    assert m.release() == [] and m.stale == []
    m.push("car_status", "S", 10, "C10", arrived=60.0)
    assert names(m.release()) == ["L10", "C10"] and m.counts["late"] == 0


def test_a_dense_input_that_stops_is_waited_out_then_rejoins():
    m = merge()
    for frame in (-2, -1, 0, 1):
        m.push("lap_data", "S", frame, f"L{frame}", arrived=0.0)
        m.push("car_status", "S", frame, f"C{frame}", arrived=0.0)
    assert len(m.release()) == 8
    for frame in range(2, 6):  # car_status stops
        m.push("lap_data", "S", frame, f"L{frame}", arrived=2.0)
    drained(m, 2.5, "car_status")
    assert m.release() == []  # dense: waited for a watermark, 1 s
    drained(m, 3.0, "car_status")
    assert names(m.release()) == ["L2", "L3", "L4", "L5"]
    assert m.stale == ["car_status"] and m.counts["waited_out"] == 1
    m.push("lap_data", "S", 6, "L6", arrived=3.1)
    assert names(m.release()) == ["L6"]  # not waited for while stale
    m.push("car_status", "S", 3, "C3", arrived=3.2)  # it comes back: behind, released at once
    assert names(m.release()) == ["C3"] and m.counts["late"] == 1
    assert m.stale == []


def test_a_new_session_comes_after_everything_of_the_old_one():
    m = merge()
    m.push("lap_data", "old", 100, "old100", arrived=0.0)
    m.push("lap_data", "new", 0, "new0", arrived=0.0)
    m.push("car_status", "old", 100, "c-old100", arrived=0.0)
    m.push("car_status", "new", 0, "c-new0", arrived=0.0)
    assert names(m.release()) == ["old100", "c-old100", "new0", "c-new0"]


def test_a_restarted_producer_with_the_same_session_starts_a_new_epoch():
    m = merge()
    for frame in (500, 501):
        m.push("lap_data", "S", frame, f"L{frame}", arrived=0.0)
    m.push("lap_data", "S", 0, "L0-after-restart", arrived=0.0)
    m.push("car_status", "S", 501, "C501", arrived=0.0)
    m.push("car_status", "S", 1, "C1-after-restart", arrived=0.0)
    drained(m, 0.5)
    assert names(m.release()) == ["L500", "L501", "C501", "L0-after-restart", "C1-after-restart"]
    assert m.counts["restarts"] == 2  # each input saw it


def test_a_small_step_back_or_a_repeat_keeps_the_input_order_and_loses_nothing():
    m = merge()
    m.push("lap_data", "S", 10, "L10", arrived=0.0)
    m.push("lap_data", "S", 12, "L12", arrived=0.0)
    m.push("lap_data", "S", 11, "L11-reordered", arrived=0.0)
    m.push("lap_data", "S", 12, "L12-again", arrived=0.0)
    m.push("car_status", "S", 12, "C12", arrived=0.0)
    assert names(m.release()) == ["L10", "L12", "L11-reordered", "L12-again", "C12"]
    assert m.counts["reordered"] == 1 and m.counts["repeats"] == 1


def test_an_input_connected_but_silent_is_waited_for_once_then_taken_as_stopped():
    m = merge("lap_data", "events")
    m.push("lap_data", "S", 1, "L1", arrived=0.0)
    m.drained("events", 0.5)
    assert m.release() == []  # events may be subscribing still
    m.drained("events", 1.0)
    assert names(m.release()) == ["L1"] and m.stale == ["events"]
    m.push("lap_data", "S", 3, "L3", arrived=1.1)
    assert names(m.release()) == ["L3"]
    m.push("events", "S", 4, "E4", arrived=1.2)  # heard from: sparse from now on
    m.push("lap_data", "S", 5, "L5", arrived=1.2)
    assert names(m.release()) == ["E4"]
    m.drained("events", 1.205)
    assert m.release() == []
    m.drained("events", 1.21)
    assert names(m.release()) == ["L5"]


def test_inputs_not_connected_are_not_waited_for_and_drain_takes_everything():
    m = SequenceMerge(INPUTS, sparse_wait_s=10.0)
    m.add_input("lap_data")
    m.push("lap_data", "S", 1, "L1", arrived=0.0)
    assert names(m.release()) == ["L1"]
    m.add_input("events")
    m.push("lap_data", "S", 2, "L2", arrived=1.0)
    assert m.release() == [] and m.pending == 1
    assert names(m.drain()) == ["L2"] and m.stale == []
    with pytest.raises(ValueError):
        SequenceMerge(INPUTS, watermark_s=-1)


def test_a_contiguous_producer_needs_no_waiting_and_a_gap_is_waited_for():
    m = merge("session", "lap_data", "car_status", "events")
    m.push("car_status", "LT", 2, "C2", arrived=0.0, contiguous=True)
    m.push("session", "LT", 1, "S1", arrived=0.0, contiguous=True)
    # No input has passed 2 and none was polled: only the numbering lets these go.
    assert names(m.release()) == ["S1", "C2"]
    m.push("lap_data", "LT", 4, "L4", arrived=1.0, contiguous=True)
    drained(m, 1.5)
    assert m.release() == []  # 3 is on its way (every input drained does not matter yet)
    m.push("events", "LT", 3, "E3", arrived=1.6, contiguous=True)
    assert names(m.release()) == ["E3", "L4"]
    m.push("lap_data", "LT", 6, "L6", arrived=2.0, contiguous=True)
    drained(m, 3.0)
    assert names(m.release()) == ["L6"] and m.counts["gaps"] == 1  # 5 never came
    assert m.counts["late"] == 0

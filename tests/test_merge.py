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


def test_b_before_a_in_a_frame_is_released_in_rank_order_once_all_have_passed():
    m = merge(*INPUTS)
    for stream in INPUTS:
        m.push(stream, "S", 0, f"{stream}0", now=0.0)
    m.push("car_status", "S", 1, "car_status1", now=0.0)  # dense from here: a step of one
    m.push("lap_data", "S", 1, "lap_data1", now=0.0)
    released = m.release(0.0)
    assert names(released) == ["session0", "lap_data0", "car_status0", "events0"]
    assert names(m.release(0.1)) == ["lap_data1", "car_status1"]
    # Frame 2 arrives B (car_status) first, then events, then lap_data.
    m.push("car_status", "S", 2, "car_status2", now=1.0)
    m.push("events", "S", 2, "events2", now=1.0)
    assert m.release(1.0) == []  # lap_data (dense) has not passed frame 2
    m.push("lap_data", "S", 2, "lap_data2", now=1.001)
    # session (sparse) is behind: a short wait, then out in rank order.
    assert m.release(1.002) == []
    assert m.next_due() == pytest.approx(1.011)  # lap_data2 heads the order
    assert names(m.release(1.012)) == ["lap_data2", "car_status2", "events2"]
    assert m.applied == ("S", 2)


def test_a_slow_dense_input_holds_the_others_then_the_watermark_releases_and_it_rejoins():
    m = merge()
    for frame in (0, 1):
        m.push("lap_data", "S", frame, f"L{frame}", now=0.0)
        m.push("car_status", "S", frame, f"C{frame}", now=0.0)
    m.release(0.0)
    m.release(1.0)
    for frame in range(2, 6):  # car_status stops
        m.push("lap_data", "S", frame, f"L{frame}", now=2.0)
    assert m.release(2.5) == []  # sparse waits are over, car_status is dense: waited for
    assert names(m.release(3.0)) == ["L2", "L3", "L4", "L5"]  # the watermark: 1 s
    assert m.stale == ["car_status"] and m.counts["waited_out"] == 1
    m.push("lap_data", "S", 6, "L6", now=3.1)
    assert names(m.release(3.1 + 0.011)) == ["L6"]  # not waited for while stale
    m.push("car_status", "S", 3, "C3", now=3.2)  # it comes back: behind, released at once
    assert names(m.release(3.2)) == ["C3"] and m.counts["late"] == 1
    assert m.stale == []


def test_a_new_session_comes_after_everything_of_the_old_one():
    m = merge()
    m.push("lap_data", "old", 100, "old100", now=0.0)
    m.push("lap_data", "new", 0, "new0", now=0.0)
    m.push("car_status", "old", 100, "c-old100", now=0.0)
    m.push("car_status", "new", 0, "c-new0", now=0.0)
    assert names(m.release(1.0)) == ["old100", "c-old100", "new0", "c-new0"]


def test_a_restarted_producer_with_the_same_session_starts_a_new_epoch():
    m = merge()
    for frame in (500, 501):
        m.push("lap_data", "S", frame, f"L{frame}", now=0.0)
    m.push("lap_data", "S", 0, "L0-after-restart", now=0.0)
    m.push("car_status", "S", 501, "C501", now=0.0)
    m.push("car_status", "S", 1, "C1-after-restart", now=0.0)
    assert names(m.release(0.5)) == ["L500", "L501", "C501", "L0-after-restart", "C1-after-restart"]
    assert m.counts["restarts"] == 2  # each input saw it


def test_a_small_step_back_or_a_repeat_keeps_the_input_order_and_loses_nothing():
    m = merge()
    m.push("lap_data", "S", 10, "L10", now=0.0)
    m.push("lap_data", "S", 12, "L12", now=0.0)
    m.push("lap_data", "S", 11, "L11-reordered", now=0.0)
    m.push("lap_data", "S", 12, "L12-again", now=0.0)
    m.push("car_status", "S", 12, "C12", now=0.0)
    assert names(m.release(0.5)) == ["L10", "L12", "L11-reordered", "L12-again", "C12"]
    assert m.counts["reordered"] == 1 and m.counts["repeats"] == 1


def test_an_input_connected_but_silent_is_waited_for_once_then_taken_as_stopped():
    m = merge("lap_data", "events")
    m.push("lap_data", "S", 1, "L1", now=0.0)
    assert m.release(0.5) == []  # events may be subscribing still
    assert names(m.release(1.0)) == ["L1"] and m.stale == ["events"]
    m.push("lap_data", "S", 3, "L3", now=1.1)
    assert names(m.release(1.1)) == ["L3"]
    m.push("events", "S", 4, "E4", now=1.2)  # heard from: sparse from now on
    m.push("lap_data", "S", 5, "L5", now=1.2)
    assert names(m.release(1.2)) == ["E4"] and m.release(1.205) == []
    assert names(m.release(1.211)) == ["L5"]


def test_inputs_not_connected_are_not_waited_for_and_drain_takes_everything():
    m = SequenceMerge(INPUTS, sparse_wait_s=10.0)
    m.add_input("lap_data")
    m.push("lap_data", "S", 1, "L1", now=0.0)
    assert names(m.release(0.0)) == ["L1"]
    m.add_input("events")
    m.push("lap_data", "S", 2, "L2", now=1.0)
    assert m.release(1.0) == [] and m.pending == 1
    assert names(m.drain()) == ["L2"] and m.stale == []
    with pytest.raises(ValueError):
        SequenceMerge(INPUTS, watermark_s=-1)

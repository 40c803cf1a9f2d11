"""SequenceMerge and bad input, without I/O: each case of docs/DESIGN.md "Order" (Bad input) by
its rule; none stalls the merge (the watermark releases) and none is dropped."""

from __future__ import annotations

import random

from dareplane_utils.stream_watcher.merge import SequenceMerge

INPUTS = ["session", "lap_data", "car_status", "events"]
WATERMARK_S, SPARSE_S = 1.0, 0.01


def merge(*connected: str) -> SequenceMerge:
    m = SequenceMerge(INPUTS, watermark_s=WATERMARK_S, sparse_wait_s=SPARSE_S)
    for name in connected or INPUTS:
        m.add_input(name)
    return m


def items(released) -> list:
    return [item for _, item in released]


def drained(m: SequenceMerge, at: float, *streams: str) -> None:
    for stream in streams or INPUTS:
        m.drained(stream, at)


def dense_start(m: SequenceMerge, frames=range(-3, 1), session="S") -> None:
    """LapData and CarStatus dense (a sample every step), everything released."""
    for frame in frames:
        for stream in ("lap_data", "car_status"):
            m.push(stream, session, frame, f"{stream[0].upper()}{frame}", arrived=0.0)
    drained(m, 0.1)
    assert len(m.release()) == 2 * len(frames)


def test_a_sparse_stream_that_stops_holds_each_sample_only_the_sparse_wait():
    m = merge("lap_data", "events")
    m.push("events", "S", 0, "E0", arrived=0.0)
    m.push("lap_data", "S", 0, "L0", arrived=0.0)
    drained(m, 0.0)
    assert items(m.release()) == ["L0", "E0"]
    # Events stop for good: every later frame waits for them SPARSE_S, never more, and the
    # input is never taken as stopped (a sparse stream's silence is normal).
    for frame in range(1, 50):
        t = frame * 0.1
        m.push("lap_data", "S", frame, f"L{frame}", arrived=t)
        drained(m, t)
        assert m.release() == [] and m.next_due() == t + SPARSE_S
        drained(m, t + SPARSE_S)
        assert items(m.release()) == [f"L{frame}"]
    assert m.stale == [] and m.counts["late"] == 0


def test_a_dense_stream_that_stops_mid_session_is_waited_out_once_then_never_again():
    m = merge("lap_data", "car_status")
    dense_start(m)
    for frame in range(1, 200):  # car_status has stopped
        m.push("lap_data", "S", frame, f"L{frame}", arrived=1.0)
    drained(m, 1.5)
    assert m.release() == [] and m.next_due() == 1.0 + WATERMARK_S
    drained(m, 2.0)
    assert len(m.release()) == 199 and m.stale == ["car_status"]
    m.push("lap_data", "S", 200, "L200", arrived=2.1)
    assert items(m.release()) == ["L200"]  # not waited for while stale


def test_a_producer_restarted_with_a_new_session_while_one_stream_stays_away():
    m = merge("lap_data", "car_status")
    dense_start(m, session="old")
    # The producer restarts as a new session; its car_status never comes back.
    for frame in range(0, 5):
        m.push("lap_data", "new", frame, f"new{frame}", arrived=5.0)
    drained(m, 5.5)
    assert m.release() == []  # car_status may be on its way (it was dense)
    drained(m, 6.0)
    assert items(m.release()) == [f"new{f}" for f in range(5)]
    assert m.stale == ["car_status"] and m.applied == ("new", 4)


def test_a_restart_back_to_zero_is_a_new_epoch_a_small_step_back_is_a_reorder():
    m = merge("lap_data")
    m.push("lap_data", "S", 100, "L100", arrived=0.0)
    m.push("lap_data", "S", 95, "L95", arrived=0.0)  # back by restart_step (5): reordered
    m.push("lap_data", "S", 94, "L94", arrived=0.0)  # back by 6 from 100: a restart
    m.push("lap_data", "S", 95, "L95-after", arrived=0.0)
    assert items(m.release()) == ["L100", "L95", "L94", "L95-after"]
    assert m.counts["reordered"] == 1 and m.counts["restarts"] == 1


def test_a_flashback_turns_session_time_back_not_the_sequence():
    """The game's overall frame identifier keeps rising through a flashback (its frame
    identifier and session time go back), so the merge sees nothing unusual: the lap timer
    reads the flashback from the session time it is handed in order."""
    m = merge("lap_data", "car_status")
    dense_start(m)
    times = [10.0, 10.1, 10.2, 5.0, 5.1]  # session time, with a flashback after 10.2
    for frame, t in enumerate(times, start=1):
        m.push("lap_data", "S", frame, ("L", frame, t), arrived=1.0)
        m.push("car_status", "S", frame, ("C", frame, t), arrived=1.0)
    released = items(m.release())
    assert [item[2] for item in released if item[0] == "L"] == times
    assert m.counts["restarts"] == m.counts["late"] == 0


def test_a_sequence_that_repeats_is_kept_once_per_sample_in_arrival_order():
    m = merge("lap_data", "car_status")
    dense_start(m)
    for copy in ("a", "b", "c"):  # one frame's LapData three times (a duplicated datagram)
        m.push("lap_data", "S", 1, f"L1{copy}", arrived=1.0)
    m.push("car_status", "S", 1, "C1", arrived=1.0)
    m.push("car_status", "S", 2, "C2", arrived=1.0)
    m.push("lap_data", "S", 2, "L2", arrived=1.0)
    assert items(m.release()) == ["L1a", "L1b", "L1c", "C1", "L2", "C2"]
    assert m.counts["repeats"] == 2


def test_a_contiguous_producer_repeating_or_replayed_again_loses_nothing():
    m = merge("session", "lap_data")
    first = [("session" if n % 3 == 0 else "lap_data", n) for n in range(1, 41)]
    for stream, n in first:
        m.push(stream, "LT", n, f"{stream[0]}{n}", arrived=0.0, contiguous=True)
    assert items(m.release()) == [f"{stream[0]}{n}" for stream, n in first]
    m.push("lap_data", "LT", 40, "l40-again", arrived=0.1, contiguous=True)
    assert items(m.release()) == ["l40-again"] and m.counts["repeats"] == 1
    # The same file replayed again (same session uid): numbered from 1 again, a new epoch.
    again = [("lap_data", 1), ("lap_data", 2), ("session", 3), ("lap_data", 4)]
    for stream, n in again:
        m.push(stream, "LT", n, f"{stream[0]}{n}-again", arrived=0.2, contiguous=True)
    assert items(m.release()) == [f"{stream[0]}{n}-again" for stream, n in again]
    assert m.counts["restarts"] == 2 and m.counts["late"] == 0  # each input saw it


def test_an_old_session_coming_back_is_late_released_at_once_never_dropped():
    m = merge("lap_data", "car_status")
    dense_start(m, session="A")
    dense_start(m, frames=range(0, 4), session="B")
    m.push("lap_data", "A", 1, "A1", arrived=2.0)  # a straggler of the session before
    assert items(m.release()) == ["A1"]
    assert m.counts["late"] == 1 and m.late == {"lap_data": 1}


def test_random_bad_input_never_stalls_and_never_drops():
    """Sessions changing and coming back, restarts, repeats, reorders, streams stopping and
    rejoining, at random: once every input has been polled empty a watermark after the last
    sample arrived, everything pushed has been released, each exactly once."""
    rng = random.Random(15)
    for _ in range(30):
        m = merge(*rng.sample(INPUTS, rng.randint(1, len(INPUTS))))
        pushed, released = [], []
        seq = dict.fromkeys(INPUTS, 0)
        session = dict.fromkeys(INPUTS, "S0")
        t = 0.0
        for n in range(rng.randint(50, 400)):
            t += rng.choice((0.0, 0.001, 0.01, 0.3))
            stream = rng.choice(INPUTS)
            roll = rng.random()
            if roll < 0.03:
                session[stream] = rng.choice(("S0", "S1", "S2"))  # new, or an old one again
            elif roll < 0.06:
                seq[stream] = rng.randint(0, 10)  # restarted
            elif roll < 0.1:
                seq[stream] -= rng.randint(1, 5)  # a step back
            elif roll < 0.9:
                seq[stream] += rng.choice((0, 1, 1, 1, 2, 7))  # on, repeated, or a jump
            item = (stream, n)
            m.push(stream, session[stream], seq[stream], item, arrived=t, contiguous=False)
            pushed.append(item)
            for name in rng.sample(INPUTS, rng.randint(0, len(INPUTS))):
                m.drained(name, t + rng.random() * 0.02)
            released += items(m.release())
        drained(m, t + WATERMARK_S)
        released += items(m.release())
        assert m.pending == 0, "the watermark released nothing more: the merge stalled"
        assert sorted(released) == sorted(pushed)
        assert m.counts["released"] == len(pushed)

"""The StreamWatcher's ring without LSL: exactly-once pull, Dareplane's view, overruns."""

from __future__ import annotations

import numpy as np
import pytest

from dareplane_utils.stream_watcher.ring import Ring


def rows(first: int, count: int, channels: int = 2) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(first, first + count)
    return np.stack([k * 10 + c for c in range(channels)], axis=1), k.astype(float)


def test_pull_gives_every_sample_once_in_order_across_wraps():
    ring = Ring(5, 2, np.int64)
    seen = []
    written = 0
    for chunk in (3, 1, 4, 2, 5, 0, 1):
        ring.write(*rows(written, chunk))
        written += chunk
        values, stamps = ring.pull()
        np.testing.assert_array_equal(values[:, 1], stamps.astype(int) * 10 + 1)
        seen += stamps.astype(int).tolist()
    assert seen == list(range(written))
    assert ring.overruns == 0 and ring.unread == 0
    assert ring.pull()[0].shape == (0, 2)


def test_pull_is_bounded_and_resumes_where_it_stopped():
    ring = Ring(8, 1, np.float32)
    ring.write(*rows(0, 7, 1))
    assert ring.pull(3)[1].tolist() == [0, 1, 2]
    assert ring.pull(0)[1].tolist() == []
    ring.write(*rows(7, 3, 1))  # wraps; 4 unread + 3 new fit
    assert ring.free == 1
    assert ring.pull(5)[1].tolist() == [3, 4, 5, 6, 7]
    assert ring.pull()[1].tolist() == [8, 9]
    with pytest.raises(ValueError, match="max_samples"):
        ring.pull(-1)


def test_samples_overwritten_before_the_pull_are_counted_not_hidden():
    ring = Ring(4, 1, np.int32)
    ring.write(*rows(0, 3, 1))
    assert ring.pull(1)[1].tolist() == [0]
    ring.write(*rows(3, 9, 1))  # 1, 2 and 3..7 are overwritten unread
    _, stamps = ring.pull()
    assert stamps.tolist() == [8, 9, 10, 11]
    assert ring.overruns == 7
    ring.write(*rows(12, 2, 1))
    assert ring.pull()[1].tolist() == [12, 13] and ring.overruns == 7


def test_dareplane_view_is_the_same_memory():
    ring = Ring(4, 2, np.float64)
    ring.write(*rows(0, 6))
    assert ring.curr_i == 2 and ring.written == 6 and ring.n_buffered == 4
    values, stamps = ring.unfold()
    assert stamps.tolist() == [2, 3, 4, 5]
    np.testing.assert_array_equal(values, rows(2, 4)[0])
    assert ring.last(2)[1].tolist() == [4, 5]
    # A producer writing straight into the memory (liblsl does) then advancing.
    ring.buffer[ring.curr_i] = [60, 61]
    ring.buffer_t[ring.curr_i] = 6
    ring.advance(1)
    assert ring.last(1)[1].tolist() == [6]
    assert ring.pull()[1].tolist() == [3, 4, 5, 6] and ring.overruns == 3


def test_text_ring_releases_pulled_strings_when_asked():
    ring = Ring(3, 1, object)
    assert ring.buffer[0, 0] == "" and ring.last(3)[0].shape == (0, 1)
    ring.write([["a"], ["b"]], np.array([1.0, 2.0]))
    values, _ = ring.pull(1)
    assert values.tolist() == [["a"]] and ring.buffer[0, 0] == "a"
    values, _ = ring.pull(release=True)
    assert values.tolist() == [["b"]] and ring.buffer[1, 0] == ""
    ring.write([["c"], ["d"]], np.array([3.0, 4.0]))  # wraps
    values, _ = ring.pull(release=True)
    assert values.tolist() == [["c"], ["d"]]
    assert ring.buffer[:, 0].tolist() == ["", "", ""]


def test_a_ring_holds_at_least_one_sample():
    with pytest.raises(ValueError, match="at least one"):
        Ring(0, 1)
    ring = Ring(1, 1)
    ring.write(*rows(0, 3, 1))
    assert ring.pull()[1].tolist() == [2] and ring.overruns == 2

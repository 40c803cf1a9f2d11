"""The ring under a StreamWatcher: a fixed-size sample buffer with two ways to read it (no I/O).

    ring = Ring(size=4096, n_channels=8, dtype=np.float32)
    ring.write(rows, stamps)                   # or into ring.buffer at curr_i, then advance(n)
    values, stamps = ring.pull(max_samples)    # every sample exactly once, oldest first (copies)
    ring.overruns                              # samples overwritten before they were pulled

Dareplane's view (`buffer`, `buffer_t`, `curr_i` = next write position, `unfold()`) and a queue
view on the same memory: `pull` returns each written sample once, in order, never more than
the ring holds; a sample overwritten before it was pulled is counted in `overruns` (the read
position skips to the oldest sample still there), never skipped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class Ring:
    def __init__(self, size: int, n_channels: int, dtype: Any = np.float64) -> None:
        if size < 1:
            raise ValueError(f"a ring holds at least one sample, not {size}")
        self.is_text = np.dtype(dtype) == np.dtype(object)
        fill: Any = "" if self.is_text else 0
        self.buffer = np.full((size, n_channels), fill, dtype=dtype)
        self.buffer_t = np.zeros(size)
        self.curr_i = 0  # next write position; the newest sample is at curr_i - 1
        self.written = 0  # samples ever written
        self.read = 0  # samples ever pulled, or skipped as overruns
        self.overruns = 0

    @property
    def size(self) -> int:
        return len(self.buffer)

    @property
    def unread(self) -> int:
        """Samples written and not pulled yet that are still in the ring."""
        return min(self.written - self.read, self.size)

    @property
    def free(self) -> int:
        """How many samples can be written before an unread one is overwritten."""
        return self.size - self.unread

    @property
    def n_buffered(self) -> int:
        """How many samples in the ring are real (the rest are still the initial fill)."""
        return min(self.written, self.size)

    def write(self, rows: Sequence[Sequence[Any]] | np.ndarray, stamps: np.ndarray) -> None:
        """Copy samples in (wrapping: of more than a ring's worth only the newest stay)."""
        n = len(stamps)
        if n == 0:
            return
        size = self.size
        kept = min(n, size)
        rows = rows[n - kept :]
        times = stamps[n - kept :]
        start = (self.curr_i + n - kept) % size
        first = min(kept, size - start)
        self.buffer[start : start + first] = rows[:first]
        self.buffer_t[start : start + first] = times[:first]
        if kept > first:
            self.buffer[: kept - first] = rows[first:]
            self.buffer_t[: kept - first] = times[first:]
        self.advance(n)

    def advance(self, n: int) -> None:
        """`n` samples were written at `curr_i` onwards (by `write`, or straight into `buffer`)."""
        self.curr_i = (self.curr_i + n) % self.size
        self.written += n

    def pull(
        self, max_samples: int | None = None, release: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Samples not pulled before, oldest first, at most `max_samples` (copies).

        `release` blanks the pulled slots of a text ring, so it does not keep large strings
        alive after they were taken (`last`/`unfold` then show "" for them).
        """
        if max_samples is not None and max_samples < 0:
            raise ValueError(f"max_samples must be >= 0, got {max_samples}")
        behind = self.written - self.read
        if behind > self.size:
            self.overruns += behind - self.size
            self.read = self.written - self.size
            behind = self.size
        n = behind if max_samples is None else min(behind, max_samples)
        start = self.read % self.size
        end = start + n
        if end <= self.size:
            values, stamps = self.buffer[start:end].copy(), self.buffer_t[start:end].copy()
            if release and self.is_text:
                self.buffer[start:end] = ""
        else:
            wrap = end - self.size
            values = np.concatenate((self.buffer[start:], self.buffer[:wrap]))
            stamps = np.concatenate((self.buffer_t[start:], self.buffer_t[:wrap]))
            if release and self.is_text:
                self.buffer[start:] = ""
                self.buffer[:wrap] = ""
        self.read += n
        return values, stamps

    def last(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The newest `n` samples (at most those really written), oldest first (copies)."""
        if not 0 <= n <= self.size:
            raise ValueError(f"ask for 0..{self.size} samples (the ring), got {n}")
        n = min(n, self.n_buffered)
        index = (self.curr_i - n + np.arange(n)) % self.size
        return self.buffer[index], self.buffer_t[index]

    def unfold(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole ring oldest first, initial fill included (Dareplane's semantics)."""
        i = self.curr_i
        return (
            np.concatenate((self.buffer[i:], self.buffer[:i])),
            np.concatenate((self.buffer_t[i:], self.buffer_t[:i])),
        )

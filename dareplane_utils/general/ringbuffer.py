"""RingBuffer (Dareplane's API): a fixed number of samples and their times, oldest overwritten.

`buffer` is (n, ...) of `dtype` (float32 by default), `buffer_t` (n,) float64; `curr_i` is the
next slot to write; `unfold_buffer()` / `unfold_buffer_t()` return the whole ring oldest first.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


class RingBuffer:
    def __init__(self, shape: tuple[int, ...], dtype: type | str = np.float32):
        self.buffer = np.zeros(shape, dtype=dtype)
        self.buffer_t = np.zeros(shape[0])
        self.last_t: float = 0
        self.curr_i = 0
        self.logger = logger

    def add_samples(self, samples, times) -> None:
        """Append samples (first axis = samples) and their times; only the newest n are kept."""
        if len(samples) == 0 or len(times) == 0:
            self.logger.warning(f"Received empty data {samples=}, {times=}, not adding to buffer")
            return
        size = self.buffer.shape[0]
        if len(samples) > size:
            self.logger.warning(
                f"Received {len(samples)} samples for a buffer of {size}: keeping the newest"
            )
            samples, times = samples[-size:], times[-size:]
        slices_buffer, slices_samples, self.curr_i = self.get_insert_slices(len(samples))
        if len(slices_buffer) > 1:
            self.add_split_buffer(slices_buffer, slices_samples, samples, times)
        else:
            self.add_continuous_buffer(slices_buffer, samples, times)
        self.last_t = times[-1]

    def add_split_buffer(self, slice_buffer, slice_samples, samples, times) -> None:
        """Write samples that wrap around the end of the ring (two slices)."""
        for into, taken in zip(slice_buffer, slice_samples, strict=True):
            self.buffer[into] = samples[taken]
            self.buffer_t[into] = times[taken]

    def add_continuous_buffer(self, slice_buffer, samples, times) -> None:
        """Write samples that fit before the end of the ring (one slice)."""
        self.buffer[slice_buffer[0]] = samples
        self.buffer_t[slice_buffer[0]] = times

    # Dareplane's older name for the same operation
    legacy_add_samples = add_samples

    def get_insert_slices(self, len_samples: int) -> tuple[list[slice], list[slice], int]:
        """Where `len_samples` new samples go: (buffer slices, sample slices, next curr_i)."""
        start = self.curr_i
        size = self.buffer.shape[0]
        end = (start + len_samples) % size
        if start < end or end == 0:
            return [slice(start, start + len_samples)], [slice(0, len_samples)], end
        first = size - start
        return [slice(start, None), slice(0, end)], [slice(0, first), slice(first, None)], end

    def unfold_buffer(self) -> np.ndarray:
        """The whole ring, oldest first (the newest sample is [-1])."""
        return np.concatenate([self.buffer[self.curr_i :], self.buffer[: self.curr_i]])

    def unfold_buffer_t(self) -> np.ndarray:
        return np.concatenate([self.buffer_t[self.curr_i :], self.buffer_t[: self.curr_i]])

"""FilterBank (Dareplane's API): band-pass filter multi-channel chunks, keep the result in a ring.

`filter(data, times)` runs each band's Butterworth filter (second-order sections, state kept
between chunks, so chunked and whole-signal filtering agree) and appends (n, channels, bands)
to `ring_buffer`; `get_data()` returns the samples filtered since the start, transformed by
`output`: "signal" (as is), "square", or "abs_ma" (mean of |x| over the last `n_lookback`
samples). Needs scipy (`pip install raceplane[dareplane]`).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from scipy.signal import butter, sosfilt, sosfilt_zi

from dareplane_utils.general.ringbuffer import RingBuffer

FILTER_MAP = {"butter": butter}


class FilterBufferOverflow(Exception):
    pass


class FilterBank:
    def __init__(
        self,
        bands: dict[str, list[float]],
        order: int = 8,
        filter_type: str = "butter",
        sfreq: int = 1000,
        output: str = "signal",
        n_in_channels: int = 1,
        filter_buffer_s: float = 1,
        n_lookback: int = 5,
    ):
        if filter_type not in FILTER_MAP:
            raise ValueError(f"Unknown filter type: {filter_type}; known: {list(FILTER_MAP)}")
        self.sfreq = sfreq
        self.output = output
        self.n_in_channels = n_in_channels
        self.ch_names = [f"ch_{i}" for i in range(n_in_channels)]
        self.bands = bands
        self.n_lookback = n_lookback
        self.filter_type = filter_type
        self.sos = {
            band: FILTER_MAP[filter_type](
                order, (low, high), btype="bandpass", output="sos", fs=sfreq
            )
            for band, (low, high) in bands.items()
        }
        # sosfilt's initial state, one column per channel: (sections, 2, channels)
        self.zis = {
            band: np.repeat(sosfilt_zi(sos)[:, :, np.newaxis], n_in_channels, axis=2)
            for band, sos in self.sos.items()
        }
        self.ring_buffer = RingBuffer((int(sfreq * filter_buffer_s), n_in_channels, len(bands)))
        self.output_posprocessing_map = {
            "abs_ma": partial(abs_moving_average, n_lookback=n_lookback),
            "signal": noop,
            "square": np.square,
        }
        self.output_transform = self.output_posprocessing_map[output]
        self.n_new = 0

    def filter(self, data: np.ndarray, times: np.ndarray) -> None:
        """Filter a chunk (n_samples, n_in_channels) and append it to the ring."""
        filtered = np.empty((data.shape[0], self.n_in_channels, len(self.sos)))
        for i, (band, sos) in enumerate(self.sos.items()):
            filtered[:, :, i], self.zis[band] = sosfilt(sos, data, axis=0, zi=self.zis[band])
        self.ring_buffer.add_samples(filtered, times)
        self.n_new += data.shape[0]

    def get_data(self) -> np.ndarray:
        """The newest `n_new` filtered samples, after the output transform."""
        history = self.ring_buffer.unfold_buffer()[-(self.n_new + self.n_lookback) :]
        return self.output_transform(history)[-self.n_new :]


def abs_moving_average(data: np.ndarray, n_lookback: int = 5) -> np.ndarray:
    """Mean of |x| over each window of `n_lookback` samples along axis 0 (complete windows
    only: len(data) - n_lookback + 1 rows, as pandas' rolling mean without its NaNs)."""
    sums = np.cumsum(np.abs(data), axis=0)
    sums = np.concatenate([np.zeros((1, *data.shape[1:])), sums])
    return (sums[n_lookback:] - sums[:-n_lookback]) / n_lookback


def noop(data: np.ndarray, *args) -> np.ndarray:
    return data

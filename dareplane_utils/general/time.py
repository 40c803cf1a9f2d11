"""`sleep_s`: a sleep that lands on time (Dareplane's API): sleep most of it, spin the rest.

`time.sleep` overshoots by up to a scheduler tick; for the last stretch (the larger of 30 ms
and 10% of the wait) `sleep_s` spins on `perf_counter`, trading CPU for accuracy.
"""

from __future__ import annotations

import time


def sleep_s(s: float, partial_sleep_threshold: float = 0.0005, nsteps: int = 30) -> None:
    """Wait `s` seconds: coarse sleeps in `nsteps` slices first (when `s` exceeds
    `partial_sleep_threshold`), then spin until the time is up."""
    start = time.perf_counter()
    if s >= partial_sleep_threshold:
        partial_sleep(s, start, nsteps)
    full_speed(s, start)


def partial_sleep(s: float, start: float, nsteps: int = 30) -> None:
    """Sleep in slices of s/nsteps until 30 ms (or 10% of s, if more) before the end."""
    if nsteps <= 4:
        # a slice may overshoot by up to about four times its length
        raise ValueError(f"nsteps must be larger than 4, got {nsteps}")
    coarse_until = start + max(s - 0.03, s * 0.9)
    while time.perf_counter() < coarse_until:
        time.sleep(s / nsteps)


def full_speed(s: float, start: float) -> None:
    """Spin until `s` seconds after `start`."""
    deadline = start + s
    while time.perf_counter() < deadline:
        pass

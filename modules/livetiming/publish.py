"""LSL outlets for a LiveSession's samples (created on first use, so a session without car
data publishes no car data streams), held back by the broadcast delay if one is set.

The delay (`delay_s`, changeable while publishing) holds every sample that long before it
goes out, so the dashboard matches a TV picture that runs behind the timing feed. Samples keep
their order and their spacing: each goes at (the time it was handed in + the delay as it is
when it is due), one after the other from one thread.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import pylsl

from dareplane_utils.stream_watcher.outlets import StreamSpec, make_outlet, push_frame, push_json
from modules.stream_catalogue import STREAMS

from .state import Sample


def stream_spec(name: str, producer: str) -> StreamSpec:
    spec = STREAMS[name].spec(producer)
    return replace(spec, metadata={**spec.metadata, "producer": "livetiming"})


MAX_DELAY_S = 600.0


def check_delay(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"delay must be a number of seconds, not {value!r}")
    if not 0 <= value <= MAX_DELAY_S:
        raise ValueError(f"delay must be 0..{MAX_DELAY_S:g} s, not {value!r}")
    return float(value)


class Publisher:
    def __init__(self, producer: str = "livetiming", delay_s: float = 0.0) -> None:
        self.producer = producer
        self.outlets: dict[str, pylsl.StreamOutlet] = {}
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()  # STATUS reads the counts while a job publishes
        self.delay_s = check_delay(delay_s)
        self._held: collections.deque[tuple[float, Sample]] = collections.deque()
        self._wake = threading.Condition()
        self._closed = False
        self._sender: threading.Thread | None = None

    def set_delay(self, seconds: Any) -> float:
        """Change the broadcast delay; samples held now go at their new time."""
        with self._wake:
            self.delay_s = check_delay(seconds)
            self._wake.notify()
        return self.delay_s

    def held(self) -> int:
        with self._wake:
            return len(self._held)

    def close(self) -> None:
        """Stop the delay's thread (what it still holds is not published)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._sender is not None:
            self._sender.join()

    def outlet(self, name: str) -> pylsl.StreamOutlet:
        outlet = self.outlets.get(name)
        if outlet is None:
            outlet = self.outlets[name] = make_outlet(stream_spec(name, self.producer))
        return outlet

    def wait_for_consumers(
        self,
        names: Iterable[str],
        timeout_s: float,
        stop: threading.Event | None = None,
    ) -> list[str]:
        """Open these outlets and wait until each has a reader (samples pushed before an inlet
        connects never reach it); returns the streams still without a reader at the timeout
        (or when `stop` is set)."""
        stop = stop or threading.Event()
        outlets = {name: self.outlet(name) for name in names}
        deadline = time.monotonic() + timeout_s
        while True:
            missing = [name for name, outlet in outlets.items() if not outlet.have_consumers()]
            if not missing or time.monotonic() >= deadline or stop.wait(0.05):
                break
        return missing

    def publish(self, sample: Sample) -> None:
        with self._wake:
            # With no delay ever set: at once. Once the delay's thread runs, every sample goes
            # through it, so none overtakes one held (or being sent) before it.
            if self.delay_s > 0 or self._sender is not None:
                self._held.append((time.monotonic(), sample))
                if self._sender is None:
                    self._sender = threading.Thread(
                        target=self._send_held, name="livetiming delay", daemon=True
                    )
                    self._sender.start()
                self._wake.notify()
                return
        self._push(sample)

    def _send_held(self) -> None:
        while True:
            with self._wake:
                while not self._closed:
                    if self._held:
                        wait = self._held[0][0] + self.delay_s - time.monotonic()
                        if wait <= 0:
                            break
                        self._wake.wait(wait)
                    else:
                        self._wake.wait()
                if self._closed:
                    return
                _, sample = self._held.popleft()
            self._push(sample)

    def _push(self, sample: Sample) -> None:
        outlet = self.outlet(sample.stream)
        if isinstance(sample.value, np.ndarray):
            push_frame(outlet, sample.value)
        else:
            push_json(outlet, sample.value)
        with self._lock:
            self.counts[sample.stream] = self.counts.get(sample.stream, 0) + 1

    def status(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

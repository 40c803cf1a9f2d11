"""LSL outlets for a LiveSession's samples (created on first use, so a session without car
data publishes no car data streams)."""

from __future__ import annotations

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


class Publisher:
    def __init__(self, producer: str = "livetiming") -> None:
        self.producer = producer
        self.outlets: dict[str, pylsl.StreamOutlet] = {}
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()  # STATUS reads the counts while a job publishes

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
        outlet = self.outlet(sample.stream)
        if isinstance(sample.value, np.ndarray):
            push_frame(outlet, sample.value)
        else:
            push_json(outlet, sample.value)
        with self._lock:
            self.counts[sample.stream] = self.counts.get(sample.stream, 0) + 1

    def status(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.counts)

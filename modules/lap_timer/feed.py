"""The lap timer's edges on LSL: StreamWatchers on the decoder's streams in, two outlets out.

One thread polls every input watcher, merges what arrived by LSL timestamp (so a flashback
event and the frames around it are taken in the order the decoder received them) and hands
each sample to the LapTimer. Streams that are not there yet are looked for again every second,
so the lap timer may start before the decoder (liblsl itself recovers a restarted decoder).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Any

import numpy as np

from dareplane_utils.stream_watcher.lsl_stream_watcher import StreamNotFoundError, StreamWatcher
from dareplane_utils.stream_watcher.outlets import StreamSpec, make_outlet, push_json

from .inputs import CAR_STATUS, LAP_DATA, NUMERIC, STREAMS, Inputs
from .timer import LapTimer

# Rings big enough to take a burst of a flat-out replay between two polls (about 22 MB each);
# CarStatus too, since a lap's tyre is read in time order with the LapData around it.
RING_SAMPLES = {LAP_DATA: 4096, CAR_STATUS: 4096}
JSON_RING_SAMPLES = 8192
RETRY_CONNECT_S = 1.0


class Outputs:
    """The `raceplane.laps` and `raceplane.standings` outlets."""

    def __init__(self, producer: str) -> None:
        self.laps = make_outlet(StreamSpec.json("raceplane.laps", f"raceplane.laps@{producer}"))
        self.standings = make_outlet(
            StreamSpec.json("raceplane.standings", f"raceplane.standings@{producer}")
        )

    def publish_lap(self, sample: dict[str, Any]) -> None:
        push_json(self.laps, sample)

    def publish_standings(self, sample: dict[str, Any]) -> None:
        push_json(self.standings, sample)


class Feed:
    """Polls the decoder's streams into a LapTimer from a thread of its own."""

    def __init__(self, timer: LapTimer, logger: logging.Logger, poll_s: float = 0.002) -> None:
        self.timer = timer
        self.logger = logger
        self.poll_s = poll_s
        self.inputs = Inputs(timer)
        self.watchers = {
            name: StreamWatcher(
                name,
                logger=logger,
                buffer_size_samples=RING_SAMPLES.get(name, JSON_RING_SAMPLES),
            )
            for name in STREAMS
        }
        self.connected: set[str] = set()
        self._ready: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.samples = dict.fromkeys(STREAMS, 0)
        self.rejected = dict.fromkeys(STREAMS, 0)
        self.lost = dict.fromkeys(STREAMS, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lap_timer feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for watcher in self.watchers.values():
            watcher.disconnect()

    def status(self) -> dict[str, Any]:
        return {
            "connected": sorted(self.connected),
            "samples": dict(self.samples),
            "rejected": {k: v for k, v in self.rejected.items() if v},
            "lost": {k: v for k, v in self.lost.items() if v},
        }

    def _run(self) -> None:
        # One finder per stream: each waits in liblsl's discovery, and none holds up the others.
        finders = [
            threading.Thread(target=self._find, args=(name,), name=f"find {name}", daemon=True)
            for name in self.watchers
        ]
        for finder in finders:
            finder.start()
        while not self._stop.is_set():
            while not self._ready.empty():
                self.connected.add(self._ready.get())
            try:
                handled = self.poll()
            except Exception:  # one bad cycle must not end the lap timer
                self.logger.exception("lap timer feed: poll failed")
                handled = 0
            if not handled:
                self._stop.wait(self.poll_s)
        for finder in finders:
            finder.join(timeout=5)

    def _find(self, name: str) -> None:
        """Look for one stream until it is there, apart from the poll loop."""
        while not self._stop.is_set():
            if self._connect(name, self.watchers[name]):
                self._ready.put(name)
                return
            self._stop.wait(RETRY_CONNECT_S)

    def _connect(self, name: str, watcher: StreamWatcher) -> bool:
        try:
            watcher.connect_to_stream(timeout=1.0)
            if name in NUMERIC:
                self.inputs.set_channels(name, watcher.channel_names)
        except StreamNotFoundError:
            return False
        except (ValueError, KeyError) as error:
            # A stream by that name but not the decoder's layout: say so, keep looking.
            self.logger.error("cannot read %s: %s", name, error)
            watcher.disconnect()
            return False
        self.logger.info("lap timer reads %s", name)
        return True

    def poll(self) -> int:
        """Hand everything that arrived since the last poll to the timer; returns how many."""
        batch: list[tuple[float, str, Any]] = []
        for name in self.connected:
            watcher = self.watchers[name]
            watcher.update()
            n = watcher.n_new
            if not n:
                continue
            watcher.n_new = 0
            ring = len(watcher.buffer)
            if n > ring:
                self.lost[name] += n - ring
                self.logger.warning("%s: %d samples overran the ring unread", name, n - ring)
                n = ring
            data, stamps = watcher.last(n)
            self.samples[name] += n
            for stamp, row in zip(stamps, data, strict=True):
                try:
                    batch.append((float(stamp), name, row if name in NUMERIC else _json(row)))
                except ValueError as error:
                    self._refused(name, error)
        for name, error in self.inputs.handle_batch(batch):
            self._refused(name, error)
        return len(batch)

    def _refused(self, name: str, error: Exception) -> None:
        self.rejected[name] += 1
        self.logger.warning("%s: sample refused: %s", name, error)


def _json(row: Any) -> dict[str, Any]:
    text = row[0] if isinstance(row, list | tuple | np.ndarray) else row
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value

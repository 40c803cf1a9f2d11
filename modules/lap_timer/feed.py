"""The lap timer's edges on LSL: StreamWatchers on the decoder's streams in, two outlets out.

Two threads. The pull thread only moves what arrived out of the watchers' rings (keeping just
the channels the lap timer reads) into a queue, so it stays far ahead of any ring wrapping: a
StreamWatcher's update() takes everything liblsl has queued into a ring of fixed size, and
samples left behind while the lap timer is busy would otherwise be overwritten unread. The
work thread takes what is queued, merges it by LSL timestamp (so a flashback event and the
frames around it are taken in the order the decoder received them) and hands each sample to the
LapTimer. Streams that are not there yet are looked for until they appear, so the lap timer may
start before the decoder (liblsl itself recovers a restarted decoder). Each look waits at most
FIND_WAIT_S, so stopping (CLOSE, SIGTERM) never waits on a discovery.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any

import numpy as np
import pylsl

from dareplane_utils.stream_watcher.health import InputHealth, log_transitions
from dareplane_utils.stream_watcher.lsl_stream_watcher import StreamNotFoundError, StreamWatcher
from dareplane_utils.stream_watcher.outlets import StreamSpec, make_outlet, push_json
from modules.expected_inputs import expect

from .inputs import CAR_STATUS, LAP_DATA, NUMERIC, STREAMS, Inputs, needed_channels
from .timer import LapTimer

# Rings only have to bridge the pull thread's wake-ups (a few ms); these hold seconds of a
# flat-out replay (LapData and CarStatus rows are ~5 kB, so ~22 MB each).
RING_SAMPLES = {LAP_DATA: 4096, CAR_STATUS: 4096}
JSON_RING_SAMPLES = 8192
# One discovery round of a stream not there yet; also the longest a stop waits on a finder.
FIND_WAIT_S = 0.1
CONNECT_TIMEOUT_S = 2.0
# How long the work thread waits for something to arrive before checking for a stop.
WAIT_S = 0.05
HEALTH_CHECK_S = 0.5  # how often the pull thread asks whether an input is missing or stale


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
    """Reads the decoder's streams into a LapTimer from threads of its own."""

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
        self._columns: dict[str, np.ndarray] = {}
        self._ready: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._arrived: queue.SimpleQueue[tuple[str, np.ndarray, np.ndarray]] = queue.SimpleQueue()
        self.samples = dict.fromkeys(STREAMS, 0)
        self.rejected = dict.fromkeys(STREAMS, 0)
        self.lost = dict.fromkeys(STREAMS, 0)
        # Fed by the pull thread only: what was found, what arrived; says what is missing.
        self.health = InputHealth(expect(STREAMS), time.time())
        self._stop = threading.Event()
        self._finders = [
            threading.Thread(target=self._find, args=(name,), name=f"find {name}", daemon=True)
            for name in self.watchers
        ]
        self._puller = threading.Thread(target=self._pull_loop, name="lap_timer pull", daemon=True)
        self._worker = threading.Thread(target=self._work_loop, name="lap_timer feed", daemon=True)

    def start(self) -> None:
        # One finder per stream: none waits on another's discovery.
        for thread in (*self._finders, self._puller, self._worker):
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in (*self._finders, self._puller, self._worker):
            thread.join(timeout=5)
        for watcher in self.watchers.values():
            watcher.disconnect()

    def status(self) -> dict[str, Any]:
        return {
            "connected": sorted(self.connected),
            "samples": dict(self.samples),
            "rejected": {k: v for k, v in self.rejected.items() if v},
            "lost": {k: v for k, v in self.lost.items() if v},
            # Pulled chunks the work thread has not taken yet: growing means it falls behind.
            "queued": self._arrived.qsize(),
            **self.health.status(),  # missing, stale, problems, streams
        }

    def _find(self, name: str) -> None:
        """Look for one stream until it is there, apart from the other threads."""
        predicate = f"name='{name}'"
        while not self._stop.is_set():
            # A short look, then the watcher connects to what answered (and to the newest if
            # several do); the stop flag is checked between looks.
            if not pylsl.resolve_bypred(predicate, 1, FIND_WAIT_S):
                continue
            if self._stop.is_set():
                return
            if self._connect(name, self.watchers[name]):
                self._ready.put(name)
                return
            self._stop.wait(FIND_WAIT_S)

    def _connect(self, name: str, watcher: StreamWatcher) -> bool:
        try:
            watcher.connect_to_stream(timeout=CONNECT_TIMEOUT_S)
            if name in NUMERIC:
                labels = watcher.channel_names
                columns = needed_channels(name, labels)
                self.inputs.set_channels(name, [labels[i] for i in columns])
                self._columns[name] = np.array(columns)
        except StreamNotFoundError:
            return False
        except (ValueError, KeyError) as error:
            # A stream by that name but not the decoder's layout: say so, keep looking.
            self.logger.error("cannot read %s: %s", name, error)
            watcher.disconnect()
            return False
        self.logger.info("lap timer reads %s", name)
        return True

    def _pull_loop(self) -> None:
        checked = 0.0
        while not self._stop.is_set():
            while not self._ready.empty():
                name = self._ready.get()
                self.connected.add(name)
                self._health(self.health.found(name, time.time()))
            if time.monotonic() - checked >= HEALTH_CHECK_S:
                checked = time.monotonic()
                self._health(self.health.check(time.time()))
            try:
                pulled = self.pull()
            except Exception:  # one bad cycle must not end the lap timer
                self.logger.exception("lap timer feed: pull failed")
                pulled = 0
            if not pulled:
                self._stop.wait(self.poll_s)

    def pull(self) -> int:
        """Move what arrived on every connected stream into the work queue; returns how many."""
        pulled = 0
        for name in list(self.connected):
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
            if name in self._columns:
                data = data[:, self._columns[name]]
            else:
                _release(watcher, n)
            self._arrived.put((name, data, stamps))
            self.samples[name] += n
            self._health(self.health.arrived(name, n, time.time()))
            pulled += n
        return pulled

    def _health(self, transitions: list) -> None:
        log_transitions(self.logger, "lap timer", transitions)

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            try:
                chunks = [self._arrived.get(timeout=WAIT_S)]
            except queue.Empty:
                continue
            while not self._arrived.empty():
                chunks.append(self._arrived.get())
            try:
                self.handle(chunks)
            except Exception:  # one bad batch must not end the lap timer
                self.logger.exception("lap timer feed: handling failed")

    def handle(self, chunks: list[tuple[str, np.ndarray, np.ndarray]]) -> int:
        """Hand pulled samples of any streams to the timer, in time order; returns how many."""
        batch: list[tuple[float, str, Any]] = []
        for name, data, stamps in chunks:
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


def _release(watcher: StreamWatcher, n: int) -> None:
    """Drop the ring's references to the newest `n` strings, which have just been taken.

    A JSON ring otherwise keeps every string it held until it wraps: at the game's rates a
    ring of Session (~19 kB, 2/s) and SessionHistory (~13 kB, 20/s) texts grew by megabytes a
    lap for most of a race. Taken once, they are only needed in the work queue.
    """
    size = len(watcher.buffer)
    watcher.buffer[(watcher.curr_i - n + np.arange(n)) % size] = ""


def _json(row: Any) -> dict[str, Any]:
    text = row[0] if isinstance(row, list | tuple | np.ndarray) else row
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value

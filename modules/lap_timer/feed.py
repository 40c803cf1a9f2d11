"""The lap timer's edges on LSL: StreamWatchers on the decoder's streams in, two outlets out.

Two threads. The pull thread takes every sample exactly once from the watchers (StreamWatcher
.pull: bounded by the ring, a backlog waits in liblsl, overruns counted), keeping just the
channels the lap timer reads, into a queue. The work thread merges what is queued in the
producer's own order (SequenceMerge on session uid and overall frame identifier, with a
watermark for a stream that lags or stops; docs/DESIGN.md "Order") and hands each sample to
the LapTimer, whatever the arrival order or timing of the streams. Streams that are not there
yet are looked for until they appear, so the lap timer may start before the decoder (liblsl
itself recovers a restarted decoder). Each look waits at most FIND_WAIT_S, so stopping (CLOSE,
SIGTERM) never waits on a discovery.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from typing import Any

import numpy as np
import orjson
import pylsl

from dareplane_utils.stream_watcher.health import InputHealth, log_transitions
from dareplane_utils.stream_watcher.lsl_stream_watcher import StreamNotFoundError, StreamWatcher
from dareplane_utils.stream_watcher.merge import SequenceMerge
from dareplane_utils.stream_watcher.outlets import StreamSpec, make_outlet, push_json
from modules.expected_inputs import expect

from .inputs import (
    CAR_STATUS,
    LAP_DATA,
    MERGE_ORDER,
    NUMERIC,
    SESSION_HISTORY,
    STREAMS,
    Inputs,
    needed_channels,
)
from .timer import LapTimer

# pull() never overruns a ring (a backlog waits in liblsl's queue), so a ring is only the size
# of one bite: LapData and CarStatus rows are ~5 kB.
RING_SAMPLES = {LAP_DATA: 1024, CAR_STATUS: 1024}
JSON_RING_SAMPLES = 1024
# One discovery round of a stream not there yet; also the longest a stop waits on a finder.
FIND_WAIT_S = 0.1
CONNECT_TIMEOUT_S = 2.0
# How long the work thread waits for something to arrive before checking for a stop.
WAIT_S = 0.05
# The merge: how long a sample waits for a dense stream (LapData, CarStatus: one sample per
# game frame) that lags before that stream is taken as stopped, and for a sparse one (events,
# session packets), whose silence is normal, to cover the skew between two inlets.
WATERMARK_S = 1.0
SPARSE_WAIT_S = 0.01
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
        # Streams found (about to be subscribed): the merge waits for them from then on, so a
        # sample of a stream still subscribing is not overtaken by samples of the others.
        self._found: set[str] = set()
        self.merge = SequenceMerge(
            MERGE_ORDER, watermark_s=WATERMARK_S, sparse_wait_s=SPARSE_WAIT_S
        )
        self._merging: set[str] = set()  # connected inputs the merge waits for (work thread)
        self._merge_status: dict[str, Any] = {}
        self._columns: dict[str, np.ndarray] = {}
        self._ready: queue.SimpleQueue[str] = queue.SimpleQueue()
        # (stream, rows, time.monotonic() when the pull began)
        self._arrived: queue.SimpleQueue[tuple[str, np.ndarray, float]] = queue.SimpleQueue()
        # stream -> when a pull began that emptied its inlet (the merge's waits count from it)
        self._drained_at: dict[str, float] = {}
        self._histories = _RepeatedJson()  # work thread only
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
            # The producer's sequence of the last sample applied: a flat-out replay waits on it.
            **self._merge_status,
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
            self._found.add(name)
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
            overruns = watcher.overruns
            began = time.monotonic()
            data, stamps = watcher.pull(release=True)
            self.lost[name] += watcher.overruns - overruns
            n = len(stamps)
            if n:
                if name in self._columns:
                    data = data[:, self._columns[name]]
                self._arrived.put((name, data, began))
                self.samples[name] += n
                self._health(self.health.arrived(name, n, time.time()))
                pulled += n
            if n < len(watcher.buffer):  # less than a bite: liblsl had no more
                self._drained_at[name] = began  # after the put: the work thread has the rows
        return pulled

    def _health(self, transitions: list) -> None:
        log_transitions(self.logger, "lap timer", transitions)

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            due = self.merge.next_due()
            wait = WAIT_S if due is None else min(WAIT_S, max(self.poll_s, due - time.monotonic()))
            chunks = []
            with contextlib.suppress(queue.Empty):
                chunks.append(self._arrived.get(timeout=wait))
            try:
                self.handle(chunks)
            except Exception:  # one bad batch must not end the lap timer
                self.logger.exception("lap timer feed: handling failed")

    def handle(self, chunks: list[tuple[str, np.ndarray, float]]) -> int:
        """Merge pulled samples of any streams in the producer's order and hand those that may
        go to the timer; returns how many were handed on."""
        for name in self._found - self._merging:
            self.merge.add_input(name)
            self._merging.add(name)
        # Which inlets were empty when, read before taking the queue: every row pulled before
        # those times is in the queue by now.
        drained = dict(self._drained_at)
        while not self._arrived.empty():
            chunks.append(self._arrived.get())
        unordered: list[tuple[str, Any]] = []
        late = self.merge.counts["late"]
        for name, data, pulled_at in chunks:
            parse = self._histories.parse if name == SESSION_HISTORY else _json
            for row in data:
                try:
                    sample = row if name in NUMERIC else parse(row)
                except ValueError as error:
                    self._refused(name, error)
                    continue
                key = self.inputs.sequence(name, sample)
                if key is None:
                    unordered.append((name, sample))  # says no order: refused when handled
                else:
                    self.merge.push(name, key[0], key[1], sample, pulled_at, contiguous=key[2])
        for name, at in drained.items():
            self.merge.drained(name, at)
        released = unordered + self.merge.release()
        if self.merge.counts["late"] > late:
            self.logger.warning(
                "%d samples came after later ones had been applied (late, by stream: %s)",
                self.merge.counts["late"] - late,
                self.merge.late,
            )
        if released:
            for name, error in self.inputs.handle_batch(released):
                self._refused(name, error)
        applied = self.merge.applied
        self._merge_status = {
            "applied": None
            if applied is None
            else {"session_uid": applied[0], "frame": applied[1]},
            "merge": {
                **self.merge.counts,
                "held": self.merge.pending,
                "stale": self.merge.stale,
                "late_by_stream": dict(self.merge.late),
            },
        }
        return len(released)

    def _refused(self, name: str, error: Exception) -> None:
        self.rejected[name] += 1
        self.logger.warning("%s: sample refused: %s", name, error)


class _RepeatedJson:
    """Parses JSON samples whose content after the header mostly repeats (the decoder's
    SessionHistory goes round the cars: ~97 % of its 12 kB texts say what that car's last one
    said): the part after the header is parsed once per distinct text and shared (the lap
    timer only reads these objects), the header each time."""

    PREFIX = '{"header":{'
    LIMIT = 512  # distinct bodies kept (a few per car)

    def __init__(self) -> None:
        self._bodies: dict[str, dict[str, Any]] = {}

    def parse(self, row: Any) -> dict[str, Any]:
        text = row[0] if isinstance(row, list | tuple | np.ndarray) else row
        cut = text.find("},", len(self.PREFIX)) if text.startswith(self.PREFIX) else -1
        if cut < 0:
            return _json(row)
        try:
            # Valid JSON up to the first "}," only if that is the header object's own end (a
            # "}," inside a string leaves the text cut in the string).
            header = orjson.loads(text[len(self.PREFIX) - 1 : cut + 1])
        except orjson.JSONDecodeError:
            return _json(row)
        body_text = text[cut + 2 :]
        body = self._bodies.get(body_text)
        if body is None:
            whole = _json(row)
            if '"header":' not in body_text:  # a second header would make the split wrong
                if len(self._bodies) >= self.LIMIT:
                    self._bodies.clear()
                self._bodies[body_text] = {k: v for k, v in whole.items() if k != "header"}
            return whole
        return {"header": header, **body}


def _json(row: Any) -> dict[str, Any]:
    text = row[0] if isinstance(row, list | tuple | np.ndarray) else row
    try:
        value = orjson.loads(text)  # the fast path: a third of json's cost
    except orjson.JSONDecodeError:  # json decides (it takes integers beyond 64 bits, NaN)
        value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value

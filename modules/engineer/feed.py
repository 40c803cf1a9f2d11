"""The engineer's edges on LSL: one inlet thread per input stream, one worker, two outlets.

Event-driven throughout: each inlet thread blocks in liblsl until a sample arrives
(`pull_sample` with a timeout only so that a stop is seen), then takes whatever else is queued
(`pull_chunk(0)`), and puts it on one queue; the worker blocks on that queue and hands every
sample to the `Engineer`. After a LapData sample it publishes the picture of every car on
`raceplane.engineer` (at most `rate_hz` times a second; the sample carries the LapData's LSL
time, so a consumer can tell how old the data is), and each lap as it is recorded; whenever a
lap ends or the safety car comes or goes, every running car's rejoin on `raceplane.pit_rejoin`.
A stream not there yet is looked for until it appears, and STATUS says which are missing.
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

from dareplane_utils.stream_watcher.outlets import StreamSpec, make_outlet, push_json
from modules.stream_catalogue import STREAMS as CATALOGUE

from .model import LAP_DATA, NUMERIC_FIELDS, PARTICIPANTS, SESSION, Engineer

JSON_INPUTS = (SESSION, PARTICIPANTS)
INPUTS = (*NUMERIC_FIELDS, *JSON_INPUTS)
FIND_WAIT_S = 0.5
PULL_WAIT_S = 0.2  # a blocked pull wakes this often to see a stop
# Rows per pull_chunk: the array is allocated for this many, so a small one stays cheap (1024
# rows of ~700 channels were a 5.7 MB allocation per pull, nearly always for none).
MAX_CHUNK = 16


class Outputs:
    def __init__(self, producer: str) -> None:
        self.engineer = make_outlet(
            StreamSpec.json("raceplane.engineer", f"raceplane.engineer@{producer}")
        )
        self.pit_rejoin = make_outlet(
            StreamSpec.json("raceplane.pit_rejoin", f"raceplane.pit_rejoin@{producer}")
        )


class Feed:
    def __init__(
        self, engineer: Engineer, outputs: Outputs, logger: logging.Logger, rate_hz: float = 20.0
    ) -> None:
        self.engineer = engineer
        self.outputs = outputs
        self.logger = logger
        self.period_s = 1.0 / rate_hz
        self.rate_hz = rate_hz
        self._queue: queue.SimpleQueue[tuple[str, Any, float] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.connected: set[str] = set()
        self.samples = dict.fromkeys(INPUTS, 0)
        self.bad_json = 0
        self.published = {"engineer": 0, "laps": 0, "pit_rejoin": 0}
        self._next_publish = 0.0
        self.started = time.monotonic()
        self.lock = threading.Lock()  # the worker's changes against STATUS/PICTURE readers

    def start(self) -> None:
        for name in INPUTS:
            thread = threading.Thread(target=self._inlet_loop, args=(name,), daemon=True)
            thread.start()
            self._threads.append(thread)
        worker = threading.Thread(target=self._work, name="engineer-work", daemon=True)
        worker.start()
        self._threads.append(worker)

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=2.0)

    # ---- inlets ------------------------------------------------------------------------------

    def _inlet_loop(self, name: str) -> None:
        inlet = self._find(name)
        if inlet is None:
            return
        self.connected.add(name)
        self.logger.info("engineer reads %s", name)
        is_json = name in JSON_INPUTS
        while not self._stop.is_set():
            try:
                sample, stamp = inlet.pull_sample(timeout=PULL_WAIT_S)
                if sample is None:
                    continue
                items = [(sample, stamp)]
                while True:  # whatever else is queued, a small chunk at a time
                    rows, stamps = inlet.pull_chunk(timeout=0.0, max_samples=MAX_CHUNK)
                    items += zip(rows, stamps, strict=True)
                    if len(stamps) < MAX_CHUNK:
                        break
            except pylsl.LostError:
                continue  # liblsl reconnects a restarted producer with the same source_id
            for values, at in items:
                item = values[0] if is_json else np.asarray(values, dtype=float)
                self._queue.put((name, item, at))

    def _find(self, name: str) -> pylsl.StreamInlet | None:
        while not self._stop.is_set():
            found = pylsl.resolve_byprop("name", name, minimum=1, timeout=FIND_WAIT_S)
            if found:
                # Numeric rows as numpy arrays straight from liblsl's buffer: as lists, each
                # ~700-channel row cost a Python float per channel, then an array (issue 18).
                inlet = pylsl.StreamInlet(
                    found[0], max_buflen=30, recover=True, as_numpy=name in NUMERIC_FIELDS
                )
                if name in NUMERIC_FIELDS:
                    labels = CATALOGUE[name].spec("engineer").labels
                    if inlet.info().channel_count() != len(labels):
                        self.logger.error(
                            "%s has %d channels, the catalogue %d: not read",
                            name,
                            inlet.info().channel_count(),
                            len(labels),
                        )
                        return None
                return inlet
        return None

    # ---- the worker --------------------------------------------------------------------------

    def _work(self) -> None:
        for name in NUMERIC_FIELDS:
            self.engineer.set_channels(name, CATALOGUE[name].spec("engineer").labels)
        while True:
            item = self._queue.get()
            if item is None:
                return
            name, value, stamp = item
            self.samples[name] += 1
            with self.lock:
                self._take(name, value, stamp)

    def _take(self, name: str, value: Any, stamp: float) -> None:
        try:
            if name in JSON_INPUTS:
                obj = json.loads(value)
                self.engineer.on_json(name, obj)
            else:
                self.engineer.on_row(name, value)
            self._publish(name, stamp)
        except ValueError:
            self.bad_json += 1
            if self.bad_json == 1:
                self.logger.warning("%s sent a sample that is not JSON", name)
        except Exception:  # one bad sample must not end the engineer
            self.logger.exception("engineer failed on a %s sample", name)

    def _publish(self, name: str, stamp: float) -> None:
        engineer = self.engineer
        for record in engineer.outbox:
            push_json(self.outputs.engineer, record)
            self.published["laps"] += 1
        engineer.outbox.clear()
        if engineer.rejoin_changed:
            engineer.rejoin_changed = False
            push_json(self.outputs.pit_rejoin, engineer.rejoins())
            self.published["pit_rejoin"] += 1
        if name != LAP_DATA:
            return
        now = time.monotonic()
        if now < self._next_publish:
            return
        # On a fixed beat, not "a period after the last": 60 Hz frames then give 20 Hz, not 15.
        self._next_publish = max(self._next_publish + self.period_s, now - self.period_s / 2)
        # Stamped with the LapData's own LSL time: its age is what a consumer wants to know.
        push_json(self.outputs.engineer, {"type": "cars", **engineer.picture()}, timestamp=stamp)
        self.published["engineer"] += 1

    def status(self) -> dict[str, Any]:
        waited = time.monotonic() - self.started
        missing = sorted(set(INPUTS) - self.connected)
        return {
            "rate_hz": self.rate_hz,
            "connected": sorted(self.connected),
            "missing": missing,
            "waiting_s": round(waited, 1) if missing else 0.0,
            "samples": dict(self.samples),
            "bad_json": self.bad_json,
            "published": dict(self.published),
            "session_uid": self.engineer.session_uid,
            "stops_measured": len(self.engineer.stops),
        }

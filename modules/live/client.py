"""Callbacks on a live session: the client's edges (LSL inlets, threads, the run loop).

    client = LiveClient()

    @client.on("laps")
    def show(lap: dict) -> None: ...

    @client.on_telemetry(cars=[0], channels=["speed_kph", "throttle"], rate_hz=10)
    def trace(sample: Telemetry) -> None: ...

    client.run(until=lambda: ..., timeout_s=60)    # or client.start() ... client.stop()
    await client.run_async(...)                     # async def callbacks are awaited here

Every sample of a stream is read exactly once, in order (StreamWatcher.pull). Delivery is
event-driven: each stream has a thread that looks for it, then sleeps in liblsl until samples
arrive and hands their decoded records to an Inbox, on which the delivering thread (or event
loop) sleeps; nothing waits out a polling interval. A synchronous client of one stream skips
the hand-over: its delivering thread sleeps in liblsl itself, so a record costs no more
thread wake-ups than a bare pylsl reader's. Records that arrive together from several
streams are delivered in the order of their LSL timestamps, each stream's own order kept. A
stream whose producer is not there yet is reported (a warning in the log,
`status()["missing"]`) and read from the moment it appears.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dareplane_utils.stream_watcher.lsl_stream_watcher import StreamNotFoundError, StreamWatcher
from modules.live.dispatch import Callback, Callbacks
from modules.live.inbox import Inbox, Item
from modules.live.records import Record
from modules.live.topics import (
    LIVETIMING_STREAM,
    TelemetryPlan,
    decode_json,
    stream_of_fields,
    stream_of_topic,
)

RING_SAMPLES = 8192  # per stream: the most one pull takes from liblsl at once
FIND_ROUND_S = 0.5  # one discovery attempt; stop() waits at most this long for a reader
WAIT_S = 0.1  # a reader's sleep in liblsl between looks at stop(); samples wake it at once
CHECK_S = 0.05  # how often the delivering side looks at `until` and the deadline when idle
MISSING_AFTER_S = 5.0  # a stream not found by then is reported


@dataclass
class _Input:
    """One stream the client reads, and whether it has been found."""

    name: str
    watcher: StreamWatcher
    since: float = field(default_factory=time.monotonic)
    connected: bool = False
    reported_missing: bool = False
    samples: int = 0
    error: str | None = None  # why its reader stopped (the stream lost for good)


class LiveClient:
    """Register callbacks on topics and per-car telemetry, then run."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        missing_after_s: float = MISSING_AFTER_S,
    ) -> None:
        self.logger = logger or logging.getLogger("raceplane.live")
        self.missing_after_s = missing_after_s
        self.callbacks = Callbacks(self.logger)
        self._json_streams: dict[str, set[str]] = {}  # stream -> topics wanted from it
        self._plans: list[tuple[TelemetryPlan, str]] = []  # plan, its callbacks' key
        self._inputs: dict[str, _Input] = {}
        self._inbox = Inbox()
        self._direct: _Input | None = None  # the one stream the delivering thread reads itself
        self._stop = threading.Event()
        self._readers: list[threading.Thread] = []
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---- registering ---------------------------------------------------------------------

    def on(self, topic: str, function: Callback | None = None) -> Any:
        """Call `function(record)` for every record of `topic` (a decorator without
        `function`); the record is a dict with `.topic` and `.time` (LSL) attributes. Topics:
        laps, standings, events, session, participants, decoder, ... (the catalogue's JSON
        streams) or a live-timing topic such as TimingData."""
        stream = stream_of_topic(topic)

        def register(fn: Callback) -> Callback:
            self._refuse_after_start()
            self.callbacks.add(topic, fn)
            self._json_streams.setdefault(stream, set()).add(topic)
            return fn

        return register if function is None else register(function)

    def on_telemetry(
        self,
        cars: Iterable[int],
        channels: Iterable[str],
        rate_hz: float | None = None,
        stream: str | None = None,
        function: Callback | None = None,
    ) -> Any:
        """Call `function(sample: Telemetry)` for each chosen car in each sample of the per-car
        stream holding `channels` (field names: `speed_kph`, `throttle`, ...), at most
        `rate_hz` per car by the game's session time (None: every sample)."""
        plan = TelemetryPlan(
            stream_of_fields(tuple(channels), stream), tuple(cars), tuple(channels), rate_hz
        )
        key = f"telemetry:{plan.stream}#{len(self._plans)}"

        def register(fn: Callback) -> Callback:
            self._refuse_after_start()
            self.callbacks.add(key, fn)
            self._plans.append((plan, key))
            return fn

        return register if function is None else register(function)

    def _refuse_after_start(self) -> None:
        if self._inputs:
            raise RuntimeError("register callbacks before the client runs")

    # ---- running -------------------------------------------------------------------------

    def start(self) -> LiveClient:
        """Look for the streams and deliver records on a thread of the client's own."""
        self._refuse_async()
        self._open(direct=True)
        self._thread = threading.Thread(target=self._loop, name="live-client", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._inbox.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        for reader in self._readers:
            reader.join(timeout=FIND_ROUND_S + WAIT_S + 5)
        for stream in self._inputs.values():
            stream.watcher.disconnect()

    def __enter__(self) -> LiveClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, until: Callable[[], bool] | None = None, timeout_s: float | None = None) -> None:
        """Deliver records in this thread until `until()` is true, `timeout_s` has passed or
        stop() is called; then close the streams."""
        self._refuse_async()
        self._open(direct=True)
        try:
            self._loop(until, timeout_s)
        finally:
            self.stop()

    async def run_async(
        self, until: Callable[[], bool] | None = None, timeout_s: float | None = None
    ) -> None:
        """As run(), in an asyncio loop: async def callbacks are awaited in order."""
        loop = asyncio.get_running_loop()
        arrived = asyncio.Event()
        self._inbox.on_arrival = lambda: loop.call_soon_threadsafe(arrived.set)
        self._open()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while not self._done(until, deadline):
                arrived.clear()  # before take: an arrival after it sets it again
                records = self._inbox.take(0)
                if not records:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(arrived.wait(), self._idle_s(deadline))
                    continue
                for topic, record in records:
                    for pending in self.callbacks.deliver(topic, record):
                        await pending
        finally:
            await asyncio.to_thread(self.stop)

    def status(self) -> dict[str, Any]:
        """Streams read (connected, samples, overruns), streams still missing, records
        delivered per topic, exceptions per callback."""
        with self._lock:
            streams = {
                name: {
                    "connected": s.connected,
                    "samples": s.samples,
                    "overruns": s.watcher.overruns,
                    "error": s.error,
                }
                for name, s in self._inputs.items()
            }
        return {
            "streams": streams,
            "missing": sorted(name for name, s in streams.items() if not s["connected"]),
            "delivered": dict(self.callbacks.delivered),
            "callback_errors": dict(self.callbacks.errors),
        }

    # ---- the loop ------------------------------------------------------------------------

    def _refuse_async(self) -> None:
        if any(inspect.iscoroutinefunction(fn) for fn in self.callbacks.functions()):
            raise TypeError("async def callbacks need `await client.run_async()`")

    def _open(self, direct: bool = False) -> None:
        """Look for the streams, each in a thread of its own that then reads it. `direct`
        (a synchronous client): with one stream, the delivering thread reads it instead."""
        if self._inputs:
            return
        wanted = set(self._json_streams) | {plan.stream for plan, _ in self._plans}
        if not wanted:
            raise RuntimeError("no callbacks registered: use client.on(...) first")
        for name in sorted(wanted):
            watcher = StreamWatcher(name, logger=self.logger, buffer_size_samples=RING_SAMPLES)
            self._inputs[name] = _Input(name, watcher)
        if direct and len(self._inputs) == 1:
            (self._direct,) = self._inputs.values()
        for stream in self._inputs.values():
            reader = threading.Thread(
                target=self._read, args=(stream,), name=f"read-{stream.name}", daemon=True
            )
            self._readers.append(reader)
            reader.start()

    def _read(self, stream: _Input) -> None:
        """One stream's thread: find it, then hand the records of its samples to the inbox as
        they arrive."""
        if not self._find(stream):
            return
        if stream is self._direct:
            self._inbox.wake()  # the delivering thread reads it from here on
            return
        while not self._stop.is_set() and stream.error is None:
            items = self._pull(stream, WAIT_S)
            if items and not self._inbox.put(stream.name, items, self._stop):
                return

    def _pull(self, stream: _Input, timeout: float) -> list[Item]:
        """The records of what arrived on `stream`, sleeping up to `timeout` for a sample."""
        try:
            values, stamps = stream.watcher.pull(
                release=stream.name in self._json_streams, timeout=timeout
            )
        except Exception as error:  # a stream lost for good: said in the log and status()
            stream.error = str(error)
            self.logger.exception("stopped reading LSL stream %s", stream.name)
            return []
        if not len(stamps):
            return []
        with self._lock:
            stream.samples += len(stamps)
        return self._records(stream.name, values, stamps)

    def _find(self, stream: _Input) -> bool:
        while not self._stop.is_set():
            try:
                stream.watcher.connect_to_stream(timeout=FIND_ROUND_S, ambiguity_wait_s=0)
            except StreamNotFoundError:
                if not stream.reported_missing and (
                    time.monotonic() - stream.since >= self.missing_after_s
                ):
                    stream.reported_missing = True
                    self.logger.warning(
                        "no LSL stream %s after %.0f s: is its producer running? (still looking)",
                        stream.name,
                        self.missing_after_s,
                    )
                continue
            for plan, _ in self._plans:
                if plan.stream == stream.name:
                    plan.bind(stream.watcher.channel_names, stream.watcher.channel_units)
            with self._lock:
                stream.connected = True
            if stream.reported_missing:
                self.logger.info("found LSL stream %s", stream.name)
            return True
        return False

    def _records(self, stream: str, values: np.ndarray, stamps: np.ndarray) -> list[Item]:
        """The records of a stream's samples (oldest first), for the topics asked for."""
        items: list[Item] = []
        topics = self._json_streams.get(stream)
        if topics is not None:
            for text, stamp in zip(values[:, 0], stamps, strict=True):
                decoded = decode_json(stream, text)
                if decoded is None:
                    self.logger.warning("%s: a sample that is not a JSON object", stream)
                    continue
                topic, fields = decoded
                if topic in topics:
                    items.append((float(stamp), topic, Record(topic, float(stamp), fields)))
        for plan, key in self._plans:
            if plan.stream == stream:
                rows = np.asarray(values, dtype=float)
                items.extend((sample.time, key, sample) for sample in plan.records(rows, stamps))
        return items

    def _done(self, until: Callable[[], bool] | None, deadline: float | None) -> bool:
        if self._stop.is_set():
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return True
        return bool(until and until())

    def _idle_s(self, deadline: float | None) -> float:
        """How long to sleep for records before looking at `until` and the deadline again."""
        if deadline is None:
            return CHECK_S
        return max(0.0, min(CHECK_S, deadline - time.monotonic()))

    def _loop(
        self, until: Callable[[], bool] | None = None, timeout_s: float | None = None
    ) -> None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        direct = self._direct
        while not self._done(until, deadline):
            if direct is not None and direct.connected and direct.error is None:
                for _, topic, record in self._pull(direct, self._idle_s(deadline)):
                    self.callbacks.deliver(topic, record)
                continue
            for topic, record in self._inbox.take(self._idle_s(deadline)):
                self.callbacks.deliver(topic, record)  # no awaitables: _refuse_async


__all__ = ["LIVETIMING_STREAM", "LiveClient"]

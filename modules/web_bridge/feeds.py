"""LSL into the bridge: finds every `raceplane.*` stream, watches it, feeds LiveState.

Two threads: discovery (resolving blocks for a second, so it runs apart) connects a
StreamWatcher to each stream it has not seen, and the poll loop pulls every watcher every few
milliseconds, turns new samples into LiveState messages and hands them to `publish`. One lock
guards the watchers and the state, so HTTP handlers read a consistent picture; the telemetry
frame the WebSocket clients get is swapped in whole and read without it.

Every stream is read with the exact pull (`StreamWatcher.pull`: each sample once, in order, a
backlog waits in liblsl; overruns counted in STATUS `streams`), and the producer's JSON streams
that carry its sequence (session, participants, events) are handed to the state in that
order (SequenceMerge, docs/DESIGN.md "Order"), not in the order their inlets delivered them:
an event names drivers the participants sample before it introduced, whatever the schedule.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pylsl

from dareplane_utils.stream_watcher.health import InputHealth, log_transitions
from dareplane_utils.stream_watcher.lsl_stream_watcher import (
    StreamLostError,
    StreamNotFoundError,
    StreamWatcher,
)
from dareplane_utils.stream_watcher.merge import SequenceMerge
from modules.expected_inputs import expect
from modules.stream_catalogue import CATALOGUE, USER_PREFIX

from .sources import SESSION_STREAMS, SourceRule, producer_of
from .state import JSON_STREAMS, NUMERIC_FIELDS, LiveState, Message, TelemetryFrame

PREFIX = "raceplane."
# Ring length per stream: 30 s of a 20 Hz game feed, enough for "samples since t" queries.
RING_SAMPLES = 600
# The ring of a JSON stream: short, as texts are large (an engineer picture of 22 cars is ~40 kB
# at 20 Hz, a session packet ~17 kB): 600 of each held ~35 MB of the bridge, growing for minutes
# into a race (issue 18). The state takes what it needs as samples come; the ring serves only
# the observer endpoints. A burst longer than the ring is pulled in several bites in one round.
JSON_RING_SAMPLES = 64
JSON_NAMES = frozenset(s.name for s in CATALOGUE if s.kind == "json")
# The streams the dashboard reads are watched from discovery on. The others (the decoder's
# setups, damage, session history, ...) serve only the observer endpoints: a stream of them is
# opened when a request names it (or asks for every stream) and closed OBSERVE_KEEP_S after the
# last such request. Watched with no reader, each cost the decoder a send and the bridge a
# receive of every sample, and a ring (issue 18). A stream just opened gets FIRST_SAMPLE_S for
# its first sample before the request answers with what there is.
OBSERVE_KEEP_S = 60.0
FIRST_SAMPLE_S = 1.0
POLL_S = 0.005
# Streams with a sample every game frame: the poll thread sleeps on the first one watched
# between rounds; IDLE_WAIT_S: the longest such a sleep (a sparse sample alone, a stop).
DENSE = ("raceplane.car_telemetry", "raceplane.lap_data", "raceplane.motion")
IDLE_WAIT_S = 0.05
TOWER_INTERVAL_S = 0.25
DISCOVER_S = 1.0  # how often discovery looks at what the resolver knows
FORGET_S = 5.0  # a stream not heard from for this long drops out of discovery's view
CONNECT_TIMEOUT_S = 5.0  # a loaded machine can take seconds to answer an inlet's first call
HEALTH_CHECK_S = 0.5  # how often the poll loop asks whether an expected stream is missing
# The producer's JSON streams merged by its sequence, in the order of one step's samples (the
# game's send order). The lap timer's and the engineer's streams are not: they are computed
# from the producer's and come later by design (each is in order on its own inlet).
MERGED = ("raceplane.session", "raceplane.participants", "raceplane.events")
# How long a merged sample waits for an input connected but not heard from yet (or one whose
# numbers happened to rise by one a few times): short, the dashboard shows what comes. A sparse
# input (the normal case) is waited for SPARSE_WAIT_S after the sample arrived, the skew
# between two inlets of one producer.
WATERMARK_S = 0.2
SPARSE_WAIT_S = 0.01
# What the dashboard cannot do without (--expect): the decoder's live picture, the lap timer's.
EXPECTED = (
    "raceplane.car_telemetry",
    "raceplane.lap_data",
    "raceplane.motion",
    "raceplane.session",
    "raceplane.participants",
    "raceplane.events",
    "raceplane.laps",
    "raceplane.standings",
)


@dataclass
class Watched:
    watcher: StreamWatcher
    source_id: str
    created_at: float
    is_json: bool
    samples: int = 0
    last_t: float | None = None
    bad_json: int = 0
    # Samples overwritten in the ring before they were pulled (StreamWatcher.overruns): pull
    # takes from liblsl only what fits, so never seen unless something else fills the ring.
    overrun: int = 0


class Feeds:
    """The bridge's LSL side. `publish(messages, lsl_time)` is called from the poll thread."""

    def __init__(
        self,
        publish: Callable[[list[Message]], None],
        logger: logging.Logger,
        names: list[str] | None = None,
        expected: tuple[str, ...] | list[str] = EXPECTED,
        observe_keep_s: float = OBSERVE_KEEP_S,
    ) -> None:
        self.state = LiveState()
        # Under `lock`: discovery reports what it found, the poll loop what arrived.
        self.health = InputHealth(expect(expected), time.time())
        self.lock = threading.RLock()
        self.publish = publish
        self.logger = logger
        self.only = set(names) if names else None  # None: every raceplane.* stream
        # Watched whenever discovery sees them; the rest only while an observer asks.
        self.always = frozenset(NUMERIC_FIELDS) | JSON_STREAMS | frozenset(expected)
        self.asked: dict[str, float] = {}  # observer-only stream -> when last asked (monotonic)
        self.observe_keep_s = observe_keep_s
        self.seen: dict[str, tuple[str, float]] = {}  # shown streams: (source_id, created_at)
        self.streams: dict[str, Watched] = {}
        self.sources = SourceRule()  # whose session data is shown (guarded by the lock)
        self.merge = _new_merge()  # the producer's JSON samples in its order (poll thread)
        self._late = 0  # merge.counts["late"] already logged
        self.telemetry_t: float | None = None  # LSL time of the newest telemetry row
        self.telemetry_seq = 0  # grows with every telemetry row: clients send only news
        self._moved = 0  # motion rows seen: the map changed
        # Swapped whole by the poll thread, read without the lock by the event loop: a ticker
        # must never wait for a poll round.
        self.frame: TelemetryFrame | None = None
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._discover_loop, name="web-discover", daemon=True),
            threading.Thread(target=self._poll_loop, name="web-poll", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def request_stop(self) -> None:
        """Tell the threads to finish, without waiting for them (see stop)."""
        self._stop.set()

    def stop(self) -> None:
        self.request_stop()
        for thread in self._threads:
            thread.join(timeout=5)
        with self.lock:
            for watched in self.streams.values():
                watched.watcher.disconnect()
            self.streams.clear()

    def rediscover(self) -> list[str]:
        """Drop every watcher (RELOAD): discovery connects afresh within a round."""
        with self.lock:
            names = sorted(self.streams)
            for watched in self.streams.values():
                watched.watcher.disconnect()
            self.streams.clear()
        return names

    # ---- discovery -------------------------------------------------------------------------

    def _discover_loop(self) -> None:
        # One resolver for the bridge's life: it keeps its sockets and its view of the streams
        # current in the background, where a fresh resolve per round would open and close
        # sockets every few seconds.
        resolver = pylsl.ContinuousResolver(forget_after=FORGET_S)
        while not self._stop.is_set():
            try:
                infos = resolver.results()
            except Exception as error:  # liblsl hiccup: try again next round
                self.logger.warning("resolving LSL streams failed: %s", error)
                infos = []
            seen = [
                (info.name(), info.source_id(), info.created_at())
                for info in infos
                if info.name().startswith(PREFIX)
                # a user's store is theirs and the recorder's: a reader here would make the
                # store's wait_for_recorder() return before the recording has the stream
                and not info.name().startswith(USER_PREFIX)
                and (self.only is None or info.name() in self.only)
            ]
            self._choose_source(seen)
            shown = {}
            for name, source_id, created_at in seen:
                if self.sources.shows(name, source_id):
                    shown[name] = (source_id, created_at)
            with self.lock:
                self.seen = shown
            for name, (source_id, created_at) in shown.items():
                if self._stop.is_set():
                    return
                if self._wanted(name):
                    self._consider(name, source_id, created_at)
            self._close_unasked()
            self._stop.wait(DISCOVER_S)

    def _wanted(self, name: str) -> bool:
        """Whether `name` is to be watched now: the dashboard's, or asked for lately."""
        if name in self.always or self.only is not None:
            return True
        with self.lock:
            asked = self.asked.get(name)
        return asked is not None and time.monotonic() - asked < self.observe_keep_s

    def _close_unasked(self) -> None:
        """Close the observer-only streams no request has named for OBSERVE_KEEP_S."""
        closed = []
        with self.lock:
            for name in list(self.streams):
                if not self._wanted(name):
                    self.streams.pop(name).watcher.disconnect()
                    self.asked.pop(name, None)
                    closed.append(name)
        for name in closed:
            self.logger.info("closed %s: no observer asked in %g s", name, self.observe_keep_s)

    def observe(self, name: str | None) -> None:
        """An observer request names `name` (None: every stream): open what it needs that is not
        watched yet and give each FIRST_SAMPLE_S for a first sample; keep them open a while."""
        now = time.monotonic()
        with self.lock:
            names = [name] if name is not None else list(self.seen)
            wanted = [n for n in names if n not in self.always and n in self.seen]
            for n in wanted:
                self.asked[n] = now
            closed = {n: self.seen[n] for n in wanted if n not in self.streams}
        for n, (source_id, created_at) in closed.items():
            self._consider(n, source_id, created_at)
        deadline = now + FIRST_SAMPLE_S
        while closed and time.monotonic() < deadline:
            with self.lock:
                if all(n not in self.streams or self.streams[n].samples for n in closed):
                    return
            self._stop.wait(0.02)

    def source_status(self) -> dict[str, Any]:
        with self.lock:
            return self.sources.status()

    def pick_source(self, source: str) -> dict[str, Any]:
        """The user's choice of session data: "live", or a producer (SOURCE, the page)."""
        with self.lock:
            self.sources.pick(source)
        self._choose_source(None)
        with self.lock:
            return self.sources.status()

    def _choose_source(self, seen: list[tuple[str, str, float]] | None) -> None:
        """Apply the source rule to this round's streams (None: to what was last seen)."""
        with self.lock:
            if seen is not None:
                self.sources.observe(seen)
            before = self.sources.showing
            showing = self.sources.choose()
            notes, self.sources.notes = self.sources.notes, []
            # A producer gone for a moment (a restarting decoder) keeps its watchers, which
            # liblsl recovers; another producer chosen drops them.
            if showing is not None and showing != before:
                for name, watched in list(self.streams.items()):
                    if name in SESSION_STREAMS and producer_of(watched.source_id) != showing:
                        watched.watcher.disconnect()
                        del self.streams[name]
                        if name in MERGED:
                            self.merge.remove_input(name)
                # Another producer's sequence starts afresh: what the old one left goes first.
                held = self.merge.drain()
                self.merge = _new_merge()
                for name in MERGED:
                    if name in self.streams:
                        self.merge.add_input(name)
                self._late = 0
                self.publish([m for name, obj in held for m in self.state.on_json(name, obj)])
        for note in notes:
            self.logger.info("source: %s", note)

    def _consider(self, name: str, source_id: str, created_at: float) -> None:
        if not name.startswith(PREFIX) or (self.only is not None and name not in self.only):
            return
        with self.lock:
            known = self.streams.get(name)
        # Two producers of one name (a restarted decoder on another port): follow the one that
        # started last. A restart with the same source_id is liblsl's to recover.
        if known is not None and (known.source_id == source_id or known.created_at >= created_at):
            return
        ring = JSON_RING_SAMPLES if name in JSON_NAMES else RING_SAMPLES
        watcher = StreamWatcher(name, buffer_size_samples=ring, logger=self.logger)
        identifier = {"name": name, "source_id": source_id} if source_id else {"name": name}
        try:
            watcher.connect_to_stream(identifier=identifier, timeout=CONNECT_TIMEOUT_S)
        except StreamNotFoundError:
            return  # gone again; the next round sees
        except Exception as error:  # liblsl timeouts and the like: the next round tries again
            self.logger.warning("cannot open %s yet: %s: %s", name, type(error).__name__, error)
            watcher.disconnect()
            return
        is_json = watcher.channel_format == "string"
        with self.lock:
            old = self.streams.get(name)
            if old is not None:
                old.watcher.disconnect()
            self.streams[name] = Watched(watcher, source_id, created_at, is_json)
            if name in MERGED and is_json:
                self.merge.add_input(name)
            if not is_json:
                self.state.plan(name, watcher.channel_names)
            self._health(self.health.found(name, time.time()))
        channels = len(watcher.channel_names)
        self.logger.info("watching %s (%s, %d channels)", name, source_id, channels)

    # ---- polling ---------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        tower_sent = checked = 0.0
        while not self._stop.is_set():
            # The JSON streams (laps, events, standings) first and out at once: the numeric
            # ones are 20 streams of hundreds of channels, and a lap should not wait for them.
            for is_json in (True, False):
                messages = self._pull_all(is_json)
                if messages:
                    self.publish(messages)
            # Gaps change with every LapData frame; a reader needs a few towers a second, so
            # the tower is built and sent at most that often.
            if time.monotonic() - tower_sent >= TOWER_INTERVAL_S:
                with self.lock:
                    tower = self.state.tower_news()
                if tower:
                    self.publish(tower)
                    tower_sent = time.monotonic()
            if time.monotonic() - checked >= HEALTH_CHECK_S:
                checked = time.monotonic()
                with self.lock:
                    self._health(self.health.check(time.time()))
            if self._next_frame():
                self._stop.wait(POLL_S)  # the frame's other packets follow within a few ms

    def _next_frame(self) -> bool:
        """Sleep until the next frame of the densest stream watched (at most IDLE_WAIT_S;
        True: it came), rather than polling every POLL_S: a round's work is the same for one
        frame or three (only the newest numeric row is read), and polls of ~25 streams every
        5 ms were most of the bridge's CPU (issue 18). A sample of another stream that comes
        after a round is seen with the next frame, or after IDLE_WAIT_S. Without a dense
        stream (no game), every POLL_S as before."""
        with self.lock:
            dense = next((self.streams[n] for n in DENSE if n in self.streams), None)
        if dense is None:
            self._stop.wait(POLL_S)
            return False
        try:
            return dense.watcher.wait(IDLE_WAIT_S) > 0
        except Exception:  # lost or dropped meanwhile: the next round reports it
            self._stop.wait(POLL_S)
            return False

    def _pull_all(self, is_json: bool) -> list[Message]:
        messages: list[Message] = []
        with self.lock:
            seq, moved = self.telemetry_seq, self._moved
            for name, watched in list(self.streams.items()):
                if watched.is_json != is_json:
                    continue
                try:
                    messages += self._pull(name, watched)
                except StreamLostError as error:
                    self.logger.warning("%s lost: %s", name, error)
                    watched.watcher.disconnect()
                    del self.streams[name]
                    if name in MERGED:
                        self.merge.remove_input(name)
                    self._health(self.health.lost(name, time.time()))
            if is_json:
                messages += self._merged()
            if self.telemetry_seq != seq or self._moved != moved:
                self.frame = TelemetryFrame.of(self.telemetry_seq, self.telemetry_t, self.state)
        return messages

    def _pull(self, name: str, watched: Watched) -> list[Message]:
        """Everything `name` has delivered, each sample once: into the state, or (a merged
        stream) into the merge."""
        watcher = watched.watcher
        began = time.monotonic()
        chunks, n = [], 0
        while True:  # a ring per bite; a backlog waits in liblsl until the next one
            data, stamps = watcher.pull()
            if len(stamps):
                chunks.append((data, stamps))
                n += len(stamps)
            if len(stamps) < watcher.ring.size:
                break
        if watcher.overruns != watched.overrun:
            watched.overrun = watcher.overruns  # StreamWatcher logged it; STATUS says it
        if name in MERGED:
            self.merge.drained(name, began)  # what had arrived by `began` is in `chunks`
        if not n:
            return []
        watched.samples += n
        self._health(self.health.arrived(name, n, time.time()))
        watched.last_t = float(chunks[-1][1][-1])
        if not watched.is_json:
            if name not in NUMERIC_FIELDS:
                return []
            if name == "raceplane.car_telemetry":
                self.telemetry_t = watched.last_t
                self.telemetry_seq += n
            elif name == "raceplane.motion":
                self._moved += n
            # Only the newest row makes the picture.
            return self.state.on_rows(name, chunks[-1][0][-1:], n)
        if name not in JSON_STREAMS:
            return []
        messages = []
        for data, _ in chunks:
            for text in data[:, 0]:
                try:
                    obj = _loads(text)
                except (TypeError, ValueError):
                    watched.bad_json += 1
                    if watched.bad_json == 1:
                        self.logger.warning("%s: a sample that is not JSON: %.80r", name, text)
                    continue
                key = _sequence(obj) if name in MERGED else None
                if key is None:
                    messages += self.state.on_json(name, obj)
                else:
                    self.merge.push(name, key[0], key[1], obj, began)
        return messages

    def _merged(self) -> list[Message]:
        """The merged samples that may go now, in the producer's order, as messages."""
        messages = [m for name, obj in self.merge.release() for m in self.state.on_json(name, obj)]
        late = self.merge.counts["late"]
        if late > self._late:
            self.logger.warning(
                "%d samples came after later ones had been shown (late, by stream: %s)",
                late - self._late,
                self.merge.late,
            )
            self._late = late
        return messages

    def merge_status(self) -> dict[str, Any]:
        """STATUS `merge`: what the producer's order did (counts as the lap timer's)."""
        with self.lock:
            return {
                **self.merge.counts,
                "held": self.merge.pending,
                "stale": self.merge.stale,
                "late_by_stream": dict(self.merge.late),
            }

    def _health(self, transitions: list) -> None:
        """Log what changed and tell the dashboards (its banner); under `lock`."""
        if transitions:
            log_transitions(self.logger, "web bridge", transitions)
            self.publish([Message("inputs", self.inputs())])

    def inputs(self) -> dict[str, Any]:
        """STATUS `inputs` and the dashboard's banner: missing, stale, problems, streams."""
        with self.lock:
            return self.health.status()

    # ---- reading (HTTP handlers) -----------------------------------------------------------

    def describe(self) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {
                    "name": name,
                    "source_id": w.source_id,
                    "format": w.watcher.channel_format,
                    "channels": len(w.watcher.channel_names),
                    "samples": w.samples,
                    "last_t": w.last_t,
                    "recoveries": len(w.watcher.recoveries),
                    "bad_json": w.bad_json,
                    "overrun": w.overrun,
                }
                for name, w in sorted(self.streams.items())
            ]

    def observable(self) -> list[str]:
        """STATUS `observable`: streams seen but not watched (opened when an observer asks)."""
        with self.lock:
            return sorted(set(self.seen) - set(self.streams))

    def watched(self, name: str) -> Watched:
        watched = self.streams.get(name)
        if watched is None:
            raise KeyError(f"no stream {name!r}; watching {', '.join(sorted(self.streams))}")
        return watched

    def last_values(self, name: str | None = None) -> dict[str, Any]:
        """Newest value of every numeric channel: {stream: {"t": t, "values": {label: v}}}."""
        self.observe(name)
        with self.lock:
            names = [name] if name else sorted(self.streams)
            result: dict[str, Any] = {}
            for stream in names:
                watched = self.watched(stream)
                if watched.is_json:
                    if name:
                        raise KeyError(f"{stream} is a JSON stream; it has no numeric channels")
                    continue
                data, stamps = watched.watcher.last(1)
                if len(stamps) == 0:
                    result[stream] = {"t": None, "values": {}}
                    continue
                result[stream] = {
                    "t": float(stamps[-1]),
                    "values": dict(
                        zip(watched.watcher.channel_names, _plain(data[-1]), strict=True)
                    ),
                }
            return result

    def since(self, name: str, channel: str, t0: float, limit: int) -> dict[str, Any]:
        """A channel's samples with LSL time > t0 (those still in the ring), oldest first."""
        self.observe(name)
        with self.lock:
            watched = self.watched(name)
            labels = watched.watcher.channel_names
            if channel not in labels:
                raise KeyError(f"{name} has no channel {channel!r}")
            data, stamps = watched.watcher.since(t0)
            column = data[-limit:, labels.index(channel)] if len(stamps) else data[:, 0]
            return {
                "stream": name,
                "channel": channel,
                "t": [float(t) for t in stamps[-limit:]],
                "values": _plain(column) if not watched.is_json else [str(v) for v in column],
            }


def _loads(text: str) -> Any:
    """orjson first (a quarter of json's cost on an engineer picture, ~30 kB at 20 Hz); json
    decides what orjson refuses (integers beyond 64 bits, NaN), as before."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _new_merge() -> SequenceMerge:
    return SequenceMerge(MERGED, watermark_s=WATERMARK_S, sparse_wait_s=SPARSE_WAIT_S)


def _sequence(obj: Any) -> tuple[str, float] | None:
    """(session uid, overall frame identifier) of a producer's JSON sample; None if it does not
    say (shown at once, as it comes). Live timing numbers these streams and lap_data together,
    so for the bridge its numbers have gaps: merged as any producer's, never as contiguous."""
    header = obj.get("header") if isinstance(obj, dict) else None
    if not isinstance(header, dict):
        return None
    try:
        return str(header["session_uid"]), float(header["overall_frame_identifier"])
    except (KeyError, TypeError, ValueError):
        return None


def _plain(values: np.ndarray) -> list[float | None]:
    """JSON has no NaN: a field the packet format lacks (NaN) becomes null."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=float)]

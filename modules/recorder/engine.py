"""The recording engine: LSL inlets in, XDF chunks out, one writer thread owning the file.

Threads of a recording, and why:
- resolver: finds matching streams (at start, every `scan_interval`, and on UPDATE) and opens
  inlets for new ones on a pool of threads: opening blocks (~0.5 s each), so opened one by one
  a stack's ~20 streams took ~10 s to join; concurrently they all record within about a second.
- clock: measures each inlet's clock offset every `clock_interval` (time_correction blocks).
- writer: pulls every inlet without blocking, encodes, writes whole chunks, syncs each second,
  rotates files. It alone touches the file, so the others hand it work through queues.
A stream is known by (name, source_id), so an outlet that vanishes and returns is the same
stream: pylsl's inlet recovers by source_id and the resolver does not add it twice.

With a `state_file`, a recording keeps its intent on disk (see intent.py) until it ends in
order; `Recorder.resume()` at start-up continues a recording whose recorder was killed: it
appends to the cut file after its last whole chunk, closes the cut run's streams with footers
noting the gap, and reports the gap in STATUS `gaps`.
"""

from __future__ import annotations

import fnmatch
import logging
import queue
import re
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pylsl

from dareplane_utils.stream_watcher.health import InputHealth, log_transitions
from modules.expected_inputs import expect
from modules.recorder.intent import IntentError, RecordingIntent
from modules.recorder.retention import Retention, prune
from modules.recorder.session_params import LEARNED, SESSION_STREAM, learned_from
from modules.recorder.sink import SinkError, XdfSink
from modules.recorder.xdf import StreamLayout, XdfEncoder, XdfError

SESSION_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
PULL_BYTES = 256 << 10  # bytes per pull: bounds memory and chunk size for wide streams
MAX_ERRORS = 20
HEADER_RESERVE = 512  # room in the FileHeader for session parameters learned while recording
OPENERS = 32  # inlets opened at once; a stack has ~20 streams
EAGER_SCAN_S = 2.0  # after the start, look for streams every EAGER_POLL_S, not scan_interval
EAGER_POLL_S = 0.05
HEALTH_CHECK_S = 0.5  # how often the writer asks whether an expected stream is missing
# What a recording of a race must hold (--expect), where the patterns take it.
EXPECTED = (
    "raceplane.motion",
    "raceplane.lap_data",
    "raceplane.car_telemetry",
    "raceplane.car_status",
    "raceplane.session",
    "raceplane.participants",
    "raceplane.events",
)


@dataclass
class RecorderSettings:
    save_path: Path = Path(".")
    patterns: list[str] = field(default_factory=lambda: ["raceplane.*"])
    rotate_seconds: float = 0.0  # 0: never rotate by time
    rotate_bytes: int = 0  # 0: never rotate by size
    max_channels: int = 65_536
    max_string_bytes: int = 65_536
    scan_interval: float = 1.0
    clock_interval: float = 5.0
    boundary_interval: float = 10.0
    sync_interval: float = 1.0
    # Pull period while no inlet fills a whole chunk: bigger chunks, less CPU; what waits in
    # liblsl meanwhile is what a crash can lose.
    poll_interval: float = 0.1
    session: dict[str, str] = field(default_factory=dict)
    state_file: Path | None = None  # where a recording keeps its intent; None: never resumes
    retention: Retention = field(default_factory=Retention)  # old recordings to delete
    expected: tuple[str, ...] = EXPECTED  # reported while recording if missing or quiet


@dataclass
class Source:
    """One recorded LSL stream across the files of a recording."""

    key: tuple[str, str]
    inlet: pylsl.StreamInlet
    info_xml: str
    layout: StreamLayout
    max_samples: int
    samples: int = 0
    dropped: int = 0
    lost: bool = False
    last_offset: tuple[float, float] | None = None
    stream_id: int = -1  # in the current file

    def status(self) -> dict[str, Any]:
        return {
            "name": self.key[0],
            "source_id": self.key[1],
            "channels": self.layout.channel_count,
            "format": self.layout.channel_format,
            "samples": self.samples,
            "dropped": self.dropped,
            "lost": self.lost,
        }


def stream_key(info: pylsl.StreamInfo) -> tuple[str, str]:
    return (info.name(), info.source_id() or f"uid:{info.uid()}")


class Recording:
    """One running recording: its threads, its current file and its sources."""

    def __init__(
        self,
        settings: RecorderSettings,
        path: Path,
        append: bool,
        logger: logging.Logger,
        resume: RecordingIntent | None = None,
    ) -> None:
        """Record into `path`; or, given the `resume` intent of a cut recording, continue it."""
        self.settings = settings
        self.logger = logger
        self.base_path = path
        self.files: list[Path] = []
        self.sources: dict[tuple[str, str], Source] = {}
        self.errors: deque[str] = deque(maxlen=MAX_ERRORS)
        self.refused: dict[tuple[str, str], str] = {}
        self.error: str | None = None
        self.started = time.time()
        self.ended: float | None = None
        self.bytes_done = 0  # in files already closed by rotation
        self.gaps: list[dict[str, Any]] = []
        self.stop_event = threading.Event()
        self.rescan = threading.Event()
        self._new_sources: queue.Queue[Source] = queue.Queue()
        self._offsets: queue.Queue[tuple[Source, float, float]] = queue.Queue()
        self._lock = threading.Lock()  # sources, refused, _opening and health
        self.health = InputHealth(
            expect(name for name in settings.expected if matches(name, settings.patterns)),
            time.time(),
        )
        self._opening: set[tuple[str, str]] = set()
        self._part = 1
        if resume is not None:
            earlier = [Path(name) for name in resume.files]
            self.base_path, path, append = earlier[0], earlier[-1], True
            self.files = earlier[:-1]
            self.bytes_done = sum(p.stat().st_size for p in self.files if p.exists())
            self._part = len(earlier)
            self.started = resume.started
            self.gaps = list(resume.gaps)
        self._session_learned = all(key in settings.session for key in LEARNED)
        self._gap_open: dict[str, Any] | None = None  # a resume's gap, until data flows again
        # In the caller's thread: RECORD reports open errors.
        self._open_file(path, append, resuming=resume is not None)
        self._save_intent()
        self._threads = [
            threading.Thread(target=self._resolve_loop, name="recorder-resolve", daemon=True),
            threading.Thread(target=self._clock_loop, name="recorder-clock", daemon=True),
            threading.Thread(target=self._write_loop, name="recorder-write", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # ---- status -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.error is None and self._threads[2].is_alive()

    def status(self) -> dict[str, Any]:
        return {
            "recording": self.running,
            "file": str(self.files[-1]),
            "files": [str(path) for path in self.files],
            "duration_s": round((self.ended or time.time()) - self.started, 3),
            "bytes": self.bytes_done + self.sink.committed,
            "samples": sum(source.samples for source in list(self.sources.values())),
            "streams": [source.status() for source in list(self.sources.values())],
            "refused": [
                {"name": k[0], "source_id": k[1], "why": v} for k, v in self.refused.items()
            ],
            "errors": list(self.errors),
            "error": self.error,
            "gaps": self.gaps,
            "inputs": self.inputs(),
            # The setup file's text stays in the file; STATUS names the file (setup_file).
            "session": {k: v for k, v in self.settings.session.items() if k != "setup"},
        }

    def inputs(self) -> dict[str, Any]:
        with self._lock:
            return self.health.status()

    def _health(self, transitions: list) -> None:
        """Log what changed in the expected streams; call holding `_lock`."""
        log_transitions(self.logger, "recorder", transitions)

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        self.rescan.set()
        for thread in self._threads:
            thread.join(timeout)

    def _note(self, message: str) -> None:
        self.errors.append(message)
        self.logger.warning(message)

    # ---- resolver thread ----------------------------------------------------------------

    def _resolve_loop(self) -> None:
        resolver = pylsl.ContinuousResolver(forget_after=max(5.0, 3 * self.settings.scan_interval))
        openers = ThreadPoolExecutor(OPENERS, thread_name_prefix="recorder-open")
        began = time.monotonic()
        try:
            while not self.stop_event.is_set():
                for info in resolver.results():
                    if self.stop_event.is_set():
                        break
                    if self._consider(info):
                        openers.submit(self._open, info)
                # Streams answer the resolver over the first fraction of a second: take each as
                # it answers rather than a whole scan_interval later.
                eager = time.monotonic() - began < EAGER_SCAN_S
                self.rescan.wait(EAGER_POLL_S if eager else self.settings.scan_interval)
                self.rescan.clear()
        finally:
            openers.shutdown(wait=True, cancel_futures=True)
            del resolver

    def _consider(self, info: pylsl.StreamInfo) -> bool:
        """True when `info` is a new stream to record; refuses the ones too wide."""
        key = stream_key(info)
        with self._lock:
            if (
                key in self.sources
                or key in self.refused
                or key in self._opening
                or not matches(info.name(), self.settings.patterns)
            ):
                return False
            channels = info.channel_count()
            if channels > self.settings.max_channels:
                why = f"{channels} channels, more than max_channels={self.settings.max_channels}"
                self.refused[key] = why
            else:
                self._opening.add(key)
                return True
        self._note(f"not recording stream {key[0]!r}: {why}")
        return False

    def _open(self, info: pylsl.StreamInfo) -> None:
        key = stream_key(info)
        try:
            self._open_source(info, key)
        except Exception:  # an opener's failure must not pass silently in the pool
            self.logger.exception("opening stream %r failed", key[0])
        finally:
            with self._lock:
                self._opening.discard(key)

    def _open_source(self, info: pylsl.StreamInfo, key: tuple[str, str]) -> None:
        try:
            inlet = pylsl.StreamInlet(info, max_chunklen=0, recover=True, processing_flags=0)
            inlet.open_stream(timeout=5.0)
            info_xml = inlet.info(timeout=5.0).as_xml()
            layout = StreamLayout.from_xml(info_xml)
        except (pylsl.util.TimeoutError, pylsl.util.LostError, XdfError) as error:
            self._note(f"cannot open stream {key[0]!r}: {error}")
            return
        value_bytes = (layout.dtype.itemsize if layout.dtype else 64) * layout.channel_count
        max_samples = max(1, min(8192, PULL_BYTES // value_bytes))
        source = Source(key, inlet, info_xml, layout, max_samples)
        try:
            offset = inlet.time_correction(timeout=2.0)
            now = pylsl.local_clock()
            source.last_offset = (now - offset, offset)
        except (pylsl.util.TimeoutError, pylsl.util.LostError):
            pass
        with self._lock:
            if self.stop_event.is_set():
                inlet.close_stream()
                return
            self.sources[key] = source
            self._new_sources.put(source)
            self._health(self.health.found(key[0], time.time()))
        self.logger.info("recording stream %s (%s)", key[0], key[1])

    # ---- clock thread -------------------------------------------------------------------

    def _clock_loop(self) -> None:
        while not self.stop_event.wait(self.settings.clock_interval):
            for source in list(self.sources.values()):
                if source.lost or self.stop_event.is_set():
                    continue
                try:
                    offset = source.inlet.time_correction(timeout=2.0)
                except (pylsl.util.TimeoutError, pylsl.util.LostError):
                    continue
                now = pylsl.local_clock()
                self._offsets.put((source, now - offset, offset))

    # ---- writer thread ------------------------------------------------------------------

    def _open_file(self, path: Path, append: bool, resuming: bool = False) -> None:
        self.sink = XdfSink(path, append=append)
        self.encoder = XdfEncoder()
        self.next_id = self.sink.next_stream_id
        self.file_started = time.monotonic()
        self.files.append(path)
        try:
            if self.sink.resumed:
                header = self.sink.header
                self.encoder.continue_header(header.get("datetime", ""), self.sink.header_size)
            else:
                self.sink.write(
                    self.encoder.file_header(self.settings.session, reserve=HEADER_RESERVE)
                )
            if resuming or self.sink.cut_streams:
                self._close_cut_run(path)
        except SinkError:
            self.sink.close()
            raise

    def _close_cut_run(self, path: Path) -> None:
        """Footers for the streams of a run that was cut off, each noting the gap; report it."""
        resumed = time.time()
        cut = self.sink.cut_streams
        last_stamps = [float(s.time_stamps[-1]) for s in cut if len(s.time_stamps)]
        gap: dict[str, Any] = {
            "file": str(path),
            "last_write": self.sink.last_write,  # unix time; None: the file was gone
            "resumed": resumed,
            "gap_s": None if self.sink.last_write is None else resumed - self.sink.last_write,
            "last_stamp": max(last_stamps, default=None),  # LSL time of the last sample kept
            "resumed_lsl": pylsl.local_clock(),
        }
        note = {k: repr(v) for k, v in gap.items() if k != "file" and v is not None}
        # STATUS only (the footers are written now): where the data starts again, once it does.
        gap.update(first_stamp=None, data_gap_s=None)
        self._gap_open = gap
        footers = []
        for stream in cut:
            self.encoder.adopt(
                stream.stream_id, stream.info_xml, stream.time_stamps, stream.clock_offsets
            )
            footers.append(self.encoder.stream_footer(stream.stream_id, cut=note))
        self.sink.write(*footers, self.encoder.boundary())
        self.gaps.append(gap)
        took = "an unknown time" if gap["gap_s"] is None else f"{gap['gap_s']:.2f} s"
        self._note(
            f"resumed recording {path} after it was cut off: nothing recorded for {took} "
            f"({len(cut)} stream(s) closed at their last whole chunk)"
        )

    def _close_gap(self, first_stamp: float) -> None:
        gap, self._gap_open = self._gap_open, None
        gap["first_stamp"] = first_stamp
        if gap["last_stamp"] is not None:
            gap["data_gap_s"] = first_stamp - gap["last_stamp"]
            self.logger.warning(
                "recording again after the cut: no samples for %.2f s", gap["data_gap_s"]
            )

    def _save_intent(self, files: list[Path] | None = None) -> None:
        """Keep the recording's intent on disk, so a killed recorder resumes it."""
        if self.settings.state_file is None:
            return
        intent = RecordingIntent(
            files=[str(path.resolve()) for path in files or self.files],
            session=dict(self.settings.session),
            patterns=list(self.settings.patterns),
            started=self.started,
            gaps=self.gaps,
        )
        try:
            self.settings.state_file.parent.mkdir(parents=True, exist_ok=True)
            intent.save(self.settings.state_file)
        except OSError as error:
            self._note(f"cannot keep the recording's state in {self.settings.state_file}: {error}")

    def _learn_session(self, values: np.ndarray) -> None:
        """Take track and session type from `raceplane.session` unless RECORD or --setup did."""
        for row in values:
            found = learned_from(row[0])
            if found:
                break
        else:
            return
        self._session_learned = True
        missing = {k: v for k, v in found.items() if k not in self.settings.session}
        if not missing:
            return
        self.settings.session = {**self.settings.session, **missing}
        header = self.encoder.session_header(self.settings.session)
        if header is None:
            self._note(f"no room in the file header of {self.files[-1]} for {missing}")
        else:
            self.sink.rewrite_header(header)
        self._save_intent()
        self.logger.info("session parameters from %s: %s", SESSION_STREAM, missing)

    def _add_to_file(self, source: Source) -> list[bytes]:
        source.stream_id = self.next_id
        self.next_id += 1
        chunks = [self.encoder.stream_header(source.stream_id, source.info_xml)]
        if source.last_offset is not None:
            chunks.append(self.encoder.clock_offset(source.stream_id, *source.last_offset))
        return chunks

    def _write_loop(self) -> None:
        active: list[Source] = []
        last_sync = last_boundary = checked = time.monotonic()
        try:
            while True:
                stopping = self.stop_event.is_set()
                out: list[bytes] = []
                while not self._new_sources.empty():
                    source = self._new_sources.get()
                    out += self._add_to_file(source)
                    active.append(source)
                while not self._offsets.empty():
                    source, when, value = self._offsets.get()
                    source.last_offset = (when, value)
                    out.append(self.encoder.clock_offset(source.stream_id, when, value))
                pulled = saturated = 0
                for source in active:
                    count = self._pull(source, out)
                    pulled += count
                    saturated += count >= source.max_samples
                now = time.monotonic()
                if now - last_boundary >= self.settings.boundary_interval:
                    out.append(self.encoder.boundary())
                    last_boundary = now
                if out:
                    self.sink.write(*out)
                if now - checked >= HEALTH_CHECK_S:
                    checked = now
                    with self._lock:
                        self._health(self.health.check(time.time()))
                if now - last_sync >= self.settings.sync_interval:
                    self.sink.sync()
                    last_sync = now
                if stopping and not pulled:
                    break
                if self._should_rotate(now):
                    self._rotate(active)
                if not saturated:
                    self.stop_event.wait(self.settings.poll_interval)
            self._close_file(active)
        except SinkError as error:
            self.error = str(error)
            self.logger.error("recording stopped: %s", error)
            self.stop_event.set()
            self.rescan.set()
        except Exception as error:  # a bug must not leave the file open and STATUS silent
            self.error = f"recording stopped by an internal error: {error!r}"
            self.logger.exception("recording stopped by an internal error")
            self.stop_event.set()
            self.rescan.set()
        finally:
            self.ended = time.time()
            try:
                self.sink.close()
            except SinkError as error:
                self.error = self.error or str(error)
            with self._lock:
                for source in self.sources.values():
                    source.inlet.close_stream()
            if self.settings.state_file is not None:
                RecordingIntent.remove(self.settings.state_file)  # ended in order: no resuming

    def _pull(self, source: Source, out: list[bytes]) -> int:
        """Append a chunk of everything `source` has ready to `out`; return the sample count."""
        if source.lost:
            return 0
        total = 0
        while True:
            try:
                values, stamps = source.inlet.pull_chunk(
                    timeout=0.0, max_samples=source.max_samples, as_numpy=True
                )
            except pylsl.util.LostError:
                source.lost = True
                self._note(f"stream {source.key[0]!r} was lost and cannot recover (no source_id)")
                with self._lock:
                    self._health(self.health.lost(source.key[0], time.time()))
                return total
            count = len(stamps)
            if count == 0:
                break
            if source.layout.dtype is None:
                values, stamps = self._bound_strings(source, values, stamps)
                if not self._session_learned and source.key[0] == SESSION_STREAM:
                    self._learn_session(values)
            if len(stamps):
                out.append(self.encoder.samples(source.stream_id, stamps, values))
                source.samples += len(stamps)
                if self._gap_open is not None:
                    self._close_gap(float(stamps[0]))
            total += count
            if count < source.max_samples:
                break
        if total:
            with self._lock:
                self._health(self.health.arrived(source.key[0], total, time.time()))
        return total

    def _bound_strings(self, source: Source, values: np.ndarray, stamps: np.ndarray):
        limit = self.settings.max_string_bytes
        sizes = np.fromiter((len(v) for v in values.flat), dtype=np.int64, count=values.size)
        too_big = (sizes.reshape(values.shape) > limit).any(axis=1)
        if not too_big.any():
            return values, stamps
        dropped = int(too_big.sum())
        source.dropped += dropped
        self._note(
            f"stream {source.key[0]!r}: dropped {dropped} sample(s) with a string of "
            f"{int(sizes.max())} bytes, over max_string_bytes={limit}"
        )
        keep = ~too_big
        return values[keep], stamps[keep]

    def _should_rotate(self, now: float) -> bool:
        settings = self.settings
        return (
            settings.rotate_seconds > 0 and now - self.file_started >= settings.rotate_seconds
        ) or (settings.rotate_bytes > 0 and self.sink.committed >= settings.rotate_bytes)

    def _rotate(self, active: list[Source]) -> None:
        self._close_file(active)
        self.bytes_done += self.sink.committed
        self._part += 1
        path = part_path(self.base_path, self._part)
        # The intent names the new part before it exists: a crash in between resumes into it.
        self._save_intent([*self.files, path])
        self._open_file(path, append=False)
        self.sink.write(*(item for source in active for item in self._add_to_file(source)))

    def _close_file(self, active: list[Source]) -> None:
        self.sink.write(*(self.encoder.stream_footer(source.stream_id) for source in active))
        self.sink.close()


def summary(status: dict[str, Any]) -> dict[str, Any]:
    """The few numbers of a recording a person reads: where, how long, how much."""
    return {
        "file": status["file"],
        "files": status["files"],
        "duration_s": status["duration_s"],
        "samples": status["samples"],
        "bytes": status["bytes"],
        "streams": len(status["streams"]),
        "error": status["error"],
    }


def part_path(base: Path, part: int) -> Path:
    """The file of rotation part `part` (2, 3, ...): session.xdf -> session.part0002.xdf."""
    return base.with_name(f"{base.stem}.part{part:04d}{base.suffix}")


def matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


class Recorder:
    """The recorder module's state and commands (DefaultServer command map)."""

    def __init__(
        self, settings: RecorderSettings | None = None, logger: logging.Logger | None = None
    ) -> None:
        self.settings = settings or RecorderSettings()
        self.logger = logger or logging.getLogger("recorder")
        self.recording: Recording | None = None
        self.resume_error: str | None = None  # why a cut recording could not be resumed
        self.deleted = 0  # old recordings the retention limits removed
        self._lock = threading.Lock()

    def commands(self) -> dict[str, Any]:
        return {
            "RECORD": self.record,
            "STOPRECORD": self.stop_record,
            "STOP": self.stop,
            "SELECT": self.select,
            "SET_SAVE_PATH": self.set_save_path,
            "UPDATE": self.update,
            "STATUS": self.status,
        }

    def record(
        self, filename: str | None = None, append: bool = False, **session: Any
    ) -> dict[str, Any]:
        """Record into `filename` (relative to the save path); `session` is stored in the file.

        During a recording, RECORD closes it and starts the new file (a new race, as the
        demo's start_race macro means it); the reply's `closed` sums up the one that ended.
        """
        with self._lock:
            name = filename or datetime.now().strftime("raceplane_%Y%m%d_%H%M%S.xdf")
            path = Path(name) if Path(name).is_absolute() else Path(self.settings.save_path) / name
            bad = [key for key in session if not SESSION_KEY.fullmatch(key)]
            if bad:
                raise ValueError(f"session parameter names must be identifiers, not {bad}")
            closed = None
            if self.recording is not None and self.recording.running:
                same = path.resolve() == self.recording.base_path.resolve()
                # Appending to the very recording under way (as an operator does after a
                # restart, not knowing it resumed by itself) asks for what is happening.
                if same and append:
                    return {"file": str(self.recording.files[-1])}
                if same and filename:
                    raise ValueError(f"already recording to {path}; RECORD another file, or append")
                if same:  # a second automatic name within the same second
                    path = path.with_name(f"{path.stem}_2{path.suffix}")
                self.recording.stop()
                closed = summary(self.recording.status())
                self.logger.info(
                    "closed %s (%d samples, %.1f s) to record %s",
                    closed["file"],
                    closed["samples"],
                    closed["duration_s"],
                    path,
                )
            settings = RecorderSettings(
                **{
                    **self.settings.__dict__,
                    "session": {**self.settings.session, **{k: str(v) for k, v in session.items()}},
                }
            )
            try:
                self.recording = Recording(settings, path, bool(append), self.logger)
            except (SinkError, OSError) as error:
                raise ValueError(str(error)) from None
            self.resume_error = None
            self.logger.info("recording to %s", path)
            self._prune({path})
            return {"file": str(path)} if closed is None else {"file": str(path), "closed": closed}

    def resume(self) -> dict[str, Any] | None:
        """Continue the recording a killed recorder left in `state_file`; None if there is none.

        Called at start-up. What cannot be resumed is logged, kept in STATUS `error` and
        forgotten, so a broken state never blocks the next RECORD.
        """
        state_file = self.settings.state_file
        if state_file is None:
            return None
        with self._lock:
            try:
                intent = RecordingIntent.load(state_file)
                if intent is None:
                    return None
                settings = RecorderSettings(
                    **{
                        **self.settings.__dict__,
                        "session": intent.session,
                        "patterns": intent.patterns,
                    }
                )
                self.recording = Recording(
                    settings, Path(intent.files[-1]), True, self.logger, resume=intent
                )
            except (IntentError, SinkError, XdfError, OSError) as error:
                self.recording = None  # STATUS shows why nothing records, not an older run
                self.resume_error = f"cannot resume the cut recording: {error}"
                self.logger.error(self.resume_error)
                RecordingIntent.remove(state_file)
                return None
            return self.recording.gaps[-1]

    def stop_record(self) -> dict[str, Any]:
        with self._lock:
            if self.recording is None:
                raise ValueError("not recording")
            self.recording.stop()
            self._prune(set(self.recording.files))
            return self.recording.status()

    def _prune(self, keep: set[Path]) -> None:
        """Delete the recordings past the retention limits, keeping `keep` (being written or
        just finished)."""
        try:
            deleted = prune(Path(self.settings.save_path), self.settings.retention, keep)
        except OSError as error:
            self.logger.warning("retention: cannot clean up %s: %s", self.settings.save_path, error)
            return
        self.deleted += len(deleted)
        for path in deleted:
            self.logger.info("retention: deleted the old recording %s", path)

    def stop(self) -> dict[str, Any]:
        """STOP: like STOPRECORD, but not an error when idle (the control room stops everyone)."""
        if self.recording is None or not self.recording.running:
            return self.status()
        return self.stop_record()

    def select(self, patterns: list[str] | str) -> list[str]:
        """Name patterns (shell globs) of the streams to record, from the next stream found on."""
        chosen = [patterns] if isinstance(patterns, str) else list(patterns)
        if not chosen or not all(isinstance(p, str) and p for p in chosen):
            raise ValueError("SELECT needs a non-empty list of name patterns, e.g. ['raceplane.*']")
        self.settings.patterns = chosen
        if self.recording is not None:
            self.recording.settings.patterns = chosen
            self.recording.rescan.set()
        return chosen

    def set_save_path(self, path: str) -> str:
        target = Path(path)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"cannot use {target} as save path: {error.strerror}") from None
        self.settings.save_path = target
        return str(target)

    def update(self) -> list[dict[str, Any]]:
        """Rescan LSL now; list every stream seen and whether the selection takes it."""
        if self.recording is not None and self.recording.running:
            self.recording.rescan.set()
        infos = pylsl.resolve_streams(wait_time=1.0)
        return [
            {
                "name": info.name(),
                "type": info.type(),
                "source_id": info.source_id(),
                "channels": info.channel_count(),
                "selected": matches(info.name(), self.settings.patterns),
            }
            for info in infos
        ]

    def status(self) -> dict[str, Any]:
        retention = self.settings.retention
        base = {
            "save_path": str(self.settings.save_path),
            "patterns": self.settings.patterns,
            "retention": {
                "keep_files": retention.keep_files,
                "keep_bytes": retention.keep_bytes,
                "deleted": self.deleted,
            },
        }
        if self.recording is None:
            # Streams are expected while recording; idle, nothing is missing.
            idle = InputHealth((), time.time()).status()
            return {**base, "recording": False, "error": self.resume_error, "inputs": idle}
        return {**base, **self.recording.status()}

    def close(self) -> None:
        if self.recording is not None and self.recording.running:
            self.recording.stop()

"""StreamWatcher: an LSL inlet feeding a numpy ring buffer, with Dareplane's surface.

    sw = StreamWatcher("raceplane.car_telemetry", buffer_size_s=2)
    sw.connect_to_stream(timeout=5)
    while running:
        sw.update()                       # pulls whatever arrived, straight into sw.buffer
        if sw.n_new:
            speeds = sw.column("car00.speed_kph", n=sw.n_new)
            sw.n_new = 0

`buffer` is (n_samples, n_channels) and `buffer_t` (n_samples,); `curr_i` is always the next
write position, so the newest sample sits at `curr_i - 1` and `unfold_buffer()` returns the
ring oldest-first. String streams (JSON) use an object buffer of `str`.

A consumer that must see every sample exactly once reads with `pull()` instead:

    values, stamps = sw.pull()            # what arrived since the last pull, oldest first
    sw.overruns                           # samples that fell off the ring before being pulled

The ring itself is `ring.Ring` (no LSL).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any
from xml.etree import ElementTree

import numpy as np
import pylsl

from dareplane_utils.stream_watcher.outlets import CHANNEL_FORMATS
from dareplane_utils.stream_watcher.ring import Ring

# Dareplane's ring length for irregular streams, kept so ported modules behave the same.
IRREGULAR_BUFFER_SAMPLES = 1000
# liblsl's resolve returns with the first stream that answers; this long, other matching
# streams get to answer too (on one machine or a LAN they do within milliseconds).
AMBIGUITY_WAIT_S = 0.25
# Strings are copied out of liblsl anyway; pull them in moderate chunks.
STRING_PULL_SAMPLES = 256
# One update() pulls at most this much (or one ring's worth, if larger), so a producer that
# outpaces the consumer cannot keep update() from returning.
MAX_PULL_PER_UPDATE = 1 << 16

_NO_WAIT = ctypes.c_double(0.0)
_TIME_BYTES = np.dtype(np.float64).itemsize
_FORMAT_NAMES = {code: name for name, code in CHANNEL_FORMATS.items()}
_NUMPY_DTYPES = {
    "float32": np.float32,
    "double64": np.float64,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "string": object,
}


class StreamWatcherNotConnected(ValueError):
    """The watcher was used before `connect_to_stream()` (Dareplane's name)."""


class StreamNotFoundError(LookupError):
    """No LSL stream matched within the timeout."""


class StreamLostError(RuntimeError):
    """The stream went away and liblsl cannot recover it (it has no source_id)."""


@dataclass(frozen=True)
class Recovery:
    """The producer restarted (same source_id); samples in the gap may never have arrived.

    `possibly_missed` is the number of samples the nominal rate fits into the gap between the
    last sample before and the first after; None for irregular streams, where only the gap
    in time is known.
    """

    last_t_before: float
    first_t_after: float
    possibly_missed: int | None

    @property
    def gap_s(self) -> float:
        return self.first_t_after - self.last_t_before


@dataclass(frozen=True)
class _Channel:
    label: str
    unit: str
    type: str


class StreamWatcher:
    """Watch one LSL stream through a ring buffer of the last `buffer_size_s` seconds.

    `buffer_size_samples` fixes the ring length instead; irregular streams, which have no
    rate to size it by, otherwise get 1000 samples. The ring always holds at least one sample.
    """

    def __init__(
        self,
        name: str = "",
        buffer_size_s: float = 2,
        logger: logging.Logger | None = None,
        *,
        buffer_size_samples: int | None = None,
    ):
        if not (isinstance(buffer_size_s, int | float) and 0 < buffer_size_s < math.inf):
            raise ValueError(f"buffer_size_s must be > 0, got {buffer_size_s!r}")
        if buffer_size_samples is not None and (
            not isinstance(buffer_size_samples, int) or buffer_size_samples < 1
        ):
            raise ValueError(
                f"buffer_size_samples must be a positive integer, got {buffer_size_samples!r}"
            )
        self.name = name
        self.buffer_size_s = buffer_size_s
        self.buffer_size_samples = buffer_size_samples
        self.logger = logger or logging.getLogger(__name__)

        self.inlet: pylsl.StreamInlet | None = None
        self.info: pylsl.StreamInfo | None = None
        self.channel_names: list[str] = []
        self.channel_units: list[str] = []
        self.channel_types: list[str] = []
        self.channel_format = ""
        self.nominal_srate = 0.0

        self.ring: Ring | None = None  # made by connect_to_stream, sized for the stream
        self.n_new = 0  # samples since the caller last set it to 0
        self.n_total = 0  # samples ever received on this connection
        self.last_t = 0.0
        self.recoveries: list[Recovery] = []
        self.n_possibly_missed = 0

        self._lock = threading.RLock()
        self._errcode = ctypes.c_int()
        self._recovery_pending = False
        self._waited = 0  # samples `wait()` moved into the ring that update()/pull() owe
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._background_error: BaseException | None = None

    # -- connecting ------------------------------------------------------------------------

    def connect_to_stream(
        self,
        identifier: Mapping[str, str] | str | None = None,
        timeout: float = 5.0,
        ambiguity_wait_s: float = AMBIGUITY_WAIT_S,
    ) -> None:
        """Find the stream and open an inlet; from here on every pushed sample arrives.

        `identifier`: None (use `self.name`), a name, or properties to match, e.g.
        `{"name": "raceplane.laps", "source_id": "raceplane.laps@lap_timer:8103"}`
        (keys are StreamInfo properties such as name, type, source_id, hostname, or paths
        such as `desc/producer`). Raises StreamNotFoundError if nothing matches in `timeout`.

        liblsl returns the first match to answer, so this listens `ambiguity_wait_s` longer
        for others; if several match it takes the newest and logs all of them. 0 skips that
        (the first to answer wins).
        """
        query = self._query(identifier)
        predicate = " and ".join(f"{key}={_xpath_literal(value)}" for key, value in query.items())
        found = pylsl.resolve_bypred(predicate, 1, timeout)
        if not found:
            visible = sorted({s.name() for s in pylsl.resolve_streams(0.5)})
            raise StreamNotFoundError(
                f"no LSL stream matches {query} within {timeout:g} s; "
                f"visible streams: {visible or 'none'}"
            )
        # Open the first at once: liblsl's clock-offset estimate (needed to notice producer
        # restarts) then runs while we listen for other matches.
        self._open(found[0], timeout)
        if ambiguity_wait_s <= 0:
            return
        found += pylsl.resolve_bypred(predicate, len(found) + 1, ambiguity_wait_s)
        candidates = list({s.uid(): s for s in found}.values())
        if len(candidates) == 1:
            return
        chosen = max(candidates, key=lambda s: s.created_at())
        others = ", ".join(_describe(s) for s in candidates if s is not chosen)
        self.logger.warning(
            "%d LSL streams match %s; taking the newest, %s (also seen: %s)",
            len(candidates),
            query,
            _describe(chosen),
            others,
        )
        if chosen.uid() != self.info.uid():
            self._open(chosen, timeout)

    def _query(self, identifier: Mapping[str, str] | str | None) -> dict[str, str]:
        if identifier is None:
            query = {"name": self.name}
        elif isinstance(identifier, str):
            query = {"name": identifier}
        else:
            query = {str(k): str(v) for k, v in identifier.items()}
        if not query or not all(query.values()):
            raise ValueError(f"which stream? got identifier {identifier!r} and name {self.name!r}")
        for key in query:
            if not key.replace("_", "").replace("/", "").isalnum():
                raise ValueError(f"{key!r} is not a stream property")
        if "name" in query:
            self.name = query["name"]
        return query

    def _open(self, found: pylsl.StreamInfo, timeout: float) -> None:
        self.disconnect()
        inlet = pylsl.StreamInlet(found, recover=True)
        info = inlet.info(timeout)
        # Subscribe now, so every sample pushed after connect_to_stream returns is delivered.
        inlet.open_stream(timeout)
        # liblsl flags a recovery (was_clock_reset) only once it knows a time offset; start
        # estimating one (~0.5 s, in liblsl's own thread) without waiting for it.
        with contextlib.suppress(pylsl.util.TimeoutError):
            inlet.time_correction(0.0)
        channels = _channels(info)
        if channels is None:
            channels = [_Channel(f"ch_{i + 1}", "", "") for i in range(info.channel_count())]
            if not info.desc().child("channels").empty():
                self.logger.warning(
                    "LSL stream %s: desc/channels does not label every channel; using ch_1..",
                    _describe(info),
                )
        with self._lock:
            self.inlet = inlet
            self.info = info
            self.channel_names = [c.label for c in channels]
            self.channel_units = [c.unit for c in channels]
            self.channel_types = [c.type for c in channels]
            self.channel_format = _FORMAT_NAMES[info.channel_format()]
            self.nominal_srate = info.nominal_srate()
            size = self._ring_length()
            self.ring = Ring(size, len(channels), _NUMPY_DTYPES[self.channel_format])
            self.n_new = 0
            self.n_total = 0
            self.last_t = 0.0
            self.recoveries = []
            self.n_possibly_missed = 0
            self._recovery_pending = False
            self._waited = 0
        self.logger.info(
            "watching LSL stream %s: %d %s channels at %g Hz, ring of %d samples",
            _describe(info),
            len(channels),
            self.channel_format,
            self.nominal_srate,
            size,
        )

    def _ring_length(self) -> int:
        if self.buffer_size_samples is not None:
            return self.buffer_size_samples
        if self.nominal_srate > 0:
            return max(1, math.ceil(self.nominal_srate * self.buffer_size_s))
        return IRREGULAR_BUFFER_SAMPLES

    @property
    def tracks_restarts(self) -> bool:
        """Whether a producer restart would be reported yet (~0.5 s after connecting).

        Until then liblsl still recovers the stream, but cannot say that it did.
        """
        inlet = self._connected_inlet()
        try:
            inlet.time_correction(0.0)
        except pylsl.util.TimeoutError:
            return False
        return True

    def disconnect(self) -> None:
        """Stop background acquisition and close the inlet (the buffer keeps its contents)."""
        self.stop_background()
        with self._lock:
            if self.inlet is not None:
                self.logger.info("disconnecting from LSL stream %r", self.name)
                self.inlet.close_stream()
            self.inlet = None

    # -- acquiring ---------------------------------------------------------------------------

    def update(self) -> int:
        """Pull every sample that has arrived into the ring; returns how many.

        While background acquisition runs, the background thread does the pulling and this
        returns 0.
        """
        if self._thread is not None:
            if not self._thread.is_alive():
                self.stop_background()  # raises what stopped the thread
            return 0
        with self._lock:
            waited, self._waited = self._waited, 0
            return waited + self._update_locked()

    def pull(
        self, max_samples: int | None = None, release: bool = False, timeout: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every sample exactly once, oldest first: those not pulled before, at most
        `max_samples` (values (n, channels) and stamps (n,), copies).

        `timeout`: when no sample is waiting, sleep in liblsl up to this long for the next one
        (the reader wakes as it arrives, with no polling interval to wait out). Pull from one
        thread only, and not during background acquisition (its thread does the waiting).

        Takes from liblsl only what fits into the ring beside the samples not pulled yet, so
        a backlog waits in liblsl's queue and nothing is overwritten by pulling itself. A
        sample overwritten before it was pulled (by `update()` or the background thread
        outrunning the reader) is counted in `overruns` and logged, never skipped silently.
        `release` drops the ring's references to pulled strings (memory stays flat with large
        JSON texts; `last`/`unfold_buffer` then show "" for them).
        """
        if timeout > 0:
            if self._thread is not None:
                raise ValueError("pull(timeout=...) waits itself; stop_background() first")
            with self._lock:
                waiting = self._ring().unread
            if not waiting:
                self.wait(timeout)
        with self._lock:
            if self._thread is not None:
                if not self._thread.is_alive():
                    self.stop_background()  # raises what stopped the thread
            else:
                ring = self._ring()
                wanted = ring.size if max_samples is None else min(max_samples, ring.size)
                if ring.unread < wanted:
                    self._update_locked(ring.free)
            ring = self._ring()
            overruns = ring.overruns
            values, stamps = ring.pull(max_samples, release)
            self._waited = 0
            if ring.overruns > overruns:
                self.logger.warning(
                    "LSL stream %r: %d samples overwritten in the ring before they were pulled "
                    "(%d in all)",
                    self.name,
                    ring.overruns - overruns,
                    ring.overruns,
                )
            return values, stamps

    def wait(self, timeout: float) -> int:
        """Block until a sample has arrived or `timeout` s have passed; returns how many
        samples came (0: none). For a reader that would otherwise poll an idle inlet: the
        sample that ends the wait is moved from liblsl into the ring, and the next `pull()`
        returns it in order with the rest (the next `update()` counts it). Returns at once
        while such a sample is still owed. Call it from the thread that pulls or updates;
        not while background acquisition runs.
        """
        with self._lock:
            if self._waited:
                return self._waited
            inlet = self._connected_inlet()
        if not self._take_one(inlet, timeout):
            return 0
        with self._lock:
            self._waited += 1
            return self._waited

    @property
    def overruns(self) -> int:
        """Samples that fell off the ring before `pull()` took them."""
        return 0 if self.ring is None else self.ring.overruns

    def _update_locked(self, budget: int | None = None) -> int:
        inlet = self._connected_inlet()
        ring = self._ring()
        if budget is None:
            budget = max(ring.size, MAX_PULL_PER_UPDATE)
        if inlet.was_clock_reset():
            # liblsl reconnected to a restarted producer with the same source_id.
            self._recovery_pending = True
        try:
            if self.channel_format == "string":
                return self._pull_strings(inlet, ring, budget)
            return self._pull_numeric(inlet, ring, budget)
        except pylsl.util.LostError as exc:
            raise self._lost() from exc

    def _ring(self) -> Ring:
        if self.ring is None:
            raise StreamWatcherNotConnected(
                f"StreamWatcher {self.name!r} has never been connected; call connect_to_stream()"
            )
        return self.ring

    def _lost(self) -> StreamLostError:
        return StreamLostError(
            f"LSL stream {self.name!r} was lost and cannot be recovered (it has no "
            "source_id); call connect_to_stream() again once it is back"
        )

    def _connected_inlet(self) -> pylsl.StreamInlet:
        if self.inlet is None:
            raise StreamWatcherNotConnected(
                f"StreamWatcher {self.name!r} is not connected; call connect_to_stream() first"
            )
        return self.inlet

    def _pull_numeric(self, inlet: pylsl.StreamInlet, ring: Ring, budget: int) -> int:
        size, n_channels = ring.buffer.shape
        row_bytes = ring.buffer.strides[0]
        data_at, times_at = ring.buffer.ctypes.data, ring.buffer_t.ctypes.data
        pulled = 0
        while pulled < budget:
            start = ring.curr_i
            want = min(size - start, budget - pulled)
            # liblsl writes samples and timestamps straight into the ring. This is liblsl's
            # pull_chunk as pylsl binds it; pylsl's wrapper costs ~10 us more per call and
            # allocates the timestamps anew each time.
            n_values = inlet.do_pull_chunk(
                inlet.obj,
                ctypes.c_void_p(data_at + start * row_bytes),
                ctypes.c_void_p(times_at + start * _TIME_BYTES),
                ctypes.c_size_t(want * n_channels),
                ctypes.c_size_t(want),
                _NO_WAIT,
                ctypes.byref(self._errcode),
            )
            if self._errcode.value:
                pylsl.util.handle_error(self._errcode)
            n = n_values // n_channels
            if n == 0:
                break
            ring.advance(n)
            self._arrived(n, ring.buffer_t[start : start + n])
            pulled += n
            if n < want:
                break
        return pulled

    def _pull_strings(self, inlet: pylsl.StreamInlet, ring: Ring, budget: int) -> int:
        pulled = 0
        while pulled < budget:
            want = min(STRING_PULL_SAMPLES, budget - pulled)
            samples, stamps = inlet.pull_chunk(timeout=0.0, max_samples=want)
            n = len(stamps)
            if n == 0:
                break
            self._write(samples, np.asarray(stamps, dtype=np.float64))
            pulled += n
            if n < want:
                break
        return pulled

    def _write(self, samples: Sequence[Sequence[Any]] | np.ndarray, stamps: np.ndarray) -> None:
        """Copy samples into the ring (wrapping; only the newest ring's worth survives)."""
        self._ring().write(samples, stamps)
        self._arrived(len(stamps), stamps)

    def _arrived(self, n: int, stamps: np.ndarray) -> None:
        if self._recovery_pending:
            self._record_recovery(stamps)
        self.n_new += n
        self.n_total += n
        self.last_t = float(stamps[-1])

    def _record_recovery(self, stamps: np.ndarray) -> None:
        self._recovery_pending = False
        if self.n_total == 0:
            return  # nothing arrived before the restart, so nothing can be missing
        # The restart sits at the largest jump between the last sample we had and the new ones
        # (samples queued before the producer died may still come first).
        times = np.concatenate(([self.last_t], stamps))
        jump = int(np.argmax(np.diff(times)))
        before, after = float(times[jump]), float(times[jump + 1])
        missed = None
        if self.nominal_srate > 0:
            missed = max(0, round((after - before) * self.nominal_srate) - 1)
            self.n_possibly_missed += missed
        recovery = Recovery(before, after, missed)
        self.recoveries.append(recovery)
        self.logger.warning(
            "LSL stream %r recovered after its producer restarted: %.3f s gap, %s samples "
            "possibly missed",
            self.name,
            recovery.gap_s,
            "unknown" if missed is None else missed,
        )

    def _take_one(self, inlet: pylsl.StreamInlet, timeout: float) -> bool:
        """Sleep in liblsl until the next sample (at most `timeout`) and write it to the ring.
        The lock is not held while sleeping, so readers of the ring never wait on the network."""
        try:
            sample, stamp = inlet.pull_sample(timeout=timeout)
        except pylsl.util.LostError as exc:
            raise self._lost() from exc
        if stamp is None:
            return False
        with self._lock:
            if inlet.was_clock_reset():
                self._recovery_pending = True
            self._write([sample], np.array([stamp]))
        return True

    # -- background acquisition ----------------------------------------------------------

    def start_background(self, poll_interval_s: float = 0.002) -> None:
        """Keep the ring current from a thread; read through the methods below, or hold `lock`
        while touching `buffer`/`buffer_t` or resetting `n_new`.

        The thread sleeps in liblsl until a sample arrives, then drains everything queued and
        rests `poll_interval_s`, so slow streams cost almost nothing and fast ones are batched.
        """
        self._connected_inlet()
        if self._thread is not None:
            return
        self._stop.clear()
        self._background_error = None
        self._thread = threading.Thread(
            target=self._background_loop,
            args=(poll_interval_s,),
            name=f"StreamWatcher({self.name})",
            daemon=True,
        )
        self._thread.start()

    def stop_background(self, timeout: float = 2.0) -> None:
        """Stop the thread; re-raises what stopped it, if it failed."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        self._thread = None
        error, self._background_error = self._background_error, None
        if error is not None:
            raise error

    @property
    def background_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _background_loop(self, poll_interval_s: float) -> None:
        inlet = self._connected_inlet()
        try:
            while not self._stop.is_set():
                with self._lock:
                    flowing = self._update_locked()
                if flowing:
                    # Data keeps coming: take it in batches, one pull per interval.
                    self._stop.wait(poll_interval_s)
                    continue
                # Quiet: sleep in liblsl until the next sample, so slow streams cost next to
                # nothing.
                self._take_one(inlet, 0.1)
        except BaseException as exc:  # handed to the caller by stop_background()
            self._background_error = exc
            self.logger.error("background acquisition of %r stopped: %s", self.name, exc)

    # -- reading ------------------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """Hold this while reading `buffer`/`buffer_t` directly during background acquisition."""
        return self._lock

    @property
    def n_buffered(self) -> int:
        """How many samples in the ring are real (the rest are still the initial fill)."""
        return min(self.n_total, len(self.buffer))

    # Dareplane's ring attributes, kept on the Ring.
    @property
    def buffer(self) -> np.ndarray:
        return np.array([]) if self.ring is None else self.ring.buffer

    @buffer.setter
    def buffer(self, value: np.ndarray) -> None:
        self._ring().buffer = value

    @property
    def buffer_t(self) -> np.ndarray:
        return np.array([]) if self.ring is None else self.ring.buffer_t

    @buffer_t.setter
    def buffer_t(self, value: np.ndarray) -> None:
        self._ring().buffer_t = value

    @property
    def curr_i(self) -> int:
        return 0 if self.ring is None else self.ring.curr_i

    @curr_i.setter
    def curr_i(self, value: int) -> None:
        self._ring().curr_i = value

    def unfold_buffer(self) -> np.ndarray:
        """The whole ring, oldest first (Dareplane's semantics: initial fill included)."""
        with self._lock:
            return self._ring().unfold()[0]

    def unfold_buffer_t(self) -> np.ndarray:
        """The ring's timestamps, oldest first, matching `unfold_buffer()`."""
        with self._lock:
            return self._ring().unfold()[1]

    def last(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The newest `n` samples and their timestamps, oldest first (fewer if fewer came)."""
        with self._lock:
            return self._ring().last(n)

    def since(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Samples stamped after `t` that are still in the ring, oldest first."""
        with self._lock:
            data, times = self.last(self.n_buffered)
            keep = times > t
            return data[keep], times[keep]

    def channel_index(self, label: str) -> int:
        try:
            return self.channel_names.index(label)
        except ValueError:
            close = get_close_matches(label, self.channel_names, n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise KeyError(f"stream {self.name!r} has no channel {label!r}{hint}") from None

    def column(self, label: str, n: int | None = None) -> np.ndarray:
        """One channel's values, oldest first: the newest `n`, or everything buffered."""
        index = self.channel_index(label)
        with self._lock:
            data, _ = self.last(self.n_buffered if n is None else n)
            return data[:, index]

    # -- Dareplane's names (dareplane-utils 0.0.24), on the public ring API ----------------

    # Dareplane picked update_numeric or update_char_p per stream; our update() serves both.
    update_numeric = update
    update_char_p = update
    chunk_buffer_size = 1024 * 32  # rows of Dareplane's pull buffer
    _chunk_buffer: np.ndarray | None = None

    @property
    def chunk_buffer(self) -> np.ndarray:
        """Dareplane's pull buffer, (chunk_buffer_size, channels) of the stream's type. Ours
        pulls straight into the ring, so it is made (zeroed, lazily) only for code reading it."""
        shape = (self.chunk_buffer_size, len(self.channel_names))
        made = self._chunk_buffer
        if made is None or made.shape != shape or made.dtype != self.buffer.dtype:
            self._chunk_buffer = made = np.zeros(shape, dtype=self.buffer.dtype)
        return made

    @property
    def samples(self) -> np.ndarray:
        """The samples not taken yet (the newest `n_new`, at most a ring), oldest first.

        Dareplane's `samples` is the chunk the last update() pulled; code that reads it after
        each update() and then resets `n_new` sees the same samples here.
        """
        return self._unread()[0]

    @property
    def times(self) -> np.ndarray:
        """The timestamps of `samples` (Dareplane declared `times` but never filled it)."""
        return self._unread()[1]

    def _unread(self) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            size = len(self.buffer)
            count = min(self.n_new, size)
            rows = (self.curr_i - count + np.arange(count)) % max(size, 1)
            return self.buffer[rows], self.buffer_t[rows]

    def __repr__(self) -> str:
        state = "connected" if self.inlet is not None else "not connected"
        return (
            f"StreamWatcher({self.name!r}, {state}, {len(self.buffer)} x "
            f"{len(self.channel_names)} {self.channel_format or '?'}, n_total={self.n_total})"
        )


def _channels(info: pylsl.StreamInfo) -> list[_Channel] | None:
    """Labels, units and types from desc/channels/channel; None unless each channel has one."""
    count = info.channel_count()
    found = []
    element = info.desc().child("channels").child("channel")
    while not element.empty():
        found.append(
            _Channel(
                element.child_value("label"),
                element.child_value("unit"),
                element.child_value("type"),
            )
        )
        element = element.next_sibling("channel")
    if len(found) == count and all(c.label for c in found):
        return found
    return None


def _describe(info: pylsl.StreamInfo) -> str:
    return f"{info.name()!r} (source_id {info.source_id()!r} on {info.hostname()}, {info.uid()})"


def _xpath_literal(value: str) -> str:
    """`value` as an XPath 1.0 string literal (which has no escapes, hence concat)."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    parts = value.split("'")
    return "concat(" + ', "\'", '.join(f"'{part}'" for part in parts) + ")"


# -- Dareplane's module functions (dareplane-utils 0.0.24) ------------------------------------


def get_streams_names() -> list[str]:
    """The names of every LSL stream visible now (liblsl's resolve, one second)."""
    return [info.name() for info in pylsl.resolve_streams()]


def get_channel_names(inf: pylsl.StreamInfo) -> list[str]:
    """The channel labels in the stream's desc, or ch_1, ch_2 ... when it does not label all."""
    channels = _channels(inf)
    if channels is None:
        return [f"ch_{i + 1}" for i in range(inf.channel_count())]
    return [channel.label for channel in channels]


def pylsl_xmlelement_to_dict(inf: pylsl.StreamInfo) -> dict:
    """The stream's XML header as nested dicts, in xmltodict's shape: {"info": {...}}, an
    element's children by tag (a repeated tag becomes a list), text as str, empty as None."""
    root = ElementTree.fromstring(inf.as_xml())
    return {root.tag: _element_dict(root)}


def _element_dict(element: ElementTree.Element) -> dict | str | None:
    if len(element) == 0:
        text = (element.text or "").strip()
        return text or None
    grouped: dict[str, list] = {}
    for child in element:
        grouped.setdefault(child.tag, []).append(_element_dict(child))
    return {tag: values[0] if len(values) == 1 else values for tag, values in grouped.items()}

"""The decoder's edges: the UDP socket and its thread, the LSL outlets, the capture file.

One thread owns the socket and the DecoderCore: it waits for datagrams, drains everything
queued (up to a batch limit) so bursts decode as one vectorised batch, pushes what comes back,
and writes the raw datagrams to the capture file if one is open. A lone datagram is decoded
as soon as it arrives (a batch of one), so batching costs light traffic no latency.

Commands run on the DefaultServer's threads and never wait for decoding: the capture writer is
swapped under a lock held only around file writes, and STATUS reads a snapshot the receive
thread refreshes ten times a second (a lock shared with the decoding loop would starve them in
a flood). close() wakes the thread through a self-pipe and destroys the outlets in parallel,
so the process exits promptly after CLOSE or SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pylsl

from dareplane_utils.stream_watcher.outlets import (
    make_outlet,
    push_frames,
    push_json_chunk,
    push_texts,
)
from modules.f1_udp.capture import CaptureWriter
from modules.stream_catalogue import CATALOGUE, StreamDef
from modules.telemetry_decoder.core import (
    NOTICES,
    Datagram,
    DecoderCore,
    Publication,
    describe_notice,
)

MAX_DATAGRAM = 65535
MAX_BATCH = 256
RCVBUF_BYTES = 8 * 1024 * 1024
SNAPSHOT_S = 0.1  # how often the thread refreshes STATUS and checks for reject reports
# Linux's SO_RXQ_OVFL (not in Python's socket module): every received datagram then carries
# the socket's count of datagrams the kernel dropped because the receive buffer was full.
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
DROP_COUNT_SPACE = socket.CMSG_SPACE(4)


class Decoder:
    """Receives UDP on (udp_host, udp_port) and publishes every packet on the catalogue."""

    def __init__(
        self,
        logger: logging.Logger,
        udp_host: str = "127.0.0.1",
        udp_port: int = 20777,
        rcvbuf_bytes: int = RCVBUF_BYTES,
        producer: str | None = None,
    ) -> None:
        self.logger = logger
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf_bytes)
        try:
            self.sock.bind((udp_host, udp_port))
        except OSError as error:
            self.sock.close()
            raise OSError(
                error.errno, f"cannot listen for UDP on {udp_host}:{udp_port}: {error.strerror}"
            ) from error
        self.sock.setblocking(False)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
            self.kernel_drops: int | None = 0
        except OSError:  # not Linux: kernel drops are unknown (STATUS says null)
            self.kernel_drops = None
        self.udp_address = self.sock.getsockname()
        # Linux doubles the request and caps it at net.core.rmem_max: report what we got.
        self.rcvbuf = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.producer = producer or f"decoder:{self.udp_address[1]}"
        self.core = DecoderCore(now=time.monotonic())
        self._snapshot = self.core.status(time.monotonic())
        self._snapshot_at = 0.0
        self._outlets = {s.name: make_outlet(s.spec(self.producer)) for s in decoder_streams()}
        self._lock = threading.Lock()
        self._capture: CaptureWriter | None = None
        self._capture_error: str | None = None
        self._stop = threading.Event()
        # close() writes a byte here to wake the thread from select() at once.
        self._wake_read, self._wake_write = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="decoder-udp", daemon=True)
        self.started = time.monotonic()

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self.logger.info(
            "decoding UDP on %s:%d (receive buffer %d bytes)",
            self.udp_address[0],
            self.udp_address[1],
            self.rcvbuf,
        )

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):  # closed already: a second close()
            self._wake_write.send(b"\0")
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._lock:
            self._close_capture()
        self.sock.close()
        self._wake_read.close()
        self._wake_write.close()
        if not self._thread.is_alive():  # a stuck thread may still push: leave them to exit
            _destroy_in_parallel(self._outlets)

    # ---- commands -------------------------------------------------------------------------

    def commands(self) -> dict[str, Any]:
        return {
            "CAPTURE_START": self.capture_start,
            "CAPTURE_STOP": self.capture_stop,
            "STATUS": self.status,
        }

    def capture_start(self, path: str) -> dict[str, Any]:
        """Write every datagram received from now on to `path` (the raw capture format)."""
        target = Path(path).expanduser()
        if not target.parent.is_dir():
            raise ValueError(f"cannot capture to {target}: no directory {target.parent}")
        with self._lock:
            if self._capture is not None:
                raise ValueError(f"already capturing to {self._capture.path}; CAPTURE_STOP first")
            try:
                self._capture = CaptureWriter(target)
            except OSError as error:
                raise ValueError(f"cannot capture to {target}: {error.strerror}") from error
            self._capture_error = None
        self.logger.info("capturing raw UDP to %s", target)
        return {"path": str(target)}

    def capture_stop(self) -> dict[str, Any]:
        with self._lock:
            if self._capture is None:
                raise ValueError("not capturing")
            result = {"path": str(self._capture.path), "datagrams": self._capture.count}
            self._close_capture()
        self.logger.info("capture of %d datagrams in %s", result["datagrams"], result["path"])
        return result

    def status(self) -> dict[str, Any]:
        core = self._snapshot
        with self._lock:
            capture = None
            if self._capture is not None:
                capture = {"path": str(self._capture.path), "datagrams": self._capture.count}
            error = self._capture_error
        return {
            "udp": {"host": self.udp_address[0], "port": self.udp_address[1]},
            "socket_rcvbuf_bytes": self.rcvbuf,
            # Datagrams the kernel dropped before we could read them (receive buffer full),
            # as of the last datagram received.
            "kernel_drops": self.kernel_drops,
            "uptime_s": round(time.monotonic() - self.started, 3),
            **core,
            "capture": capture,
            "capture_error": error,
        }

    # ---- the receive thread ---------------------------------------------------------------

    def _run(self) -> None:
        waiting = [self.sock, self._wake_read]
        while not self._stop.is_set():
            try:
                readable, _, _ = select.select(waiting, [], [], SNAPSHOT_S)
            except (OSError, ValueError):  # socket closed under us: we are stopping
                return
            if self.sock in readable:
                try:
                    self._drain()
                except Exception:  # a bug must not end the decoder: log it, go on
                    self.logger.exception("decoder: batch failed")
            now = time.monotonic()
            if now - self._snapshot_at >= SNAPSHOT_S:
                self._snapshot, self._snapshot_at = self.core.status(now), now
            report = self.core.reject_report(now)
            if report:
                self.logger.warning(report)

    def _drain(self) -> None:
        batch: list[Datagram] = []
        clock = pylsl.local_clock
        drops = self.kernel_drops
        while len(batch) < MAX_BATCH:
            try:
                data, ancillary, _, sender = self.sock.recvmsg(MAX_DATAGRAM, DROP_COUNT_SPACE)
            except BlockingIOError:
                break
            except OSError as error:  # e.g. ICMP errors surfacing on a UDP socket
                self.logger.warning("UDP receive: %s", error)
                break
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(value) >= 4:
                    drops = struct.unpack("=I", value[:4])[0]
            batch.append(Datagram(data, sender, clock()))
        if not batch:
            return
        if drops is not None and drops != self.kernel_drops:
            if not self.kernel_drops:
                self.logger.warning(
                    "the kernel is dropping UDP datagrams: the receive buffer (%d bytes) "
                    "overflowed; STATUS kernel_drops counts them",
                    self.rcvbuf,
                )
            self.kernel_drops = drops
        with self._lock:
            if self._capture is not None:
                self._write_capture(batch)
        publications = self.core.feed(batch)
        for publication in publications:
            self._publish(publication)
            if publication.stream == NOTICES:
                for notice in publication.objects or ():
                    self.logger.info(describe_notice(notice))

    def _write_capture(self, batch: list[Datagram]) -> None:
        # Capture times are wall-clock (the format's receive time); the LSL clock differs.
        offset = time.time() - pylsl.local_clock()
        assert self._capture is not None
        try:
            for datagram in batch:
                self._capture.write(datagram.data, datagram.time + offset)
        except OSError as error:
            self._capture_error = f"capture to {self._capture.path} failed: {error}"
            self.logger.error(self._capture_error)
            self._close_capture()

    def _publish(self, publication: Publication) -> None:
        outlet = self._outlets.get(publication.stream)
        if outlet is None:
            return
        if publication.rows is not None:
            push_frames(outlet, publication.rows, publication.timestamps)
        elif publication.texts is not None:
            push_texts(outlet, publication.texts, publication.timestamps)
        else:
            push_json_chunk(outlet, publication.objects or [], publication.timestamps)

    def _close_capture(self) -> None:
        if self._capture is not None:
            try:
                self._capture.close()
            finally:
                self._capture = None


def _destroy_in_parallel(outlets: dict[str, pylsl.StreamOutlet]) -> None:
    """Destroy the outlets at once: liblsl takes ~25 ms per outlet to stop its servers, which
    one after another is half a second at exit. Each outlet's last reference is dropped on
    its own thread (pylsl destroys an outlet when it is garbage)."""
    holders = [[outlet] for outlet in outlets.values()]
    outlets.clear()
    threads = [threading.Thread(target=holder.clear, daemon=True) for holder in holders]
    del holders
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2)


def decoder_streams() -> list[StreamDef]:
    return [s for s in CATALOGUE if s.producer == "telemetry_decoder"]

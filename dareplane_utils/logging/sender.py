"""The sending side: a logging.Handler whose caller only enqueues; a thread does the network.

The thread frames records (python-json-logger's JSON, see records.py) and sends them to the
log server. It opens each connection with `{"raceplane": "sender", "ack": true}`, so the
server answers `{"ack": N}` once it has written this connection's first N records to its
file. Records stay held until acknowledged: after a server restart (even a SIGKILL) the
unacknowledged ones are sent again, so none is lost (a record the server wrote just before
dying may arrive twice). What is held is bounded by `max_pending`; past it new records are
dropped and counted, and the count is logged once the server is back.
"""

from __future__ import annotations

import atexit
import logging
import queue
import select
import socket
import sys
import threading
import time
import traceback
from collections import deque

from pythonjsonlogger.json import JsonFormatter
from pythonjsonlogger.orjson import OrjsonFormatter

from dareplane_utils.logging.framing import FrameDecoder, FrameError, encode_frame, encode_payload
from dareplane_utils.logging.records import FORMAT_FIELDS, HOST, local_record, revive, snapshot

SENDER_HELLO = {"raceplane": "sender", "ack": True}
MAX_PENDING = 50_000  # 50 s at 1,000 records/s, some 20 MB of framed JSON
# At exit: wait while the server keeps acknowledging, until it stalls this long or the cap.
FLUSH_TIMEOUT_S = 2.0
FLUSH_CAP_S = 10.0
_BATCH_BYTES = 256 * 1024
_GATHER_S = 0.005
_RETRY_MIN_S, _RETRY_MAX_S = 0.05, 0.5
_CONNECT_TIMEOUT_S = 1.0
_SEND_TIMEOUT_S = 5.0


def json_formatter() -> JsonFormatter:
    """python-json-logger with the standard library's json: slower, takes anything."""
    return JsonFormatter(
        " ".join(f"%({field})s" for field in FORMAT_FIELDS),
        static_fields={"host": HOST},
        timestamp=True,
        json_ensure_ascii=False,
    )


def fast_json_formatter() -> OrjsonFormatter:
    """The same fields through orjson (half the cost per record); it refuses a few values
    json takes (integers over 64 bits), and _frame then falls back to json_formatter()."""
    return OrjsonFormatter(
        " ".join(f"%({field})s" for field in FORMAT_FIELDS),
        static_fields={"host": HOST},
        timestamp=True,
    )


class JsonSocketHandler(logging.Handler):
    """Sends records to a Raceplane log server without ever blocking the logging call."""

    def __init__(
        self,
        host: str,
        port: int,
        max_pending: int = MAX_PENDING,
        flush_timeout: float = FLUSH_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self.address = (host, port)
        self.max_pending = max_pending
        self.flush_timeout = flush_timeout
        self.fast_formatter = fast_json_formatter()
        self.fallback_formatter = json_formatter()
        self.setFormatter(self.fast_formatter)
        self.dropped = 0
        # pending = accepted - released; each counter has one writer (callers hold self.lock).
        self._accepted = 0
        self._released = 0
        self._queue: queue.SimpleQueue[dict | None] = queue.SimpleQueue()
        self._unacked: deque[bytes] = deque()
        self._closed = False
        self._thread = threading.Thread(
            target=_SenderLoop(self).run, name=f"log-sender-{host}:{port}", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Records accepted but not yet acknowledged by the server."""
        return self._accepted - self._released

    def emit(self, record: logging.LogRecord) -> None:
        if self._closed or self.pending >= self.max_pending:
            self.dropped += 1
            return
        self._accepted += 1
        # Only the snapshot is the caller's work; formatting and sending are the thread's.
        self._queue.put(snapshot(record))

    def close(self) -> None:
        """Deliver what is held; give up if the server cannot be reached, makes no progress
        for `flush_timeout` seconds, or after FLUSH_CAP_S in all; then stop."""
        with self.lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join(FLUSH_CAP_S + 1.0)
        atexit.unregister(self.close)
        super().close()


class _SenderLoop:
    """The handler's thread: owns the socket, the held records and the acknowledgements."""

    def __init__(self, handler: JsonSocketHandler) -> None:
        self.handler = handler
        self.unacked = handler._unacked
        self.sock: socket.socket | None = None
        self.decoder = FrameDecoder()
        self.acked = 0  # acknowledged on this connection
        self.sent = 0  # of self.unacked, how many went out on this connection
        self.reported_drops = 0
        self.retry_at = 0.0
        self.retry_delay = _RETRY_MIN_S
        self.stopping = False
        self.deadline = float("inf")  # while stopping: give up when passed
        self.cap = float("inf")

    def run(self) -> None:
        while True:
            try:
                self._take_from_queue()
                if self.stopping and (not self.unacked or time.monotonic() > self.deadline):
                    break
                if self.unacked and self.sock is None:
                    self._connect()
                self._send()
                self._read_acks()
            except Exception:  # a dead sender thread would silently swallow all later logging
                traceback.print_exc()
                self._disconnect()
                time.sleep(_RETRY_MAX_S)
        self._disconnect()
        if self.unacked:
            host, port = self.handler.address
            print(
                f"log sender: {len(self.unacked)} records not delivered to {host}:{port}",
                file=sys.stderr,
            )

    def _take_from_queue(self) -> None:
        if self.sent < len(self.unacked) and self.sock is not None:
            timeout = 0.0  # records to send already: do not wait for more
        else:
            timeout = 0.02 if self.unacked else 0.2
        records = self.handler._queue
        try:
            item = records.get(timeout=timeout) if timeout else records.get_nowait()
            if timeout:
                # Woken by one record: let a burst gather, so the caller's thread pays one
                # wake-up per batch rather than one per record.
                time.sleep(_GATHER_S)
            while True:
                if item is None:
                    self.stopping = True
                    self.retry_at = 0.0  # one more attempt at once, not after the backoff
                    self.cap = time.monotonic() + FLUSH_CAP_S
                    self.deadline = time.monotonic() + self.handler.flush_timeout
                else:
                    self.unacked.append(_frame(self.handler, item))
                if len(self.unacked) >= self.handler.max_pending:
                    break
                item = records.get_nowait()
        except queue.Empty:
            pass
        drops = self.handler.dropped
        if drops > self.reported_drops and self.sock is not None:
            message = (
                f"log sender dropped {drops - self.reported_drops} records "
                f"(over {self.handler.max_pending} held while the log server was unreachable)"
            )
            self.reported_drops = drops
            print(message, file=sys.stderr)
            warning = local_record("log_sender", "WARNING", message, dropped=drops)
            self.unacked.append(encode_frame(warning))
            self.handler._released -= 1  # the warning is no caller's record: its ack evens out

    def _connect(self) -> None:
        now = time.monotonic()
        if now < self.retry_at:
            time.sleep(min(self.retry_at - now, 0.05))
            return
        try:
            sock = socket.create_connection(self.handler.address, timeout=_CONNECT_TIMEOUT_S)
            sock.settimeout(_SEND_TIMEOUT_S)
            sock.sendall(encode_frame(SENDER_HELLO))
        except OSError:
            if self.stopping:
                self.deadline = 0.0  # exiting and no server: do not hold the process up
            self.retry_at = now + self.retry_delay
            self.retry_delay = min(self.retry_delay * 2, _RETRY_MAX_S)
            return
        self.sock = sock
        self.decoder = FrameDecoder()
        self.acked = self.sent = 0
        self.retry_delay = _RETRY_MIN_S

    def _disconnect(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.sent = 0  # everything unacknowledged goes again on the next connection

    def _send(self) -> None:
        while self.sock is not None and self.sent < len(self.unacked):
            batch, size = [], 0
            for index in range(self.sent, len(self.unacked)):
                batch.append(self.unacked[index])
                size += len(batch[-1])
                if size >= _BATCH_BYTES:
                    break
            try:
                self.sock.sendall(b"".join(batch))
            except OSError:
                self._disconnect()
                return
            self.sent += len(batch)
            self._read_acks()

    def _read_acks(self) -> None:
        if self.sock is None:
            return
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if not readable:
                return
            data = self.sock.recv(65536)
        except OSError:
            self._disconnect()
            return
        if not data:
            self._disconnect()
            return
        for event in self.decoder.feed(data):
            count = event.obj.get("ack") if not isinstance(event, FrameError) else None
            if not isinstance(count, int) or count < self.acked:
                self._disconnect()  # not a Raceplane log server speaking
                return
            done = min(count - self.acked, self.sent)
            for _ in range(done):
                self.unacked.popleft()
            self.handler._released += done
            if self.stopping and done:
                self.deadline = min(time.monotonic() + self.handler.flush_timeout, self.cap)
            self.acked += done
            self.sent -= done


def _frame(handler: JsonSocketHandler, attributes: dict) -> bytes:
    record = revive(attributes)
    try:
        return encode_payload(handler.fast_formatter.format(record).encode())
    except Exception:  # orjson refused a value: the standard library's json may take it
        pass
    try:
        return encode_payload(handler.fallback_formatter.format(record).encode())
    except Exception as error:  # an extra that even str() cannot render must not kill the thread
        fallback = local_record(
            record.name, record.levelname, str(record.msg), format_error=repr(error)
        )
        return encode_frame(fallback)

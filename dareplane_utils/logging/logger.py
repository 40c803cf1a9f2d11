"""`get_logger`: human-readable lines on stderr, JSON records to the central log server.

The server is RACEPLANE_LOG_HOST:RACEPLANE_LOG_PORT unless the caller names one (a module's
--log-host/--log-port), else 127.0.0.1:9020. One sender thread per server address serves
every logger of the process; calling get_logger again re-points the logger (modules often
make their logger at import and again in main() once the options are parsed).

A logging call only snapshots the record (records.snapshot) and enqueues it, for each handler:
the stderr lines are rendered and written by a thread, a batch per write (a write and flush
per record cost more than the rest of a logging call), as the JSON records are by the sender's
thread. At exit (atexit, logging's shutdown) and on flush() pending lines are written at once.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections import deque
from typing import TextIO

from dareplane_utils.logging.records import revive, snapshot
from dareplane_utils.logging.sender import JsonSocketHandler

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9020
STDERR_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

_senders: dict[tuple[str, int], JsonSocketHandler] = {}

# Dareplane's logging setup as a logging.config dictionary (a program may apply it with
# logging.config.dictConfig; get_logger does not use it): plain lines on the console, JSON
# records to 127.0.0.1:9020, on the root logger. `colors`: Dareplane's level colours, which
# get_logger accepts and ignores (its lines are plain).
default_dareplane_config = {
    "version": 1,
    "formatters": {
        "dareplane_standard": {"format": "%(asctime)s - %(name)s - %(levelname)s - %(message)s"},
        "dareplane_standard_color": {
            "format": "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "dareplane_standard_color"},
        "socket": {
            "class": "dareplane_utils.logging.ujson_socket_handler.UJsonSocketHandler",
            "formatter": "dareplane_standard",
            "host": DEFAULT_HOST,
            "port": DEFAULT_PORT,
        },
    },
    "root": {"handlers": ["console", "socket"]},
}
colors = {"DEBUG": "cyan"}


# A burst of lines gathers this long before the writer thread writes it out.
STDERR_GATHER_S = 0.01


class _StderrFormatter(logging.Formatter):
    """STDERR_FORMAT, with the date and time text made once per second rather than per line."""

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        seconds = int(record.created)
        cached, text = self._second
        if cached != seconds:
            text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
            self._second = (seconds, text)  # one assignment: safe to share between threads
        return f"{text},{int(record.msecs):03d}"


class _LineWriter:
    """Renders and writes the lines for one stream from a thread, in batches (one per stream
    per process). Callers only append a snapshot of the record."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        # (formatter, snapshot) pairs; append and popleft are atomic: callers take no lock.
        self._pending: deque[tuple[logging.Formatter, dict]] = deque()
        self._wake = threading.Event()
        self._write_lock = threading.Lock()  # the thread and flush() never interleave writes
        # Started now, with get_logger, like the sender's: a module's threads are its own.
        threading.Thread(target=self._run, name="log-stderr", daemon=True).start()
        atexit.register(self.flush)

    def add(self, formatter: logging.Formatter, attributes: dict) -> None:
        self._pending.append((formatter, attributes))
        if not self._wake.is_set():
            self._wake.set()

    def flush(self) -> None:
        with self._write_lock:
            count = len(self._pending)
            if not count:
                return
            lines = []
            for _ in range(count):
                formatter, attributes = self._pending.popleft()
                try:
                    lines.append(formatter.format(revive(attributes)) + "\n")
                except Exception as error:  # an extra whose str() fails: say so, go on
                    lines.append(f"log line not rendered: {error!r}\n")
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed or gone: the lines have nowhere to go
                pass

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(STDERR_GATHER_S)
            self._wake.clear()  # before taking the lines: a line added from now on wakes us
            self.flush()


_writers: dict[int, _LineWriter] = {}


class _StderrHandler(logging.Handler):
    """get_logger's human-readable lines (get_logger replaces it on a second call)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        writer = _writers.get(id(stream))
        if writer is None or writer.stream is not stream:
            writer = _writers[id(stream)] = _LineWriter(stream)
        self.writer = writer
        self.setFormatter(_StderrFormatter(STDERR_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        self.writer.add(self.formatter or logging.Formatter(), snapshot(record))

    def flush(self) -> None:
        self.writer.flush()


def get_logger(
    name: str,
    add_console_handler: bool | None = None,
    colors: dict | None = None,
    no_socket_handler: bool = False,
    *,
    log_host: str | None = None,
    log_port: int | None = None,
    level: int | str = logging.INFO,
    stderr_level: int | str | None = None,
) -> logging.Logger:
    """A logger writing lines to stderr (from `stderr_level`, default `level`) and JSON records
    of `level` and above to the log server.

    Dareplane's parameters are accepted: `add_console_handler=False` leaves the stderr lines
    out (Raceplane writes them unless told not to, Dareplane only when asked), `colors` is
    accepted and ignored (the lines are plain), `no_socket_handler=True` leaves the log server
    out.
    """
    host = log_host or os.environ.get("RACEPLANE_LOG_HOST") or DEFAULT_HOST
    port = int(
        log_port if log_port is not None else os.environ.get("RACEPLANE_LOG_PORT", DEFAULT_PORT)
    )
    logger = logging.getLogger(name)
    logger.setLevel(level)
    # Records reach the server once, through this logger's own handlers.
    logger.propagate = False
    for handler in list(logger.handlers):
        if isinstance(handler, _StderrHandler | JsonSocketHandler):
            logger.removeHandler(handler)
    if add_console_handler is not False:
        stderr = _StderrHandler(sys.stderr)
        stderr.setLevel(level if stderr_level is None else stderr_level)
        logger.addHandler(stderr)
    if not no_socket_handler:
        logger.addHandler(sender_for(host, port))
    return logger


def sender_for(host: str, port: int) -> JsonSocketHandler:
    """The process's one handler (and thread) sending to host:port."""
    key = (host, port)
    if key not in _senders or _senders[key].closed:
        _senders[key] = JsonSocketHandler(host, port)
    return _senders[key]

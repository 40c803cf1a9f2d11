"""The central log server: `python -m dareplane_utils.logging.server [--host] [--port 9020]`.

One thread, one selector. Every connection speaks the wire format of framing.py. Its first
frame may say what it is:

- `{"raceplane": "sender", "ack": true}`: a Raceplane sender; after each round of writes the
  server answers `{"ack": N}` (a frame), N = this connection's records now in the file.
- `{"raceplane": "follow", "backlog": N}`: a viewer; it gets the last N records, then every
  new one, as JSON Lines (the same bytes as the file).
- anything else is a record (dareplane-utils' handler starts straight with records).

Records are normalized (records.py) and appended to the JSON Lines file, which rotates by
size. A bad frame (over-long, not UTF-8, not JSON, not an object) closes that connection with
a warning; no other connection notices. Nothing is ever unpickled.
"""

from __future__ import annotations

import argparse
import copy
import logging
import logging.config
import os
import selectors
import signal
import socket
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dareplane_utils.logging.framing import (
    MAX_FRAME_BYTES,
    FrameDecoder,
    FrameError,
    encode_frame,
)
from dareplane_utils.logging.logfile import BACKUPS, DEFAULT_LOGFILE, MAX_BYTES, RotatingLineWriter
from dareplane_utils.logging.logger import default_dareplane_config
from dareplane_utils.logging.records import REQUIRED, local_record, normalize, to_line

DEFAULT_PORT = 9020
MAX_CONNECTIONS = 512
BACKLOG_RECORDS = 1000  # what a viewer attaching with -f can ask to see first
FOLLOWER_BUFFER_BYTES = 4 * 1024 * 1024
_RECV_BYTES = 256 * 1024


@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    peer: str
    decoder: FrameDecoder
    role: str = "new"  # "new" until the first frame, then "sender" or "follower"
    wants_ack: bool = False
    written: int = 0
    acked: int = 0
    outbox: bytearray = field(default_factory=bytearray)
    skipped: int = 0  # records a slow follower missed
    writing: bool = False  # registered for EVENT_WRITE

    @property
    def host(self) -> str:
        return self.peer.rsplit(":", 1)[0]


class LogRecordSocketReceiver:
    """Receives log records from many processes; writes them to a file; feeds live viewers."""

    allow_reuse_address = True  # Dareplane's (socketserver) name: SO_REUSEADDR is set

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        logfile: Path = DEFAULT_LOGFILE,
        max_bytes: int = MAX_BYTES,
        backups: int = BACKUPS,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.logfile = Path(logfile)
        self.writer = RotatingLineWriter(self.logfile, max_bytes, backups)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
            self.socket.listen(128)
        except OSError as error:
            self.socket.close()
            self.writer.close()
            raise OSError(
                error.errno, f"cannot listen on {host}:{port}: {error.strerror}"
            ) from None
        self.socket.setblocking(False)
        self.server_address: tuple[str, int] = self.socket.getsockname()
        self.max_frame_bytes = max_frame_bytes
        self.max_connections = max_connections
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.socket, selectors.EVENT_READ, None)
        self.connections: set[_Connection] = set()
        self.followers: set[_Connection] = set()  # the viewers among them
        self.recent: deque[bytes] = deque(maxlen=BACKLOG_RECORDS)
        self.records_written = 0
        self.abort = 0  # set to 1 (from any thread or a signal handler) to stop serving

    def serve_until_stopped(self) -> None:
        host, port = self.server_address
        # On stderr only: the file starts with the first record received (Dareplane's tests,
        # and readers of the file, expect the records they sent, in order, from the top).
        print(
            f"log server INFO: listening on {host}:{port}, writing {self.logfile}",
            file=sys.stderr,
            flush=True,
        )
        try:
            while not self.abort:
                for key, mask in self.selector.select(timeout=0.2):
                    if key.data is None:
                        self._accept()
                        continue
                    if mask & selectors.EVENT_READ:
                        self._read(key.data)
                    if mask & selectors.EVENT_WRITE and key.data in self.connections:
                        self._drain(key.data)
                self.writer.flush()
                self._acknowledge()
                for connection in list(self.connections):
                    if connection.outbox or connection.skipped:
                        self._drain(connection)
        finally:
            self._notice("INFO", f"log server stopping after {self.records_written} records")
            self.close()

    def close(self) -> None:
        for connection in list(self.connections):
            self._close(connection)
        if self.socket.fileno() != -1:
            self.selector.unregister(self.socket)
            self.socket.close()
        self.selector.close()
        self.writer.close()

    # -- connections -------------------------------------------------------------------------

    def _accept(self) -> None:
        try:
            sock, (host, port) = self.socket.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return
        if len(self.connections) >= self.max_connections:
            sock.close()
            self._notice(
                "WARNING", f"refused {host}:{port}: {self.max_connections} connections open"
            )
            return
        sock.setblocking(False)
        # Keepalive lets the kernel notice peers that vanished without closing.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        connection = _Connection(sock, f"{host}:{port}", FrameDecoder(self.max_frame_bytes))
        self.connections.add(connection)
        self.selector.register(sock, selectors.EVENT_READ, connection)

    def _close(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        self.followers.discard(connection)
        self.selector.unregister(connection.sock)
        connection.sock.close()

    def _read(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(_RECV_BYTES)
        except BlockingIOError:
            return
        except OSError as error:
            self._notice("WARNING", f"{connection.peer}: {error.strerror}; connection closed")
            self._close(connection)
            return
        if not data:
            if connection.decoder.pending:
                self._notice(
                    "WARNING",
                    f"{connection.peer} closed mid-frame; "
                    f"{connection.decoder.pending} bytes of an unfinished record discarded",
                )
            self._close(connection)
            return
        if connection.role == "follower":
            return  # a viewer has nothing more to say; its bytes are ignored
        for event in connection.decoder.feed(data):
            if isinstance(event, FrameError):
                self._notice("WARNING", f"{connection.peer}: {event.reason}; connection closed")
                self._close(connection)
                return
            if connection.role == "new" and self._greeting(connection, event.obj):
                if connection.role == "follower":
                    return
                continue
            try:
                self._record(connection, event.obj, event.payload)
            except Exception as error:  # a bug must not end the server for everyone else
                self._notice(
                    "WARNING",
                    f"{connection.peer}: record not processed ({type(error).__name__}: {error}); "
                    "connection closed",
                )
                self._close(connection)
                return

    def _greeting(self, connection: _Connection, obj: dict) -> bool:
        """Take a first frame that says what the connection is; False if it is a record."""
        kind = obj.get("raceplane")
        if kind not in ("sender", "follow") or "msg" in obj or "message" in obj:
            connection.role = "sender"
            return False
        connection.role = "follower" if kind == "follow" else "sender"
        if kind == "sender":
            connection.wants_ack = bool(obj.get("ack"))
            return True
        self.followers.add(connection)
        backlog = obj.get("backlog", 0)
        count = max(0, min(backlog, BACKLOG_RECORDS)) if isinstance(backlog, int) else 0
        if count:
            connection.outbox += b"".join(list(self.recent)[-count:])
        return True

    # -- records -----------------------------------------------------------------------------

    def _record(self, connection: _Connection, obj: dict, payload: bytes) -> None:
        if obj.keys() >= REQUIRED and "msg" not in obj and b"\n" not in payload:
            line = payload + b"\n"  # already in Raceplane's shape: write the bytes as sent
        else:
            line = to_line(normalize(obj, connection.host))
        self._publish(line)
        connection.written += 1

    def _publish(self, line: bytes) -> None:
        self.writer.write(line)
        self.records_written += 1
        self.recent.append(line)
        for follower in self.followers:
            if len(follower.outbox) + len(line) > FOLLOWER_BUFFER_BYTES:
                follower.skipped += 1
            else:
                follower.outbox += line

    def _notice(self, level: str, message: str) -> None:
        """The server's own record: to stderr for whoever started it, and into the log."""
        print(f"log server {level}: {message}", file=sys.stderr, flush=True)
        self._publish(to_line(local_record("log_server", level, message)))

    # -- replies -----------------------------------------------------------------------------

    def _acknowledge(self) -> None:
        """After the flush: tell each sender how many of its records are in the file."""
        for connection in list(self.connections):
            if connection.wants_ack and connection.written > connection.acked:
                if connection.outbox:
                    continue  # it has not read the last ack yet; a later one covers both
                connection.outbox += encode_frame({"ack": connection.written})
                connection.acked = connection.written

    def _drain(self, connection: _Connection) -> None:
        try:
            sent = connection.sock.send(connection.outbox)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._close(connection)
            return
        del connection.outbox[:sent]
        if not connection.outbox and connection.skipped:
            notice = local_record(
                "log_server",
                "WARNING",
                f"this viewer fell behind: {connection.skipped} records not shown "
                f"(they are in {self.logfile})",
            )
            connection.skipped = 0
            connection.outbox += to_line(notice)
        if connection.writing != bool(connection.outbox):
            connection.writing = bool(connection.outbox)
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if connection.writing else 0)
            self.selector.modify(connection.sock, events, connection)


def modify_root_logger(logfile: Path) -> None:
    """Dareplane's: every logger of this process (through the root logger, DEBUG and up) also
    writes plain lines to `logfile`, and to the console."""
    config = copy.deepcopy(default_dareplane_config)
    config["handlers"]["file"] = {
        "class": "logging.FileHandler",
        "filename": str(Path(logfile).resolve()),
        "formatter": "dareplane_standard",
    }
    config["root"] = {"level": logging.DEBUG, "handlers": ["console", "file"]}
    logging.config.dictConfig(config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dareplane_utils.logging.server",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port for records")
    parser.add_argument("--logfile", type=Path, default=DEFAULT_LOGFILE, help="JSON Lines file")
    parser.add_argument("--max-bytes", type=int, default=MAX_BYTES, help="rotate past this size")
    parser.add_argument("--backups", type=int, default=BACKUPS, help="rotated files kept")
    parser.add_argument(
        "--max-record-bytes", type=int, default=MAX_FRAME_BYTES, help="longest frame accepted"
    )
    return parser


def main(
    argv: Sequence[str] | str | os.PathLike | None = None, logfile: str | os.PathLike | None = None
) -> int:
    """Serve until SIGTERM/SIGINT. `main(logfile)` / `main(logfile=...)` is Dareplane's form:
    the defaults, writing to that file."""
    if isinstance(argv, str | os.PathLike):
        argv, logfile = [], argv
    if logfile is not None and argv is None:
        argv = []
    args = build_parser().parse_args(argv)
    if logfile is not None:
        args.logfile = Path(logfile)
    try:
        server = LogRecordSocketReceiver(
            args.host, args.port, args.logfile, args.max_bytes, args.backups, args.max_record_bytes
        )
    except OSError as error:  # the port is taken, or the log file cannot be opened
        where = f": {error.filename}" if error.filename else ""
        print(f"log server: {error.strerror or error}{where}", file=sys.stderr)
        return 1

    def stop(signum: int, frame: object) -> None:
        server.abort = 1

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_until_stopped()
    return 0


if __name__ == "__main__":
    sys.exit(main())

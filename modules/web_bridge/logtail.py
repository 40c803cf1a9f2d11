"""The log tail: follows the central log server and keeps its newest records.

Attaches as a follower (`{"raceplane": "follow", "backlog": N}`, then JSON Lines), reconnects
when the server goes away, and hands each record to `publish` trimmed to what the dashboard
shows.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from dareplane_utils.logging.framing import encode_frame

from .state import Message

KEEP = 200
BACKLOG = 50
RETRY_S = 1.0
SHOWN = ("timestamp", "name", "levelname", "message")
MAX_MESSAGE = 500  # a tail line; the whole record stays in the log server's file


def trim(record: dict[str, Any]) -> dict[str, Any]:
    shown = {key: record.get(key) for key in SHOWN}
    shown["message"] = str(shown["message"])[:MAX_MESSAGE]
    return shown


class LogTail:
    def __init__(self, host: str, port: int, publish: Callable[[list[Message]], None]) -> None:
        self.address = (host, port)
        self.publish = publish
        self.records: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.connected = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="web-logtail", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Tell the thread to finish, without waiting for it (see stop)."""
        self._stop.set()

    def stop(self) -> None:
        self.request_stop()
        self._thread.join(timeout=5)

    def recent(self, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.records)[-limit:] if limit > 0 else []

    def _run(self) -> None:
        backlog = BACKLOG
        while not self._stop.is_set():
            try:
                sock = socket.create_connection(self.address, timeout=RETRY_S)
            except OSError:
                self._stop.wait(RETRY_S)
                continue
            with sock:
                self.connected = True
                try:
                    sock.sendall(encode_frame({"raceplane": "follow", "backlog": backlog}))
                    self._read(sock)
                except OSError:
                    pass
                self.connected = False
            # Records from a restarted server are all new to us: ask for a full backlog.
            backlog = KEEP
            self._stop.wait(RETRY_S)

    def _read(self, sock: socket.socket) -> None:
        sock.settimeout(0.5)  # wake up to notice stop()
        pending = b""
        while not self._stop.is_set():
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b"\n")
            records = []
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(trim(record))
            if records:
                with self._lock:
                    self.records.extend(records)
                self.publish([Message("log", r) for r in records])

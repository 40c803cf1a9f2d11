"""UJsonSocketHandler (Dareplane's name): logging's SocketHandler sending JSON, not pickle.

Each record goes as a 4-byte big-endian length and one JSON object of the record's attributes,
the frame Raceplane's log server reads. Values JSON cannot hold are sent as their str().
Connecting gives up after a second, so a missing server costs a program little; logging's
SocketHandler then waits before trying again (exponential backoff) and drops records meanwhile.
get_logger's own sender (`logging.sender.JsonSocketHandler`) holds records instead and never
blocks the caller; this class is for code that builds its handler itself, as Dareplane's does.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import socket
import struct


class UJsonSocketHandler(logging.handlers.SocketHandler):
    def makeSocket(self, timeout: float = 1) -> socket.socket:
        return super().makeSocket(timeout=timeout)

    def makePickle(self, record: logging.LogRecord) -> bytes:
        payload = json.dumps(record.__dict__, default=str, ensure_ascii=False).encode()
        return struct.pack(">L", len(payload)) + payload

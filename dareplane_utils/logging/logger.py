"""`get_logger`: human-readable lines on stderr, JSON records to the central log server.

The server is RACEPLANE_LOG_HOST:RACEPLANE_LOG_PORT unless the caller names one (a module's
--log-host/--log-port), else 127.0.0.1:9020. One sender thread per server address serves
every logger of the process; calling get_logger again re-points the logger (modules often
make their logger at import and again in main() once the options are parsed).
"""

from __future__ import annotations

import logging
import os
import sys

from dareplane_utils.logging.sender import JsonSocketHandler

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9020
STDERR_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

_senders: dict[tuple[str, int], JsonSocketHandler] = {}


class _StderrHandler(logging.StreamHandler):
    """Marks the stderr handler get_logger added, so a second call replaces it."""


def get_logger(
    name: str,
    log_host: str | None = None,
    log_port: int | None = None,
    level: int | str = logging.INFO,
) -> logging.Logger:
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
    stderr = _StderrHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter(STDERR_FORMAT))
    logger.addHandler(stderr)
    logger.addHandler(sender_for(host, port))
    return logger


def sender_for(host: str, port: int) -> JsonSocketHandler:
    """The process's one handler (and thread) sending to host:port."""
    key = (host, port)
    if key not in _senders or _senders[key].closed:
        _senders[key] = JsonSocketHandler(host, port)
    return _senders[key]

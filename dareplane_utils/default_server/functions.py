"""Dareplane's message functions: parse a command, call it, stop the work it left running.

DefaultServer does not go through `interpret_msg` (it parses with protocol.py, which these
functions share), but modules and tools written for Dareplane call them directly.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

from dareplane_utils.default_server.protocol import BadMessage, parse_message

logger = logging.getLogger(__name__)
IS_WINDOWS = sys.platform == "win32"


def noop(*args: Any, **kwargs: Any) -> int:
    return 0


def parse_msg(
    msg: bytes, pcommand_map: dict, logger: logging.Logger = logger
) -> tuple[Callable, tuple, dict]:
    """`PCOMM` or `PCOMM|{json object}` -> (callable, (), kwargs).

    A malformed message (more than one `|`, a payload that is not a JSON object) is logged
    and maps onto `noop`; an unknown PCOMM raises KeyError, as Dareplane's does.
    """
    message = parse_message(msg)
    if message is None or isinstance(message, BadMessage):
        why = message.error if message is not None else "empty message"
        logger.error(f"ignoring {msg!r}: {why}")
        return noop, (), {}
    return pcommand_map[message.name], (), dict(message.kwargs)


def interpret_msg(
    binary_msg: bytes, pcommand_map: dict, logger: logging.Logger = logger, **kwargs: Any
) -> Any:
    """Parse `binary_msg` and call its command with the payload (plus `kwargs`); return what
    the command returned: an int, a (Thread, Event) pair, a Popen, or any other result."""
    func, args, payload = parse_msg(binary_msg, pcommand_map=pcommand_map, logger=logger)
    payload.update(kwargs)
    logger.debug(f"Interpreting {func=}, {args=}, {payload=}")
    return func(*args, **payload)


def stop_thread(
    thread: threading.Thread, logger: logging.Logger = logger, timeout: float | None = None
) -> bool:
    """Join a thread whose stop event was set (a thread never started counts as stopped);
    returns whether it ended (`timeout` None waits as long as it takes, as Dareplane)."""
    if thread.ident is None:
        logger.info(f"{thread.name} was never started")
        return True
    thread.join(timeout)
    return not thread.is_alive()


def stop_process(
    process: subprocess.Popen, logger: logging.Logger = logger, timeout: float = 1.0
) -> None:
    """SIGTERM the process and all its descendants, SIGKILL what is left after `timeout`,
    reap the parent."""
    try:
        parent = psutil.Process(process.pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        family = []
    logger.info(f"stopping process {process.pid} and {max(0, len(family) - 1)} descendants")
    for signal_all in (psutil.Process.terminate, psutil.Process.kill):
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                signal_all(member)
        family = _wait_gone(family, timeout)
        if not family:
            break
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)


def _wait_gone(members: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every member has exited; returns those still running at the timeout.

    An exited grandchild stays a zombie until whoever inherits it reaps it, which may take
    long; for stopping, a zombie counts as gone.
    """
    deadline = time.monotonic() + timeout
    while True:
        members = [member for member in members if _running(member)]
        if not members or time.monotonic() >= deadline:
            return members
        time.sleep(0.01)


def _running(member: psutil.Process) -> bool:
    try:
        return member.is_running() and member.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False

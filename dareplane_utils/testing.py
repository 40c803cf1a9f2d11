"""Helpers for tests and benchmarks: LSL isolation, free ports, waiting on conditions.

LSL discovery is multicast on the local network, so two test runs (or a test run and a demo)
would see each other's streams. `isolate_lsl` points liblsl at a config that limits discovery
to this machine and to one session id (`dareplane_utils.lsl_config`, as a stack's own), so
parallel runs never meet. liblsl reads the config
once per process, at its first use, so call it before anything creates an outlet or resolves;
child processes inherit it through the environment.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from dareplane_utils.lsl_config import LslConfig, write_config

T = TypeVar("T")


def write_lsl_config(directory: Path, session_id: str) -> Path:
    """Write an liblsl config that resolves only on this machine, within `session_id`."""
    return write_config(LslConfig(session_id), Path(directory))


def isolate_lsl(prefix: str = "raceplane") -> Path:
    """Give this process (and its children) an LSL session of their own; returns the config."""
    existing = os.environ.get("LSLAPICFG")
    if existing and Path(existing).is_file() and os.environ.get("RACEPLANE_LSL_ISOLATED"):
        return Path(existing)
    directory = Path(tempfile.mkdtemp(prefix=f"{prefix}-lsl-"))
    path = write_lsl_config(directory, f"{prefix}-{uuid.uuid4().hex}")
    os.environ["LSLAPICFG"] = str(path)
    os.environ["RACEPLANE_LSL_ISOLATED"] = "1"
    return path


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port that is free right now for TCP (default) or UDP (`socket.SOCK_DGRAM`)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(
    condition: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str = "condition",
) -> T:
    """Poll `condition` until it returns something truthy; return that, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {message}")
        time.sleep(interval)

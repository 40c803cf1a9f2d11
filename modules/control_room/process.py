"""The process: one launched module process in its own process group, its signals, its psutil
figures, and what it left in its output and log files.

Every module runs in its own process group (start_new_session) so that a signal reaches the
children it started, with PR_SET_PDEATHSIG so that it dies with the control room even when
the control room is SIGKILLed. PR_SET_PDEATHSIG fires when the *thread* that forked the child
ends: the arbiter launches from a thread that outlives its processes (supervisor.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil

_LOG_TAIL_BYTES = 256 * 1024


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn that has Linux send SIGTERM to the child if its parent goes away."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec


_PREEXEC = _parent_death_signal()


class ModuleProcess:
    """A running (or ended) module process and its process group."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self.popen = popen
        self.pid = popen.pid  # also the process group's id
        self._sampler = _psutil(popen.pid)

    @classmethod
    def launch(
        cls, command: list[str], cwd: Path | str | None, env: dict[str, str], output: Path
    ) -> ModuleProcess:
        """Start `command` with stdout and stderr appended to `output`; OSError if it cannot."""
        with open(output, "ab") as handle:
            popen = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: signals reach its children
                preexec_fn=_PREEXEC,
            )
        return cls(popen)

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait(self) -> int:
        return self.popen.wait()

    def wait_for(self, timeout: float) -> bool:
        """True if it has exited within `timeout` seconds."""
        try:
            self.popen.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def signal_group(self, sig: signal.Signals) -> None:
        # The group id is the leader's pid; it outlives the leader while any member lives, so
        # this also reaches orphans of a leader that already exited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def kill_group(self) -> None:
        self.signal_group(signal.SIGKILL)
        self.popen.wait()

    def sample(self) -> tuple[float | None, float | None]:
        """CPU percent since the last sample and resident memory in MiB (None: unknown)."""
        if self._sampler is None or not self.running():
            return None, None
        try:
            return self._sampler.cpu_percent(None), self._sampler.memory_info().rss / 2**20
        except psutil.Error:
            return None, None


def group_members(groups: Iterable[int]) -> list[int]:
    """Live processes (zombies aside) in any of these process groups, grandchildren too."""
    wanted = set(groups)
    left = []
    for process in psutil.process_iter(["status"]):
        try:
            in_ours = os.getpgid(process.pid) in wanted
        except (ProcessLookupError, PermissionError):
            continue
        if in_ours and process.info["status"] != psutil.STATUS_ZOMBIE:
            left.append(process.pid)
    return left


def output_tail(output: Path, lines: int = 15) -> str:
    try:
        text = output.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def log_tail(log_file: Path, pid: int, records: int = 5) -> str:
    """The last records process `pid` sent to the log server, from the end of its file."""
    try:
        with open(log_file, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    mine = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the first line of the window may be cut
        if isinstance(record, dict) and record.get("process") == pid:
            mine.append(f"{record.get('levelname', '?')} {record.get('message', '')}")
    return "\n".join(mine[-records:])


def _psutil(pid: int) -> psutil.Process | None:
    try:
        process = psutil.Process(pid)
        process.cpu_percent(None)  # the first call only starts the measurement
        return process
    except psutil.Error:
        return None

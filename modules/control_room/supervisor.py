"""The supervisor: starts a stack's processes, watches them, restarts the ones that crash,
and stops them all in reverse order.

Each local module has a keeper thread that owns its process from launch to exit: launch, wait
for UP, wait for the exit, then restart per policy or give up. Keeping launch and wait in one
long-lived thread matters for PR_SET_PDEATHSIG, which fires when the *thread* that forked a
child ends: the keeper outlives its processes, so the signal fires only if the control room
itself dies. One health thread sends UP to every running module and samples psutil stats.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import psutil

from modules.control_room import link
from modules.control_room.launch import (
    LaunchError,
    check_installed,
    command_line,
    environment,
    log_server_command,
    working_directory,
)
from modules.control_room.setup import ModuleSpec, Setup

LOG_SERVER = "log_server"
_POLL_S = 0.02
_LOG_TAIL_BYTES = 256 * 1024


class State(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    REMOTE = "remote"  # started elsewhere; `up` says whether it answers


@dataclass
class ModuleStatus:
    """One row of STATUS: what a person (or a test) needs to know about one module."""

    key: str
    kind: str
    address: str
    state: str
    up: bool
    pid: int | None
    uptime_s: float | None
    cpu_percent: float | None
    memory_mb: float | None
    restarts: int
    last_exit: int | None
    error: str


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


class Managed:
    """One module of the stack, local or remote, and everything the supervisor knows of it."""

    def __init__(self, spec: ModuleSpec, command: list[str] | None, output: Path) -> None:
        self.spec = spec
        self.command = command
        self.output = output
        self.state = State.REMOTE if spec.is_remote else State.STOPPED
        self.up = False
        self.process: subprocess.Popen | None = None
        self.psutil_process: psutil.Process | None = None
        self.started_at: float | None = None
        self.restarts = 0  # all restarts, for STATUS
        self.recent_crashes = 0  # crashes not yet forgiven, for the restart policy
        self.last_exit: int | None = None
        self.error = ""
        self.missed_checks = 0
        self.restart_requested = False
        self.kill_reason = ""  # set by whoever kills it, so the crash report says why
        self.keeper: threading.Thread | None = None
        self.lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        return (self.spec.ip, self.spec.port)

    def status(self) -> ModuleStatus:
        cpu = memory = uptime = None
        pid = self.process.pid if self.process and self.process.poll() is None else None
        if pid and self.psutil_process:
            try:
                cpu = self.psutil_process.cpu_percent(None)
                memory = self.psutil_process.memory_info().rss / 2**20
            except psutil.Error:
                pass
            uptime = time.monotonic() - (self.started_at or time.monotonic())
        return ModuleStatus(
            key=self.spec.key,
            kind=self.spec.kind,
            address=f"{self.spec.ip}:{self.spec.port}",
            state=str(self.state),
            up=self.up,
            pid=pid,
            uptime_s=uptime,
            cpu_percent=cpu,
            memory_mb=memory,
            restarts=self.restarts,
            last_exit=self.last_exit,
            error=self.error,
        )

    def output_tail(self, lines: int = 15) -> str:
        try:
            text = self.output.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_tail(self, log_file: Path, records: int = 5) -> str:
        """The last records this module's latest process sent to the log server."""
        if self.process is None:
            return ""
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
            if isinstance(record, dict) and record.get("process") == self.process.pid:
                mine.append(f"{record.get('levelname', '?')} {record.get('message', '')}")
        return "\n".join(mine[-records:])


class Supervisor:
    def __init__(
        self,
        setup: Setup,
        logger: logging.Logger,
        lsl_config: Path,
        on_change: Callable[[ModuleStatus], None] | None = None,
    ) -> None:
        self.setup = setup
        self.settings = setup.settings
        self.lsl_config = lsl_config  # LSLAPICFG of every process started
        self.logger = logger
        self.on_change = on_change or (lambda status: None)
        self.settings.output_dir.mkdir(parents=True, exist_ok=True)
        self.modules: dict[str, Managed] = {}
        if self.settings.log_server:
            self.settings.log_file.parent.mkdir(parents=True, exist_ok=True)
            # The log server is not a DefaultServer: it is healthy when it accepts a connection.
            log_spec = ModuleSpec(
                LOG_SERVER,
                LOG_SERVER,
                self.settings.log_host,
                self.settings.log_port,
                protocol=link.TCP_ONLY,
            )
            self.modules[LOG_SERVER] = Managed(
                log_spec, log_server_command(self.settings), self._output(LOG_SERVER)
            )
        for key, spec in setup.modules.items():
            command = None if spec.is_remote else command_line(spec, self.settings)
            self.modules[key] = Managed(spec, command, self._output(key))
        self.stopping = threading.Event()
        self._groups: set[int] = set()  # every process group we ever started
        self._health = threading.Thread(target=self._check_health, name="health", daemon=True)

    def _output(self, key: str) -> Path:
        return self.settings.output_dir / f"{key}.out"

    # ----- starting -----

    def start(self) -> bool:
        """Bring the stack up wave by wave; True if every module answers UP."""
        self._health.start()
        waves = [[LOG_SERVER]] if LOG_SERVER in self.modules else []
        waves += self.setup.start_waves()
        for wave in waves:
            for key in wave:
                self._begin(self.modules[key])
            for key in wave:
                self._await_settled(self.modules[key])
            if self.stopping.is_set():
                return False
        return all(m.up for m in self.modules.values())

    def _begin(self, managed: Managed) -> None:
        if managed.spec.is_remote:
            managed.keeper = threading.Thread(
                target=self._connect_remote, args=(managed,), daemon=True
            )
        else:
            managed.keeper = threading.Thread(target=self._keep, args=(managed,), daemon=True)
        managed.keeper.name = f"keeper-{managed.spec.key}"
        managed.keeper.start()

    def _await_settled(self, managed: Managed) -> None:
        """Wait until a module has answered UP, or failed for good (its keeper says which)."""
        deadline = time.monotonic() + self.settings.up_timeout_s + 1
        while not (managed.up or managed.state == State.FAILED or self.stopping.is_set()):
            if time.monotonic() > deadline:
                break
            time.sleep(_POLL_S)

    def _connect_remote(self, managed: Managed) -> None:
        managed.up = self._wait_up(managed, None)
        managed.error = (
            ""
            if managed.up
            else f"remote module does not answer UP at {managed.spec.ip}:{managed.spec.port}"
        )
        if not managed.up:
            self.logger.error("%s: %s", managed.spec.key, managed.error)
        self._changed(managed)

    def _keep(self, managed: Managed) -> None:
        """A local module's whole life: launch, wait for UP, wait for exit, restart or give up."""
        spec = managed.spec
        try:
            if spec.key != LOG_SERVER:
                check_installed(spec)
        except LaunchError as error:
            self._fail(managed, str(error))
            return
        while not self.stopping.is_set():
            if not self._launch(managed):
                return
            process = managed.process
            assert process is not None
            if self._wait_up(managed, process):
                self._set(managed, State.RUNNING, up=True)
                self.logger.info("%s is up (pid %d)", spec.key, process.pid)
            elif process.poll() is None and not self.stopping.is_set():
                managed.kill_reason = f"no answer to UP within {self.settings.up_timeout_s:g} s"
                self._kill_group(process)
            code = process.wait()
            _signal_group(process, signal.SIGKILL)  # what a crashed module leaves behind
            managed.up = False
            managed.last_exit = code
            if self.stopping.is_set() or managed.state == State.STOPPING:
                return
            if managed.restart_requested:
                managed.restart_requested = False
                continue
            if not self._may_restart(managed, code):
                return

    def _launch(self, managed: Managed) -> bool:
        assert managed.command is not None
        try:
            # Under the lock, a launch and a stop never cross: the stopper either sees this
            # process or this launch sees the stop.
            with managed.lock, open(managed.output, "ab") as handle:
                if self.stopping.is_set() or managed.state == State.STOPPING:
                    return False
                self._set(managed, State.STARTING, up=False)
                managed.process = subprocess.Popen(
                    managed.command,
                    cwd=working_directory(managed.spec),
                    env=environment(self.settings, self.lsl_config),
                    stdin=subprocess.DEVNULL,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: signals reach its children
                    preexec_fn=_PREEXEC,
                )
        except OSError as error:
            self._fail(managed, f"cannot start {' '.join(managed.command)}: {error}")
            return False
        managed.started_at = time.monotonic()
        self._groups.add(managed.process.pid)
        managed.psutil_process = _psutil(managed.process.pid)
        self.logger.info(
            "started %s: pid %d: %s",
            managed.spec.key,
            managed.process.pid,
            " ".join(managed.command),
        )
        return True

    def _wait_up(self, managed: Managed, process: subprocess.Popen | None) -> bool:
        deadline = time.monotonic() + self.settings.up_timeout_s
        while time.monotonic() < deadline and not self.stopping.is_set():
            if process is not None and process.poll() is not None:
                return False
            if link.is_up(managed.address, managed.spec.protocol, timeout=0.5):
                return True
            time.sleep(_POLL_S)
        return False

    def _may_restart(self, managed: Managed, code: int) -> bool:
        spec, policy = managed.spec, self.settings.restart
        ran_for = time.monotonic() - (managed.started_at or time.monotonic())
        if ran_for >= policy.reset_after_s:
            managed.recent_crashes = 0
        reason = f"exited with code {code}" + (f" ({_signal_name(-code)})" if code < 0 else "")
        if managed.kill_reason:
            reason, managed.kill_reason = f"killed: {managed.kill_reason}", ""
        if not spec.restart or managed.recent_crashes >= policy.max_restarts:
            why = (
                "restart is off"
                if not spec.restart
                else f"{policy.max_restarts} restarts did not help"
            )
            self._fail(managed, f"{reason}; {why}")
            return False
        tail = self._tails(managed)
        delay = policy.delay(managed.recent_crashes)
        managed.recent_crashes += 1
        managed.restarts += 1
        managed.error = reason
        self._set(managed, State.BACKOFF, up=False)
        self.logger.warning(
            "%s %s; restart %d of %d in %.2f s%s",
            spec.key,
            reason,
            managed.recent_crashes,
            policy.max_restarts,
            delay,
            tail,
        )
        return not self.stopping.wait(delay)

    def _fail(self, managed: Managed, error: str) -> None:
        managed.error = error
        self.logger.error("%s failed: %s%s", managed.spec.key, error, self._tails(managed))
        self._set(managed, State.FAILED, up=False)

    def _tails(self, managed: Managed) -> str:
        """What a crashed module said last: its output, and its records in the log file."""
        text = ""
        output = managed.output_tail()
        if output:
            text += f"\n--- output tail ({managed.output}):\n{output}"
        records = managed.log_tail(self.settings.log_file) if self.settings.log_server else ""
        if records:
            text += f"\n--- last log records:\n{records}"
        return text

    def _set(self, managed: Managed, state: State, up: bool) -> None:
        managed.state = state
        managed.up = up
        if state == State.RUNNING:
            managed.error = ""
            managed.missed_checks = 0
        self._changed(managed)

    def _changed(self, managed: Managed) -> None:
        try:
            self.on_change(managed.status())
        except Exception:  # a display problem must never stop supervision
            self.logger.exception("status callback failed")

    # ----- health -----

    def _check_health(self) -> None:
        while not self.stopping.wait(self.settings.health_interval_s):
            for managed in list(self.modules.values()):
                if self.stopping.is_set():
                    return
                if managed.state not in (State.RUNNING, State.REMOTE):
                    continue
                if managed.state == State.REMOTE and managed.keeper and managed.keeper.is_alive():
                    continue  # still being connected to for the first time
                self._check_one(managed)

    def _check_one(self, managed: Managed) -> None:
        answered = link.is_up(managed.address, managed.spec.protocol, timeout=1.0)
        was_up, managed.up = managed.up, answered
        if answered:
            managed.missed_checks = 0
            if not was_up:
                managed.error = ""
                self._changed(managed)
            return
        managed.missed_checks += 1
        managed.error = f"missed {managed.missed_checks} UP check(s)"
        if was_up:
            self.logger.warning("%s does not answer UP", managed.spec.key)
            self._changed(managed)
        process = managed.process
        if (
            managed.state == State.RUNNING
            and process
            and managed.missed_checks >= self.settings.health_failures
        ):
            managed.kill_reason = f"no answer to {managed.missed_checks} UP checks in a row"
            self.logger.error(
                "%s: %s: killing it to restart", managed.spec.key, managed.kill_reason
            )
            self._kill_group(process)

    # ----- commands from the control room -----

    def restart(self, key: str) -> None:
        """Stop a module cleanly and start it again (a failed one gets a fresh keeper)."""
        managed = self.modules[key]
        if managed.spec.is_remote:
            raise ValueError(f"{key} is a remote module: restart it on its own host")
        if (
            managed.keeper
            and managed.keeper.is_alive()
            and managed.process
            and managed.process.poll() is None
        ):
            managed.restart_requested = True
            self._stop_process(managed)
            return
        if managed.keeper and managed.keeper.is_alive():
            raise ValueError(f"{key} is {managed.state} already")
        managed.recent_crashes = 0
        managed.error = ""
        self._begin(managed)

    # ----- stopping -----

    def stop_modules(self) -> None:
        """Stop every module in reverse start order: STOP, CLOSE, SIGTERM, SIGKILL.

        The log server is left running, so the last words of every module (and of the
        control room) reach it; `stop_log_server` ends it.
        """
        self.stopping.set()
        for wave in reversed(self.setup.start_waves()):
            modules = [self.modules[key] for key in wave]
            threads = [threading.Thread(target=self._stop_module, args=(m,)) for m in modules]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        self._health.join(timeout=self.settings.health_interval_s + 2)

    def stop_log_server(self) -> None:
        if LOG_SERVER in self.modules:
            self._stop_module(self.modules[LOG_SERVER])

    def shutdown(self) -> None:
        self.stop_modules()
        self.stop_log_server()

    def _stop_module(self, managed: Managed) -> None:
        if managed.spec.is_remote:
            # Someone else started it on its own host; it stops its work but stays reachable.
            if managed.up:
                link.tell(managed.address, "STOP", managed.spec.protocol, timeout=1.0)
            managed.up = False
            self._changed(managed)
            return
        with managed.lock:
            process = managed.process
            if managed.state == State.FAILED and (process is None or process.poll() is not None):
                return  # nothing runs; keep saying why it failed
            self._set(managed, State.STOPPING, up=False)
        self._stop_process(managed)
        if managed.keeper and managed.keeper is not threading.current_thread():
            managed.keeper.join(timeout=self.settings.grace_s * 2 + 1)
        self._set(managed, State.STOPPED, up=False)

    def _stop_process(self, managed: Managed) -> None:
        with managed.lock:
            process = managed.process
        if process is None or process.poll() is not None:
            return
        grace = self.settings.grace_s
        if managed.spec.key != LOG_SERVER:
            for command in ("STOP", "CLOSE"):
                if process.poll() is not None:
                    break
                problem = link.tell(
                    managed.address, command, managed.spec.protocol, min(1.0, grace)
                )
                if problem:
                    self.logger.info("%s: %s", managed.spec.key, problem)
            if not _wait(process, grace):
                self.logger.warning("%s did not exit after CLOSE: SIGTERM", managed.spec.key)
                _signal_group(process, signal.SIGTERM)
        else:
            _signal_group(process, signal.SIGTERM)  # the log server takes no commands
        if not _wait(process, grace):
            self.logger.warning("%s did not exit after SIGTERM: SIGKILL", managed.spec.key)
        self._kill_group(process)  # also reaches children it may have left behind

    def leftovers(self, patience_s: float = 1.0) -> list[int]:
        """Live processes (zombies aside) in any process group we started; empty after a
        clean shutdown. Members are found by group id, so grandchildren count too. A process
        just sent SIGKILL takes a moment to die: ask again for up to `patience_s`."""
        deadline = time.monotonic() + patience_s
        while (left := self._members()) and time.monotonic() < deadline:
            time.sleep(_POLL_S)
        return left

    def _members(self) -> list[int]:
        left = []
        for process in psutil.process_iter(["status"]):
            try:
                in_ours = os.getpgid(process.pid) in self._groups
            except (ProcessLookupError, PermissionError):
                continue
            if in_ours and process.info["status"] != psutil.STATUS_ZOMBIE:
                left.append(process.pid)
        return left

    def kill_all(self) -> None:
        """No patience left (a second Ctrl-C): SIGKILL every process group at once."""
        self.stopping.set()
        for managed in self.modules.values():
            if managed.process is not None:
                _signal_group(managed.process, signal.SIGKILL)

    def _kill_group(self, process: subprocess.Popen) -> None:
        _signal_group(process, signal.SIGKILL)
        process.wait()

    def statuses(self) -> list[ModuleStatus]:
        return [managed.status() for managed in self.modules.values()]

    def status_dicts(self) -> list[dict[str, Any]]:
        return [asdict(status) for status in self.statuses()]


def _wait(process: subprocess.Popen, timeout: float) -> bool:
    try:
        process.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    # The group id is the leader's pid (start_new_session); it outlives the leader while any
    # member lives, so this also reaches orphans of a leader that already exited.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _psutil(pid: int) -> psutil.Process | None:
    try:
        process = psutil.Process(pid)
        process.cpu_percent(None)  # the first call only starts the measurement
        return process
    except psutil.Error:
        return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"

"""The arbiter: starts a stack's modules in waves, runs their keepers and the health checks,
carries out what each module's watcher decides, and stops them all in reverse order.

Split the way circus splits it: this file decides *when* (start waves, stop order, threads),
watcher.py decides *what next* for one module (restart policy, health verdicts; no I/O) and
process.py does the OS work (launch, process group, signals, psutil sampling).

Each local module has a keeper thread that owns its process from launch to exit: launch, wait
for UP, wait for the exit, then do what the watcher says. Keeping launch and wait in one
long-lived thread matters for PR_SET_PDEATHSIG, which fires when the *thread* that forked a
child ends: the keeper outlives its processes, so the signal fires only if the control room
itself dies. One health thread sends UP to every running module.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modules.control_room import link
from modules.control_room.launch import (
    LaunchError,
    check_installed,
    command_line,
    environment,
    log_server_command,
    working_directory,
)
from modules.control_room.process import ModuleProcess, group_members, log_tail, output_tail
from modules.control_room.setup import ModuleSpec, Setup
from modules.control_room.watcher import Next, State, Watcher

LOG_SERVER = "log_server"
_POLL_S = 0.02


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


class Managed:
    """One module of the stack, local or remote: its spec, its watcher, its latest process."""

    def __init__(
        self, spec: ModuleSpec, command: list[str] | None, output: Path, watcher: Watcher
    ) -> None:
        self.spec = spec
        self.command = command
        self.output = output
        self.watcher = watcher
        self.process: ModuleProcess | None = None
        self.keeper: threading.Thread | None = None
        self.lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        return (self.spec.ip, self.spec.port)

    @property
    def state(self) -> State:
        return self.watcher.state

    @property
    def up(self) -> bool:
        return self.watcher.up

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def status(self) -> ModuleStatus:
        watcher = self.watcher
        pid = uptime = None
        cpu, memory = None, None
        if self.process is not None and self.process.running():
            pid = self.process.pid
            cpu, memory = self.process.sample()
            uptime = time.monotonic() - (watcher.started_at or time.monotonic())
        return ModuleStatus(
            key=self.spec.key,
            kind=self.spec.kind,
            address=f"{self.spec.ip}:{self.spec.port}",
            state=str(watcher.state),
            up=watcher.up,
            pid=pid,
            uptime_s=uptime,
            cpu_percent=cpu,
            memory_mb=memory,
            restarts=watcher.restarts,
            last_exit=watcher.last_exit,
            error=watcher.error,
        )


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
            self.modules[LOG_SERVER] = self._managed(log_spec, log_server_command(self.settings))
        for key, spec in setup.modules.items():
            command = None if spec.is_remote else command_line(spec, self.settings)
            self.modules[key] = self._managed(spec, command)
        self.stopping = threading.Event()
        self._groups: set[int] = set()  # every process group we ever started
        self._health = threading.Thread(target=self._check_health, name="health", daemon=True)

    def _managed(self, spec: ModuleSpec, command: list[str] | None) -> Managed:
        watcher = Watcher(
            spec.key,
            self.settings.restart,
            restart_on_crash=spec.restart,
            health_failures=self.settings.health_failures,
            remote=spec.is_remote,
        )
        return Managed(spec, command, self.settings.output_dir / f"{spec.key}.out", watcher)

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
        answered = self._wait_up(managed, None)
        managed.watcher.remote_answered(answered, f"{managed.spec.ip}:{managed.spec.port}")
        if not answered:
            self.logger.error("%s: %s", managed.spec.key, managed.watcher.error)
        self._changed(managed)

    def _keep(self, managed: Managed) -> None:
        """A local module's whole life: launch, wait for UP, wait for exit, restart or give up."""
        spec, watcher = managed.spec, managed.watcher
        try:
            if spec.key != LOG_SERVER:
                check_installed(spec)
        except LaunchError as error:
            self._fail(managed, str(error))
            return
        while not self.stopping.is_set():
            process = self._launch(managed)
            if process is None:
                return
            if self._wait_up(managed, process):
                watcher.answered_up()
                self._changed(managed)
                self.logger.info("%s is up (pid %d)", spec.key, process.pid)
            elif process.running() and not self.stopping.is_set():
                watcher.up_timed_out(self.settings.up_timeout_s)
                process.kill_group()
            code = process.wait()
            process.signal_group(signal.SIGKILL)  # what a crashed module leaves behind
            if self.stopping.is_set():
                watcher.up = False
                watcher.last_exit = code
                return
            after = watcher.exited(code, time.monotonic())
            if after.next == Next.STOP:
                return
            if after.next == Next.GIVE_UP:
                self._fail(managed, watcher.error)
                return
            if after.next == Next.RESTART:
                tail = self._tails(managed)  # before the backoff: a relaunch appends to it
                self._changed(managed)
                self.logger.warning(
                    "%s %s; restart %d of %d in %.2f s%s",
                    spec.key,
                    after.reason,
                    watcher.recent_crashes,
                    watcher.policy.max_restarts,
                    after.delay_s,
                    tail,
                )
                if self.stopping.wait(after.delay_s):
                    return

    def _launch(self, managed: Managed) -> ModuleProcess | None:
        assert managed.command is not None
        try:
            # Under the lock, a launch and a stop never cross: the stopper either sees this
            # process or this launch sees the stop.
            with managed.lock:
                if self.stopping.is_set() or managed.state == State.STOPPING:
                    return None
                managed.watcher.launched(time.monotonic())
                self._changed(managed)
                managed.process = ModuleProcess.launch(
                    managed.command,
                    working_directory(managed.spec),
                    environment(self.settings, self.lsl_config),
                    managed.output,
                )
        except OSError as error:
            self._fail(managed, f"cannot start {' '.join(managed.command)}: {error}")
            return None
        managed.watcher.started_at = time.monotonic()  # Popen itself may be slow under load
        self._groups.add(managed.process.pid)
        self.logger.info(
            "started %s: pid %d: %s",
            managed.spec.key,
            managed.process.pid,
            " ".join(managed.command),
        )
        return managed.process

    def _wait_up(self, managed: Managed, process: ModuleProcess | None) -> bool:
        deadline = time.monotonic() + self.settings.up_timeout_s
        while time.monotonic() < deadline and not self.stopping.is_set():
            if process is not None and not process.running():
                return False
            if link.is_up(managed.address, managed.spec.protocol, timeout=0.5):
                return True
            time.sleep(_POLL_S)
        return False

    def _fail(self, managed: Managed, error: str) -> None:
        managed.watcher.error = error
        self.logger.error("%s failed: %s%s", managed.spec.key, error, self._tails(managed))
        managed.watcher.fail(error)
        self._changed(managed)

    def _tails(self, managed: Managed) -> str:
        """What a crashed module said last: its output, and its records in the log file."""
        text = ""
        output = output_tail(managed.output)
        if output:
            text += f"\n--- output tail ({managed.output}):\n{output}"
        records = ""
        if self.settings.log_server and managed.process is not None:
            records = log_tail(self.settings.log_file, managed.process.pid)
        if records:
            text += f"\n--- last log records:\n{records}"
        return text

    def _set(self, managed: Managed, state: State, up: bool) -> None:
        managed.watcher.set(state, up)
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
                if not managed.watcher.health_due():
                    continue
                if managed.state == State.REMOTE and managed.keeper and managed.keeper.is_alive():
                    continue  # still being connected to for the first time
                self._check_one(managed)

    def _check_one(self, managed: Managed) -> None:
        answered = link.is_up(managed.address, managed.spec.protocol, timeout=1.0)
        verdict = managed.watcher.checked(answered)
        if verdict.lost:
            self.logger.warning("%s does not answer UP", managed.spec.key)
        if verdict.changed:
            self._changed(managed)
        process = managed.process
        if verdict.kill and process is not None:
            self.logger.error(
                "%s: %s: killing it to restart", managed.spec.key, managed.watcher.kill_reason
            )
            process.kill_group()

    # ----- commands from the control room -----

    def restart(self, key: str) -> None:
        """Stop a module cleanly and start it again (a failed one gets a fresh keeper)."""
        managed = self.modules[key]
        if managed.spec.is_remote:
            raise ValueError(f"{key} is a remote module: restart it on its own host")
        keeper_alive = managed.keeper is not None and managed.keeper.is_alive()
        if keeper_alive and managed.running():
            managed.watcher.restart_requested = True
            self._stop_process(managed)
            return
        if keeper_alive:
            raise ValueError(f"{key} is {managed.state} already")
        managed.watcher.revive()
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
            managed.watcher.up = False
            self._changed(managed)
            return
        with managed.lock:
            if managed.state == State.FAILED and not managed.running():
                return  # nothing runs; keep saying why it failed
            self._set(managed, State.STOPPING, up=False)
        self._stop_process(managed)
        if managed.keeper and managed.keeper is not threading.current_thread():
            managed.keeper.join(timeout=self.settings.grace_s * 2 + 1)
        self._set(managed, State.STOPPED, up=False)

    def _stop_process(self, managed: Managed) -> None:
        with managed.lock:
            process = managed.process
        if process is None or not process.running():
            return
        grace = self.settings.grace_s
        if managed.spec.key != LOG_SERVER:
            for command in ("STOP", "CLOSE"):
                if not process.running():
                    break
                problem = link.tell(
                    managed.address, command, managed.spec.protocol, min(1.0, grace)
                )
                if problem:
                    self.logger.info("%s: %s", managed.spec.key, problem)
            if not process.wait_for(grace):
                self.logger.warning("%s did not exit after CLOSE: SIGTERM", managed.spec.key)
                process.signal_group(signal.SIGTERM)
        else:
            process.signal_group(signal.SIGTERM)  # the log server takes no commands
        if not process.wait_for(grace):
            self.logger.warning("%s did not exit after SIGTERM: SIGKILL", managed.spec.key)
        process.kill_group()  # also reaches children it may have left behind

    def leftovers(self, patience_s: float = 1.0) -> list[int]:
        """Live processes (zombies aside) in any process group we started; empty after a
        clean shutdown. A process just sent SIGKILL takes a moment to die: ask again for up
        to `patience_s`."""
        deadline = time.monotonic() + patience_s
        while (left := group_members(self._groups)) and time.monotonic() < deadline:
            time.sleep(_POLL_S)
        return left

    def kill_all(self) -> None:
        """No patience left (a second Ctrl-C): SIGKILL every process group at once."""
        self.stopping.set()
        for managed in self.modules.values():
            if managed.process is not None:
                managed.process.signal_group(signal.SIGKILL)

    def statuses(self) -> list[ModuleStatus]:
        return [managed.status() for managed in self.modules.values()]

    def status_dicts(self) -> list[dict[str, Any]]:
        return [asdict(status) for status in self.statuses()]

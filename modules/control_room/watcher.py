"""The watcher: one module's supervision state and the rules that move it, without I/O.

The arbiter (supervisor.py) reports what happened to a module (launched, answered UP, exited
with a code, answered a health check or not, asked to stop) and the watcher answers what to do
next (restart now, after a backoff, or give up; kill a module that stopped answering). Time is
passed in, so the whole restart and health policy is tested without processes
(tests/test_watcher_policy.py).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import StrEnum

from modules.control_room.setup import RestartPolicy


class State(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    REMOTE = "remote"  # started elsewhere; `up` says whether it answers


class Next(StrEnum):
    """What the arbiter does after a module's process exited."""

    STOP = "stop"  # it was being stopped: nothing more
    RELAUNCH = "relaunch"  # a RESTART command: launch again at once, not a crash
    RESTART = "restart"  # a crash within the policy: launch again after `delay_s`
    GIVE_UP = "give_up"  # a crash the policy does not allow to restart: FAILED


@dataclass(frozen=True)
class AfterExit:
    next: Next
    delay_s: float = 0.0
    reason: str = ""  # why it exited, for the log: "exited with code 3", "killed: ..."


@dataclass(frozen=True)
class HealthVerdict:
    changed: bool  # `up` flipped: tell whoever displays STATUS
    lost: bool  # it was up and no longer answers: worth a warning
    kill: bool  # a local module that missed too many checks: kill it so it restarts


@dataclass
class Watcher:
    """Everything STATUS says about a module except its process figures."""

    key: str
    policy: RestartPolicy
    restart_on_crash: bool  # the module's `restart` setting
    health_failures: int  # UP checks missed in a row before a running module is killed
    remote: bool = False
    state: State = State.STOPPED
    up: bool = False
    started_at: float | None = None
    restarts: int = 0  # all restarts, for STATUS
    recent_crashes: int = 0  # crashes not yet forgiven, for the restart policy
    last_exit: int | None = None
    error: str = ""
    missed_checks: int = 0
    restart_requested: bool = False
    kill_reason: str = ""  # set by whoever kills it, so the crash report says why

    def __post_init__(self) -> None:
        if self.remote:
            self.state = State.REMOTE

    def set(self, state: State, up: bool) -> None:
        self.state = state
        self.up = up
        if state == State.RUNNING:
            self.error = ""
            self.missed_checks = 0

    def launched(self, now: float) -> None:
        self.set(State.STARTING, up=False)
        self.started_at = now

    def answered_up(self) -> None:
        self.set(State.RUNNING, up=True)

    def up_timed_out(self, timeout_s: float) -> None:
        self.kill_reason = f"no answer to UP within {timeout_s:g} s"

    def fail(self, error: str) -> None:
        self.error = error
        self.set(State.FAILED, up=False)

    def exited(self, code: int, now: float) -> AfterExit:
        """Its process ended with `code` at `now`: stop, relaunch, restart later or give up."""
        self.up = False
        self.last_exit = code
        if self.state == State.STOPPING:
            return AfterExit(Next.STOP)
        if self.restart_requested:
            self.restart_requested = False
            return AfterExit(Next.RELAUNCH)
        ran_for = now - (self.started_at if self.started_at is not None else now)
        if ran_for >= self.policy.reset_after_s:
            self.recent_crashes = 0
        reason = f"exited with code {code}" + (f" ({_signal_name(-code)})" if code < 0 else "")
        if self.kill_reason:
            reason, self.kill_reason = f"killed: {self.kill_reason}", ""
        if not self.restart_on_crash or self.recent_crashes >= self.policy.max_restarts:
            why = (
                "restart is off"
                if not self.restart_on_crash
                else f"{self.policy.max_restarts} restarts did not help"
            )
            self.error = f"{reason}; {why}"  # state FAILED comes with the arbiter's report
            return AfterExit(Next.GIVE_UP, reason=reason)
        delay = self.policy.delay(self.recent_crashes)
        self.recent_crashes += 1
        self.restarts += 1
        self.error = reason
        self.set(State.BACKOFF, up=False)
        return AfterExit(Next.RESTART, delay_s=delay, reason=reason)

    def remote_answered(self, answered: bool, address: str) -> None:
        self.up = answered
        self.error = "" if answered else f"remote module does not answer UP at {address}"

    def health_due(self) -> bool:
        return self.state in (State.RUNNING, State.REMOTE)

    def checked(self, answered: bool) -> HealthVerdict:
        """The result of one UP health check."""
        was_up, self.up = self.up, answered
        if answered:
            self.missed_checks = 0
            if not was_up:
                self.error = ""
            return HealthVerdict(changed=not was_up, lost=False, kill=False)
        self.missed_checks += 1
        self.error = f"missed {self.missed_checks} UP check(s)"
        kill = self.state == State.RUNNING and self.missed_checks >= self.health_failures
        if kill:
            self.kill_reason = f"no answer to {self.missed_checks} UP checks in a row"
        return HealthVerdict(changed=was_up, lost=was_up, kill=kill)

    def revive(self) -> None:
        """RESTART of a module whose keeper gave up: a fresh restart budget."""
        self.recent_crashes = 0
        self.error = ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"

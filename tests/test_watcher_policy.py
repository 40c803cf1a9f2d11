"""The watcher's restart and health policy as a state machine, without processes: each test
feeds it events (launched, answered UP, exited with a code at a time, a health check) and
checks what it decides."""

from __future__ import annotations

import signal

from modules.control_room.setup import RestartPolicy
from modules.control_room.watcher import Next, State, Watcher

POLICY = RestartPolicy(max_restarts=2, backoff_s=0.1, backoff_max_s=5.0, reset_after_s=30.0)


def watcher(**overrides: object) -> Watcher:
    settings: dict = {"restart_on_crash": True, "health_failures": 2, **overrides}
    return Watcher("m", POLICY, **settings)


def running(w: Watcher, now: float = 0.0) -> Watcher:
    w.launched(now)
    assert (w.state, w.up, w.started_at) == (State.STARTING, False, now)
    w.answered_up()
    assert (w.state, w.up) == (State.RUNNING, True)
    return w


def test_a_local_module_starts_stopped_and_a_remote_one_remote() -> None:
    assert watcher().state == State.STOPPED
    assert watcher(remote=True).state == State.REMOTE


def test_crashes_back_off_then_give_up_saying_why() -> None:
    w = running(watcher())
    first = w.exited(3, now=1.0)
    assert (first.next, first.delay_s, first.reason) == (Next.RESTART, 0.0, "exited with code 3")
    assert (w.state, w.up, w.restarts, w.last_exit) == (State.BACKOFF, False, 1, 3)
    running(w, now=2.0)
    second = w.exited(3, now=3.0)
    assert (second.next, second.delay_s) == (Next.RESTART, 0.1)
    running(w, now=4.0)
    third = w.exited(3, now=5.0)
    assert third.next == Next.GIVE_UP
    assert w.error == "exited with code 3; 2 restarts did not help"
    assert w.restarts == 2  # giving up is not a restart


def test_running_long_enough_forgives_earlier_crashes() -> None:
    w = running(watcher())
    assert w.exited(1, now=1.0).next == Next.RESTART
    running(w, now=2.0)
    assert w.exited(1, now=3.0).next == Next.RESTART
    running(w, now=4.0)
    # 30 s of good running since the last launch: the budget is whole again.
    after = w.exited(1, now=4.0 + POLICY.reset_after_s)
    assert (after.next, after.delay_s, w.recent_crashes, w.restarts) == (Next.RESTART, 0.0, 1, 3)


def test_restart_off_makes_a_crash_final() -> None:
    w = running(watcher(restart_on_crash=False))
    after = w.exited(-signal.SIGKILL, now=1.0)
    assert after.next == Next.GIVE_UP
    assert w.error == "exited with code -9 (SIGKILL); restart is off"
    w.fail(w.error)
    assert (w.state, w.up, w.restarts) == (State.FAILED, False, 0)


def test_a_kill_reason_replaces_the_exit_code_once() -> None:
    w = running(watcher())
    w.up_timed_out(20.0)
    assert w.exited(-9, now=1.0).reason == "killed: no answer to UP within 20 s"
    running(w, now=2.0)
    assert w.exited(-9, now=3.0).reason == "exited with code -9 (SIGKILL)"


def test_a_requested_restart_relaunches_without_counting_a_crash() -> None:
    w = running(watcher())
    w.restart_requested = True
    assert w.exited(0, now=1.0).next == Next.RELAUNCH
    assert (w.restarts, w.recent_crashes, w.restart_requested, w.last_exit) == (0, 0, False, 0)


def test_an_exit_while_stopping_is_the_end() -> None:
    w = running(watcher())
    w.set(State.STOPPING, up=False)
    assert w.exited(0, now=1.0).next == Next.STOP
    assert w.restarts == 0 and w.state == State.STOPPING


def test_missed_health_checks_kill_a_running_module_after_the_limit() -> None:
    w = running(watcher())
    first = w.checked(False)
    assert (first.changed, first.lost, first.kill) == (True, True, False)
    assert (w.up, w.error) == (False, "missed 1 UP check(s)")
    second = w.checked(False)
    assert (second.changed, second.lost, second.kill) == (False, False, True)
    assert w.kill_reason == "no answer to 2 UP checks in a row"
    assert w.exited(-9, now=1.0).reason == "killed: no answer to 2 UP checks in a row"


def test_an_answer_resets_the_missed_checks() -> None:
    w = running(watcher())
    w.checked(False)
    back = w.checked(True)
    assert (back.changed, back.lost, back.kill) == (True, False, False)
    assert (w.up, w.error, w.missed_checks) == (True, "", 0)
    assert not w.checked(False).kill  # counting starts again


def test_a_remote_module_is_never_killed() -> None:
    w = watcher(remote=True)
    w.remote_answered(False, "10.0.0.7:8104")
    assert w.error == "remote module does not answer UP at 10.0.0.7:8104"
    assert w.health_due()
    for _ in range(5):
        assert not w.checked(False).kill
    w.checked(True)
    assert (w.up, w.error, w.state) == (True, "", State.REMOTE)


def test_only_running_and_remote_modules_are_health_checked() -> None:
    w = watcher()
    assert not w.health_due()
    w.launched(0.0)
    assert not w.health_due()
    w.answered_up()
    assert w.health_due()
    w.exited(1, now=1.0)  # backoff
    assert not w.health_due()


def test_revive_gives_a_failed_module_a_fresh_budget() -> None:
    w = running(watcher())
    for now in (1.0, 3.0, 5.0):
        if w.exited(3, now=now).next == Next.RESTART:
            running(w, now=now + 1)
        else:
            w.fail(w.error)
    assert w.state == State.FAILED and w.recent_crashes == 2
    w.revive()
    assert (w.recent_crashes, w.error) == (0, "")
    running(w, now=10.0)
    assert w.exited(3, now=11.0).next == Next.RESTART
    assert w.restarts == 3  # STATUS keeps counting every restart

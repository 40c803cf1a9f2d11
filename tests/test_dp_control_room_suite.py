"""dp-control-room 0.1.2's own tests, with dareplane-utils 0.0.24 and with our dareplane_utils.

Both runs use a venv holding dp-control-room (from the shared peer) and its dependencies from
PyPI, side by side, each in a private network namespace (its tests use the fixed ports 8080,
8050 and 9020). Every test that passes with theirs must pass with ours; a test that passed
with theirs and failed with ours gets one more run with ours alone (their tests wait with
fixed sleeps, which a loaded machine can outlast) before it counts as a regression.
"""

from __future__ import annotations

import shutil

import pytest

from tests.peer_suites import (
    DP_CONTROL_ROOM,
    dp_control_room_python,
    finish_suite,
    our_package_path,
    private_network_available,
    start_suite,
    summary,
)

NO_PRIVATE_NETWORK = private_network_available()
pytestmark = pytest.mark.skipif(NO_PRIVATE_NETWORK is not None, reason=str(NO_PRIVATE_NETWORK))

# 22 tests at the peer's commit; 15 pass with dareplane-utils 0.0.24 on a quiet machine.
MIN_PASSING_WITH_THEIRS = 12


@pytest.mark.timeout(600)
def test_their_tests_pass_with_ours(tmp_path):
    python = dp_control_room_python()
    ours_path = our_package_path(tmp_path / "ours-path")
    started = []
    for label, path in (("theirs", None), ("ours", ours_path)):
        workdir = tmp_path / label
        shutil.copytree(DP_CONTROL_ROOM, workdir)
        started.append(start_suite(python, workdir, label, path, ["tests"]))
    theirs, ours = (finish_suite(run, timeout=400) for run in started)

    regressions = sorted(set(theirs.with_outcome("passed")) - set(ours.with_outcome("passed")))
    last_run = ours
    if regressions:
        # each alone, in its own process: timing, and records held from earlier tests
        again = [
            start_suite(python, ours.workdir, f"ours-again-{i}", ours_path, [test])
            for i, test in enumerate(regressions)
        ]
        retried = [finish_suite(run, timeout=300) for run in again]
        failing = [
            (test, run)
            for test, run in zip(regressions, retried, strict=True)
            if run.outcomes.get(test) != "passed"
        ]
        regressions = [test for test, _ in failing]
        last_run = failing[0][1] if failing else ours
    print(summary("dp-control-room 0.1.2's tests", theirs, ours))
    assert len(theirs.with_outcome("passed")) >= MIN_PASSING_WITH_THEIRS, theirs.output[-6000:]
    assert not regressions, last_run.describe(regressions)

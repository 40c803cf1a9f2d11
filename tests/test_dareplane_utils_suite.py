"""dareplane-utils 0.0.24's own test suite, from its sdist, against theirs and against ours.

Both runs go side by side in the same venv (their package and its dependencies from PyPI);
"ours" puts our dareplane_utils first on PYTHONPATH. Every test that passes against theirs
must pass against ours. Their suite has timing checks (the event loop's interval accuracy,
sleeps of 0.1 s before an assertion); on a loaded machine those can fail on either side, so
a test that passed on theirs and failed on ours gets one more run on ours alone before it
counts as a regression. What fails on theirs too is printed with the counts.
"""

from __future__ import annotations

import pytest

from tests.peer_suites import (
    dareplane_utils_sdist,
    dareplane_utils_suite_python,
    finish_suite,
    our_package_path,
    private_network_available,
    start_suite,
    summary,
    unpack_sdist,
)

NO_PRIVATE_NETWORK = private_network_available()
pytestmark = pytest.mark.skipif(NO_PRIVATE_NETWORK is not None, reason=str(NO_PRIVATE_NETWORK))

# Their suite has 61 tests; far fewer passing on theirs means the run itself went wrong.
MIN_PASSING_ON_THEIRS = 45


@pytest.mark.timeout(900)
def test_their_suite_passes_on_ours(tmp_path):
    python = dareplane_utils_suite_python()
    archive = dareplane_utils_sdist()
    ours_path = our_package_path(tmp_path / "ours-path")
    started = [
        start_suite(python, unpack_sdist(archive, tmp_path / label), label, path, ["tests"])
        for label, path in (("theirs", None), ("ours", ours_path))
    ]
    theirs, ours = (finish_suite(run, timeout=600) for run in started)

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
    print(summary("dareplane-utils 0.0.24's suite", theirs, ours))
    assert len(theirs.with_outcome("passed")) >= MIN_PASSING_ON_THEIRS, theirs.output[-6000:]
    assert not regressions, last_run.describe(regressions)

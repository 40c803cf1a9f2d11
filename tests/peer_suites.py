"""Run a peer's own pytest suite twice, against the peer's dareplane_utils and against ours.

The peers' suites use fixed ports (8080-8090, 8181-8188, 9020, 8050) and their LSL streams have
fixed names, so each run gets a private network namespace (`unshare --net`, loopback only):
two runs, other engineers' stacks and a demo on this machine never meet. The two runs of a
comparison go side by side. "Ours" is the same venv with our package first on PYTHONPATH
(a directory holding only a link to our dareplane_utils, so nothing else of this repository
shadows the peer's modules; children inherit it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from bench.peers import BENCH_DIR, peer_python

REPO = Path(__file__).resolve().parent.parent
DP_UTILS_VERSION = "0.0.24"
DP_CONTROL_ROOM = REPO.parent / "shared" / "peers" / "dp-control-room"
# What our dareplane_utils needs beside what the peers install themselves.
OUR_RUNTIME = ["python-json-logger>=3.1", "orjson>=3.9", "pytest>=8"]


def private_network_available() -> str | None:
    """None when `unshare --net` works here, else why not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare (util-linux) and ip (iproute2) are needed"
    probe = subprocess.run(
        ["unshare", "-rn", "ip", "link", "set", "lo", "up"], capture_output=True, text=True
    )
    return None if probe.returncode == 0 else f"unshare --net failed: {probe.stderr.strip()}"


def dareplane_utils_sdist() -> Path:
    """dareplane-utils' sdist from PyPI (pip download), kept under .bench/sdists/."""
    directory = BENCH_DIR / "sdists"
    archive = directory / f"dareplane_utils-{DP_UTILS_VERSION}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:"),
                *("--no-deps", f"dareplane-utils=={DP_UTILS_VERSION}", "-d", str(directory)),
            ],
            check=True,
        )
    return archive


def unpack_sdist(archive: Path, destination: Path) -> Path:
    """The sdist's source tree (with its tests/) under destination."""
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    return destination / f"dareplane_utils-{DP_UTILS_VERSION}"


def dareplane_utils_suite_python() -> Path:
    """A venv with dareplane-utils 0.0.24 (and its dependencies), pytest and our few needs."""
    return peer_python(
        f"dareplane-utils-{DP_UTILS_VERSION}-suite",
        [f"dareplane-utils=={DP_UTILS_VERSION}", *OUR_RUNTIME],
    )


def dp_control_room_python() -> Path:
    """A venv with dp-control-room 0.1.2 from the shared peer (dareplane-utils from PyPI).

    pip builds a local project in place, so it installs from a copy under .bench/, never from
    the shared directory.
    """
    source = BENCH_DIR / "src" / "dp-control-room-0.1.2"
    if not source.exists():
        shutil.copytree(DP_CONTROL_ROOM, source)
    return peer_python("dp-control-room-0.1.2", [str(source), *OUR_RUNTIME])


def our_package_path(directory: Path) -> Path:
    """A directory whose only entry links to our dareplane_utils: PYTHONPATH for 'ours'."""
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / "dareplane_utils"
    if not link.exists():
        link.symlink_to(REPO / "dareplane_utils", target_is_directory=True)
    return directory


@dataclass
class SuiteRun:
    label: str
    workdir: Path
    outcomes: dict[str, str]  # node id -> passed / failed / error / skipped
    output: str
    returncode: int

    def with_outcome(self, outcome: str) -> list[str]:
        return sorted(test for test, seen in self.outcomes.items() if seen == outcome)

    def counts(self) -> str:
        tally = {name: len(self.with_outcome(name)) for name in OUTCOMES}
        return ", ".join(f"{count} {name}" for name, count in tally.items() if count)

    def describe(self, tests: list[str]) -> str:
        """The given tests and the end of pytest's output, for an assertion message."""
        return (
            f"{self.label}: {', '.join(tests)}\n--- pytest ({self.label}) ---\n"
            + (self.output[-8000:])
        )


@dataclass
class StartedSuite:
    process: subprocess.Popen
    workdir: Path
    label: str


OUTCOMES = ("passed", "failed", "error", "skipped")


def start_suite(
    python: Path, workdir: Path, label: str, package_path: Path | None, pytest_args: list[str]
) -> StartedSuite:
    """Start `python -m pytest` in workdir inside a private network namespace.

    The LSL config is the test run's (conftest isolates LSL): liblsl needs its loopback
    settings there too. Our package is first on PYTHONPATH when `package_path` is given.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        # our loggers aim where RACEPLANE_LOG_* say; the peers' tests expect 127.0.0.1:9020
        if not key.startswith(("RACEPLANE_LOG_", "PYTHONPATH", "PYTEST_"))
    }
    # what their CI gives a slow runner for the test servers to stop
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1", DP_TEST_SHUTDOWN_TIMEOUT_S="15")
    if package_path is not None:
        env["PYTHONPATH"] = str(package_path)
    command = [
        *("unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"),
        *(str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="),
        f"--junitxml={workdir / f'junit-{label}.xml'}",
        *pytest_args,
    ]
    with (workdir / f"pytest-{label}.log").open("w") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return StartedSuite(process, workdir, label)


def finish_suite(started: StartedSuite, timeout: float) -> SuiteRun:
    try:
        started.process.wait(timeout)
    except subprocess.TimeoutExpired:
        started.process.kill()
        started.process.wait()
    report = started.workdir / f"junit-{started.label}.xml"
    output = (started.workdir / f"pytest-{started.label}.log").read_text(errors="replace")
    outcomes = junit_outcomes(report) if report.exists() else {}
    return SuiteRun(started.label, started.workdir, outcomes, output, started.process.returncode)


def junit_outcomes(report: Path) -> dict[str, str]:
    """Node id (tests/test_x.py::test_y[param]) -> outcome, from pytest's junit XML."""
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        # module-level tests only (the peers' suites have no test classes)
        path = case.get("classname", "").replace(".", "/") + ".py"
        node = f"{path}::{case.get('name')}"
        tags = {child.tag for child in case}
        if "failure" in tags:
            outcome = "failed"
        elif "error" in tags:
            outcome = "error"
        elif "skipped" in tags:
            outcome = "skipped"
        else:
            outcome = "passed"
        outcomes[node] = outcome
    return outcomes


def summary(title: str, theirs: SuiteRun, ours: SuiteRun) -> str:
    """Counts side by side, and which tests do not pass on theirs."""
    lines = [
        f"{title}: {len(theirs.outcomes)} tests",
        f"  against theirs: {theirs.counts()}",
        f"  against ours:   {ours.counts()}",
    ]
    for outcome in ("failed", "error", "skipped"):
        for test in theirs.with_outcome(outcome):
            lines.append(f"  {outcome} on theirs: {test} (ours: {ours.outcomes.get(test)})")
    return "\n".join(lines)

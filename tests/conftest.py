"""Fixtures every test shares. LSL is isolated at import time, before anything loads liblsl."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from dareplane_utils.testing import free_port, isolate_lsl

# A pytest-xdist worker inherits the controller's isolation: each worker takes an LSL session of
# its own, so tests running side by side never see each other's streams.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if WORKER and os.environ.get("RACEPLANE_LSL_WORKER") != WORKER:
    os.environ.pop("RACEPLANE_LSL_ISOLATED", None)
    os.environ["RACEPLANE_LSL_WORKER"] = WORKER
LSL_CONFIG = isolate_lsl("raceplane-test")
# Records of test processes must never reach a real log server (a demo on this machine): unless a
# test says otherwise, loggers aim at a port where nothing listens and hold their records.
os.environ.setdefault("RACEPLANE_LOG_PORT", str(free_port()))
REPO = Path(__file__).resolve().parent.parent
# Property tests draw the same examples on every run, so a red run is a real finding and not a
# new draw; RACEPLANE_FUZZ_EXAMPLES=5000 (tests/test_fuzz.py) explores further by hand.
settings.register_profile("raceplane", derandomize=True, deadline=None)
settings.load_profile("raceplane")


@pytest.fixture(scope="session")
def lsl_config() -> Path:
    """The liblsl config of this run: discovery on this machine, in this run's session only."""
    return LSL_CONFIG


@pytest.fixture(scope="session")
def dareplane_python() -> Path:
    """Python of a throwaway venv holding PyPI's dareplane-utils 0.0.24, for compatibility tests.

    Never .venv: that package shares our import name. Built once under .bench/ and reused; run
    its code from a directory outside the repository, whose dareplane_utils would shadow it.
    The first test to use it builds the venv from PyPI, which took over 3 minutes on a clean
    clone of a loaded 2-core machine: such tests take `@pytest.mark.timeout(900)`.
    """
    from bench.peers import peer_python

    return peer_python("dareplane-utils-0.0.24", ["dareplane-utils==0.0.24"])


@pytest.fixture
def spawn() -> Iterator:
    """Start `python -m <module> args` in its own process group; every one is killed at teardown.

    Returns a function (module, *args, env=None, **popen_kwargs) -> Popen. Output goes to
    pipes unless given otherwise, so a test can read what a failing process said.
    """
    processes: list[subprocess.Popen] = []

    def start(
        module: str, *args: str, env: dict[str, str] | None = None, **popen_kwargs
    ) -> subprocess.Popen:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        popen_kwargs.setdefault("stdout", subprocess.PIPE)
        popen_kwargs.setdefault("stderr", subprocess.STDOUT)
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            env=full_env,
            start_new_session=True,
            **popen_kwargs,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def start_lap_timer(spawn) -> Callable[..., subprocess.Popen]:
    """Start a lap timer process: (port, db, *extra args) -> Popen.

    Its log goes to a file beside the database: a pipe nobody reads would fill and stall it.
    """

    def start(port: int, db: Path, *args: str) -> subprocess.Popen:
        log = open(db.with_suffix(".log"), "a")  # noqa: SIM115 (the child holds it open)
        return spawn(
            "modules.lap_timer",
            "--port",
            str(port),
            "--db",
            str(db),
            "--log-port",
            str(free_port()),
            *args,
            stdout=log,
        )

    return start

"""What the stack's processes carry (issue 18, footprint): no process loads what only some of
its commands need, and the control room starts modules with few malloc arenas. The figures
themselves are bench/bench_footprint.py's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modules.control_room.launch import environment
from modules.control_room.setup import ControlRoomSettings

REPO = Path(__file__).resolve().parent.parent
# pandas and plotly are ~80 MB of a process; only the analysis (the compare page, `raceplane
# analyse`) needs them.
HEAVY = ("pandas", "plotly")


def loaded_at_start(module: str) -> list[str]:
    """The heavy packages a module's entry point imports before it does anything."""
    code = (
        f"import sys, {module}.__main__\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.parametrize(
    "module",
    [
        "modules.web_bridge",
        "modules.telemetry_decoder",
        "modules.lap_timer",
        "modules.recorder",
        "modules.control_room",
    ],
)
def test_a_stack_process_starts_without_pandas_or_plotly(module):
    assert loaded_at_start(module) == []


def test_modules_get_two_malloc_arenas_unless_the_user_says(tmp_path, monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert environment(ControlRoomSettings(), tmp_path / "lsl.cfg")["MALLOC_ARENA_MAX"] == "2"
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert environment(ControlRoomSettings(), tmp_path / "lsl.cfg")["MALLOC_ARENA_MAX"] == "8"

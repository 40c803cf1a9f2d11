"""The `raceplane` command as a shell user meets it: pipes, exit codes, the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_reader_that_goes_away_ends_the_output_quietly():
    """`raceplane streams | head`: the reader closes the pipe before the command writes."""
    reader_gone = subprocess.Popen(
        [sys.executable, "-m", "modules.cli", "streams", "raceplane.car_damage"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    reader_gone.stdout.close()
    err = reader_gone.stderr.read().decode()
    assert reader_gone.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_liblsl_info_lines_stay_off_the_terminal(tmp_path):
    """A user without an liblsl config of their own sees liblsl's warnings, not its INFO lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("LSLAPICFG", "RACEPLANE_LSL_ISOLATED")}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    touch_lsl = (
        "import modules, pylsl; "
        "pylsl.StreamInfo('probe', 'x', 1, 0, 'float32', 'probe').as_xml(); print('ok')"
    )
    quiet = subprocess.run(
        [sys.executable, "-c", touch_lsl], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert quiet.returncode == 0 and quiet.stdout == "ok\n", quiet.stderr
    assert "INFO|" not in quiet.stderr and "ERR|" not in quiet.stderr, quiet.stderr
    # A user's own configuration wins.
    (tmp_path / "lsl_api.cfg").write_text("[log]\nlevel = 0\n")
    chatty = subprocess.run(
        [sys.executable, "-c", touch_lsl], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert "INFO|" in chatty.stderr

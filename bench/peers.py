"""Throwaway virtualenvs for the peers we compare against.

PyPI's dareplane-utils shares our import name `dareplane_utils`, so a peer never goes into
.venv: each gets its own venv under .bench/<name>, built once and reused.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
import venv
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent / ".bench"


def peer_python(name: str, requirements: list[str]) -> Path:
    """Python of the venv .bench/<name> with `requirements` installed (built on first use)."""
    directory = BENCH_DIR / name
    python = directory / "bin" / "python"
    stamp = directory / ".installed"
    wanted = "\n".join(requirements)
    BENCH_DIR.mkdir(exist_ok=True)
    # Two test workers or benches may want the same venv at once: one builds, the other waits.
    with (BENCH_DIR / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.exists() and stamp.read_text() == wanted):
            venv.EnvBuilder(with_pip=True, clear=True).create(directory)
            subprocess.run([python, "-m", "pip", "install", "--quiet", *requirements], check=True)
            stamp.write_text(wanted)
    return python


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    """A plain text table, columns sized to fit, for benchmark output."""
    cells = [header, *[[_cell(value) for value in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print(
            "  ".join(
                value.rjust(width) if i else value.ljust(width)
                for i, (value, width) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            print("  ".join("-" * width for width in widths))
    sys.stdout.flush()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)

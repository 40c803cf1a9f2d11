"""`make bench`: run every bench/bench_*.py in turn; each prints its own side-by-side tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    selected = sys.argv[1:]
    failures = []
    for script in sorted(HERE.glob("bench_*.py")):
        if selected and not any(word in script.stem for word in selected):
            continue
        print(f"\n===== {script.stem} =====", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode != 0:
            failures.append(script.stem)
    if failures:
        print(f"\nfailed: {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

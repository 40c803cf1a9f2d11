"""`make demo` installs what the stack needs to run; `make test` adds the test extra."""

from __future__ import annotations

import ast
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Tooling for tests and benchmarks that the running stack never imports.
NOT_RUNTIME = {ROOT / "modules/web_bridge/devstack.py"}


def planned(target: str, tmp_path: Path) -> str:
    """The commands `make TARGET` would run for a fresh virtualenv (make -n runs nothing)."""
    done = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_make_demo_installs_only_the_runtime_dependencies(tmp_path):
    demo = planned("demo", tmp_path)
    assert "pip install --quiet -e ." in demo
    assert "[test]" not in demo
    assert "pip install --quiet -e '.[test]'" in planned("test", tmp_path)


def test_the_stack_imports_no_test_only_package():
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["test"]
    test_only = {
        name.split("[")[0].split(">")[0].split("=")[0].strip().replace("-", "_").lower()
        for name in extra
    }
    test_only |= {"f1_packets", "pytest", "playwright"}
    offenders = []
    for path in [*ROOT.glob("modules/**/*.py"), *ROOT.glob("dareplane_utils/**/*.py")]:
        if path in NOT_RUNTIME:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [
                f"{path.relative_to(ROOT)}: {name}"
                for name in names
                if name.split(".")[0].lower() in test_only
            ]
    assert offenders == []

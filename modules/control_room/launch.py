"""How a setup-file module becomes a command line and an environment (no processes here)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from dareplane_utils.lsl_config import ENV_VAR
from modules.control_room.setup import (
    DAREPLANE_EXE,
    DAREPLANE_PYTHON,
    EXTERNAL,
    ControlRoomSettings,
    ModuleSpec,
)

REPO = Path(__file__).resolve().parent.parent.parent


class LaunchError(RuntimeError):
    """A module that cannot be started at all (as opposed to one that crashes)."""


def option_flags(kwargs: dict[str, Any]) -> list[str]:
    """kwargs as CLI flags: `--key value`; true is a bare flag, false is left out, lists repeat."""
    flags: list[str] = []
    for key, value in kwargs.items():
        flag = "--" + key.replace("_", "-")
        for item in value if isinstance(value, list) else [value]:
            if item is True:
                flags.append(flag)
            elif item is not False:
                flags += [flag, str(item)]
    return flags


def command_line(spec: ModuleSpec, settings: ControlRoomSettings) -> list[str]:
    python = spec.python or sys.executable
    if spec.kind == DAREPLANE_EXE:
        return [str(spec.executable), *spec.args]
    if spec.kind == DAREPLANE_PYTHON:
        # as dp-control-room's PythonLauncher: kwargs, then ip and port, each as --key=value
        options = {**spec.kwargs, "ip": spec.ip, "port": spec.port}
        flags = [f"--{key}={value}" for key, value in options.items()]
        return [python, "-m", str(spec.entry), *spec.args, *flags]
    if spec.kind == EXTERNAL:
        # A foreign (e.g. Dareplane) module reads its own config; it gets only its kwargs.
        return [python, "-m", str(spec.entry), *option_flags(spec.kwargs)]
    return [
        python,
        "-m",
        f"modules.{spec.kind}",
        "--host",
        spec.ip,
        "--port",
        str(spec.port),
        "--log-host",
        settings.log_host,
        "--log-port",
        str(settings.log_port),
        *option_flags(spec.kwargs),
    ]


def log_server_command(settings: ControlRoomSettings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dareplane_utils.logging.server",
        "--host",
        settings.log_host,
        "--port",
        str(settings.log_port),
        "--logfile",
        str(settings.log_file),
    ]


def check_installed(spec: ModuleSpec) -> None:
    """Refuse, with a clear reason, a Raceplane module kind this installation does not have.

    Looks for modules/<kind>/__main__.py without importing the module (that is the child's
    job, and may be slow)."""
    if spec.kind in (EXTERNAL, DAREPLANE_PYTHON, DAREPLANE_EXE) or spec.python:
        return
    package = importlib.util.find_spec(f"modules.{spec.kind}")
    if package is None or not package.submodule_search_locations:
        raise LaunchError(
            f"modules.{spec.key}: kind {spec.kind!r} is not a Raceplane module here "
            f"(no package modules/{spec.kind}/; is it spelled right, or not written yet?)"
        )
    if not any((Path(p) / "__main__.py").is_file() for p in package.submodule_search_locations):
        raise LaunchError(
            f"modules.{spec.key}: modules/{spec.kind}/ has no __main__.py, so it cannot run "
            "as a process (not finished yet?)"
        )


def environment(settings: ControlRoomSettings, lsl_config: Path) -> dict[str, str]:
    """The environment of every started process: log server address, the stack's LSL
    configuration (modules/control_room/lsl.py), unbuffered output, few malloc arenas."""
    return {
        **os.environ,
        "RACEPLANE_LOG_HOST": settings.log_host,
        "RACEPLANE_LOG_PORT": str(settings.log_port),
        ENV_VAR: str(lsl_config),
        "PYTHONUNBUFFERED": "1",
        # liblsl gives every stream connection threads of its own, and glibc a malloc arena
        # to each thread that allocates (up to 8 per core), each holding freed memory: two
        # arenas cut a module's RSS by ~10 MB at no measurable CPU (issue 18, footprint).
        "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
    }


def working_directory(spec: ModuleSpec) -> Path:
    return spec.cwd or REPO

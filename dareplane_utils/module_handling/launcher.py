"""Starting and stopping a module's process, as Dareplane's control room does.

`PythonLauncher` runs `python -m <entry_point> *args --key=value ...` in `cwd`;
`ExeLauncher` runs an executable. Each process gets a session of its own, and `terminate()`
ends its whole tree (SIGTERM, SIGKILL after a second).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from subprocess import Popen

from dareplane_utils.default_server.functions import stop_process


class Launcher(ABC):
    process: Popen | None = None

    @abstractmethod
    def launch(self, relaunch: bool = False, **kwargs) -> Popen:
        """Start the process (with `relaunch`, stop a running one first); kwargs go to Popen."""

    @abstractmethod
    def terminate(self) -> None:
        """Stop the process and its descendants."""


class _ProcessLauncher(Launcher):
    cwd: Path | None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def launch(self, relaunch: bool = False, **popen_kwargs) -> Popen:
        if self.process is not None and self.process.poll() is None:
            if not relaunch:
                warnings.warn(
                    f"{self._command()[:3]} already runs (pid {self.process.pid}); "
                    "returning that process",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return self.process
            self.terminate()
        popen_kwargs["cwd"] = str(self.cwd.resolve()) if self.cwd is not None else None
        if os.name == "nt":
            popen_kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            popen_kwargs["start_new_session"] = True
        self.process = subprocess.Popen(self._command(), **popen_kwargs)
        return self.process

    def terminate(self) -> None:
        if self.process is not None:
            close_process_and_child_processes(self.process)
            self.process = None


class PythonLauncher(_ProcessLauncher):
    def __init__(
        self,
        entry_point: str,
        cwd: Path | str,
        executable: str = sys.executable,
        args: list[str] | None = None,
        kwargs: dict | None = None,
    ):
        self.process = None
        self.executable = executable
        self.entry_point = entry_point
        self.args = list(args or [])
        self.kwargs = dict(kwargs or {})
        self.cwd = Path(cwd)
        if not self.cwd.exists():
            raise FileNotFoundError(f"Directory {self.cwd} does not exist")

    def _command(self) -> list[str]:
        options = [f"--{key}={value}" for key, value in self.kwargs.items()]
        return [self.executable, "-m", self.entry_point, *self.args, *options]


class ExeLauncher(_ProcessLauncher):
    def __init__(
        self, exe_path: Path | str, args: list | None = None, cwd: Path | str | None = None
    ):
        self.exe_path = Path(exe_path)
        self.args = list(args or [])
        self.cwd = Path(cwd) if cwd is not None else Path.cwd()
        self.process = None
        if not self.cwd.exists():
            raise FileNotFoundError(f"Directory {self.cwd} does not exist")
        if not self.exe_path.exists():
            raise FileNotFoundError(f"Executable {self.exe_path} does not exist")

    def _command(self) -> list[str]:
        return [str(self.exe_path), *map(str, self.args)]


def close_process_and_child_processes(process: Popen) -> None:
    """End the process and all its descendants: SIGTERM, SIGKILL after a second."""
    stop_process(process, timeout=1.0)

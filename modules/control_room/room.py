"""The control room's commands: what its DefaultServer (port 8100) answers.

STATUS (every module), SEND {module, cmd, payload}, MACRO {name, ...parameters},
RESTART {module}, SHUTDOWN. Refusals raise ValueError, which the server turns into a clear
`{"ok": false, "error": ...}` reply.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from modules.control_room import link, lsl
from modules.control_room.macros import expand, parameters
from modules.control_room.setup import Setup
from modules.control_room.supervisor import LOG_SERVER, ModuleStatus, Supervisor
from modules.control_room.watcher import State

_COMMAND_TIMEOUT_S = 30.0


class ControlRoom:
    def __init__(
        self,
        setup: Setup,
        logger: logging.Logger,
        on_change: Callable[[ModuleStatus], None] | None = None,
    ) -> None:
        self.setup = setup
        self.logger = logger
        self.lsl = lsl.choose(setup)  # LslConfigError: a named config that is not there
        self.supervisor = Supervisor(setup, logger, self.lsl.path, on_change)
        logger.info("LSL configuration of every module: %s", self.lsl.describe())
        self.shutdown_requested = threading.Event()
        self.started_at = time.monotonic()

    def commands(self) -> dict[str, Callable[..., Any]]:
        return {
            "STATUS": self.status,
            "SEND": self.send,
            "MACRO": self.macro,
            "RESTART": self.restart,
            "SHUTDOWN": self.shutdown,
        }

    def dashboard_url(self) -> str | None:
        for spec in self.setup.modules.values():
            if spec.kind == "web_bridge":
                host = spec.kwargs.get("http_host", spec.ip)
                host = "127.0.0.1" if host in ("0.0.0.0", "") else host
                return f"http://{host}:{spec.kwargs.get('http_port', 8050)}/"
        return None

    def status(self) -> dict[str, Any]:
        settings = self.setup.settings
        return {
            "setup": str(self.setup.path) if self.setup.path else None,
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "shutting_down": self.shutdown_requested.is_set(),
            "log_file": str(settings.log_file) if settings.log_server else None,
            "dashboard": self.dashboard_url(),
            "lsl": self.lsl.as_dict(),
            "modules": self.supervisor.status_dicts(),
            "macros": {
                name: {
                    "description": macro.description,
                    "parameters": sorted(parameters(macro)),
                    "defaults": macro.defaults,
                }
                for name, macro in self.setup.macros.items()
            },
        }

    def send(self, module: str = "", cmd: str = "", payload: dict[str, Any] | None = None) -> Any:
        """Relay one command to one module and return its result."""
        managed = self._module(module)
        if not isinstance(cmd, str) or not cmd.strip() or any(c in cmd for c in ";|"):
            raise ValueError(f"cmd must be a command name such as 'STATUS', not {cmd!r}")
        if payload is not None and not isinstance(payload, dict):
            raise ValueError(f"payload must be a JSON object, not {type(payload).__name__}")
        if module == LOG_SERVER:
            raise ValueError("the log server takes no commands; SEND is for modules")
        if not managed.up:
            state = "remote and not answering" if managed.state == State.REMOTE else managed.state
            raise ValueError(f"module {module!r} is {state}; not sent")
        try:
            return link.request(
                managed.address,
                cmd.strip(),
                payload or {},
                managed.spec.protocol,
                _COMMAND_TIMEOUT_S,
            )
        except link.LinkError as error:
            raise ValueError(f"{module}: {error}") from error

    def macro(self, name: str = "", **params: Any) -> list[dict[str, Any]]:
        """Run a macro's steps in order; stop at the first that fails, saying which."""
        macros = self.setup.macros
        # Dareplane macros answer to their `name` (its button label) too
        macro = macros.get(name) or next((m for m in macros.values() if m.title == name), None)
        if macro is None:
            known = ", ".join(sorted(macros)) or "none defined"
            raise ValueError(f"unknown macro {name!r}; macros: {known}")
        steps = expand(macro, params)
        time.sleep(macro.delay_s)
        results = []
        for number, step in enumerate(steps, start=1):
            time.sleep(macro.step_gap_s)
            try:
                result = self.send(step.module, step.cmd, step.payload)
            except ValueError as error:
                raise ValueError(
                    f"macro {name!r} step {number} ({step.module} {step.cmd}) failed: {error}"
                ) from error
            results.append({"module": step.module, "cmd": step.cmd, "result": result})
        self.logger.info("macro %s ran %d step(s)", name, len(results))
        return results

    def restart(self, module: str = "") -> dict[str, Any]:
        self._module(module)
        self.logger.info("restart of %s requested", module)
        self.supervisor.restart(module)
        return {"restarting": module}

    def shutdown(self) -> dict[str, Any]:
        """Start the shutdown; the caller sees the control room's port close when it is done."""
        self.logger.info("SHUTDOWN requested")
        self.shutdown_requested.set()
        return {"shutting_down": True}

    def _module(self, key: Any) -> Any:
        if not isinstance(key, str) or key not in self.supervisor.modules:
            known = ", ".join(self.supervisor.modules)
            raise ValueError(f"unknown module {key!r}; modules: {known}")
        return self.supervisor.modules[key]

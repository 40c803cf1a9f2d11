"""The setup file's schema: one pydantic model per table, with the keys, types and value
rules each allows (docs/DESIGN.md, "Setup file" and "Dareplane setup files").

Models are strict (`port = "8100"` and `port = true` are mistakes, not port 8100 and 1) and
forbid unknown keys (a typo is never ignored). They check one table at a time; what spans
tables (dependencies, addresses, macro steps naming modules) is checked in setup.py, and
setup_errors.py turns a ValidationError into a message naming the file and line.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic import model_validator as _model_validator
from pydantic_core import PydanticCustomError

REMOTE = "remote"
EXTERNAL = "external"
_KIND = re.compile(r"^[a-z][a-z0-9_]*$")
_SCALARS = (str, int, float, bool)


def _problem(message: str) -> PydanticCustomError:
    """A value error whose message follows the key's name ("port = 0 is not a TCP port")."""
    return PydanticCustomError("setup", message)


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise _problem(f"= {value} is not a TCP port (1-65535)")
    return value


def _not_negative(value: float) -> float:
    if value < 0:
        raise _problem("must not be negative")
    return value


def _option(value: Any) -> Any:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, _SCALARS) for item in items):
        raise _problem(": a command-line option takes a string, number, boolean or list of them")
    return value


def _argument(value: Any) -> Any:
    if not isinstance(value, _SCALARS):
        raise _problem("must be a string or a number")
    return value


def _pcomm(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) < 2 or not all(isinstance(p, str) for p in value):
        raise _problem("must be [module, PCOMM, 'arg=param', ...]")
    return value


Port = Annotated[int, AfterValidator(_port)]
Seconds = Annotated[float, AfterValidator(_not_negative)]
Option = Annotated[Any, AfterValidator(_option)]


class _Table(BaseModel):
    # defer_build: a model's validator is built when first used, so `raceplane up` with a
    # Raceplane setup never builds the Dareplane tables' ones
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class RestartTable(_Table):
    """[control_room.restart]"""

    max_restarts: int = 5
    backoff_s: Seconds = 0.1
    backoff_max_s: Seconds = 5.0
    reset_after_s: Seconds = 30.0


class ControlRoomTable(_Table):
    """[control_room]: paths stay text here; setup.py resolves them beside the setup file."""

    host: str = "127.0.0.1"
    port: Port = 8100
    log_host: str = "127.0.0.1"
    log_port: Port = 9020
    log_file: str = "logs/raceplane.jsonl"
    log_server: bool = True
    output_dir: str = "logs"
    up_timeout_s: Seconds = 20.0
    grace_s: Seconds = 2.0
    health_interval_s: Seconds = 1.0
    health_failures: int = 3
    on_up: list[str] = []
    lsl_config: str | None = None
    restart: RestartTable = RestartTable()


class ModuleTable(_Table):
    """[modules.<key>] of a Raceplane, external or remote module."""

    kind: str
    ip: str = "127.0.0.1"
    port: Port
    kwargs: dict[str, Option] = {}
    depends_on: list[str] = []
    restart: bool = True
    protocol: Literal["json", "legacy"] | None = None  # None: legacy if external, else json
    entry: str | None = None
    python: str | None = None
    cwd: str | None = None

    @_model_validator(mode="before")
    @classmethod
    def _has_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" not in data:
            raise _problem('needs kind = "<module>", "external" or "remote"')
        return data

    @field_validator("kind")
    @classmethod
    def _kind_names_a_module(cls, kind: str) -> str:
        if kind not in (REMOTE, EXTERNAL) and not _KIND.match(kind):
            raise _problem(f"{kind!r} is not a module name (modules.<kind>)")
        return kind

    @field_validator("kwargs", "python", "cwd", "restart")
    @classmethod
    def _local_only(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only for keys the file gives: a remote module may not give them.
        if info.data.get("kind") == REMOTE:
            raise _problem("has no meaning for a remote module")
        return value

    @field_validator("entry")
    @classmethod
    def _entry_only_external(cls, entry: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") != EXTERNAL:
            raise _problem('(python -m <entry>) is only for kind = "external"')
        return entry

    @_model_validator(mode="after")
    def _external_has_entry(self) -> ModuleTable:
        if self.kind == EXTERNAL and self.entry is None:
            raise _problem(': kind = "external" needs entry (run as python -m <entry>)')
        return self


class DareplaneModuleTable(_Table):
    """[modules.<key>] of kind "python" or "exe", or a legacy [python|exe.modules.<key>], with
    dp-control-room's keys; `retry_after_s` and `max_connect_retries` are covered by
    `up_timeout_s` and only checked."""

    kind: str
    ip: str
    port: Port
    cwd: str | None = None
    kwargs: dict[str, Option] = {}
    args: list[Annotated[Any, AfterValidator(_argument)]] = []
    python_executable: str | None = None
    custom_entry_point: str = "api.server"
    retry_after_s: Seconds = 1.0
    max_connect_retries: int = 3
    path: str | None = None
    pcomms: Any = None  # dp-control-room's own, unused
    type: Any = None  # legacy form: a label, unused by dp-control-room too
    depends_on: list[str] = []
    restart: bool = True

    @_model_validator(mode="before")
    @classmethod
    def _has_address(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("port" not in data or "ip" not in data):
            raise _problem("needs ip and port (how we reach it)")
        return data


class LegacySection(_Table):
    """dp-control-room's legacy [python] and [exe] tables."""

    modules_root: str | None = None
    modules: dict[str, dict[str, Any]] = {}


class StepTable(_Table):
    """[[macros.<name>.steps]]"""

    module: str = ""
    cmd: str = ""
    payload: dict[str, Any] = {}


class MacroTable(_Table):
    """[macros.<name>] in Raceplane's form."""

    description: str = ""
    defaults: dict[str, Any] = {}
    steps: list[StepTable] = []


class DareplaneMacroTable(_Table):
    """[macros.<name>] in dp-control-room's form."""

    name: str | None = None
    description: str = ""
    default_json: dict[str, Any] = {}
    cmds: dict[str, Annotated[Any, AfterValidator(_pcomm)]] = {}
    delay_s: Seconds = 0.0


class MacroGlobals(_Table):
    """dp-control-room's [macros.globals]."""

    sleep_s: Seconds = 0.0

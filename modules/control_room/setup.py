"""Setup files: load a TOML setup, check every key, and say which line is wrong.

A setup file names the modules of a stack (`[modules.<key>]`), the macros a person can run
(`[macros.<name>]`) and the control room's own settings (`[control_room]`); docs/DESIGN.md,
"Control room", describes it. Each table is checked against its pydantic model
(setup_schema.py); what spans tables (dependencies, addresses, names a macro or `on_up` uses)
is checked here, and every message names the file and line (setup_errors.py). Loading has no
side effects: nothing is started or imported.

dp-control-room's setup files load as they are (docs/DESIGN.md, "Dareplane setup files"):
its current form (`[modules]` with `modules_root`, modules of kind "python" / "exe", macros
with `name`/`cmds`/`default_json`/`delay_s`, `[macros.globals] sleep_s`) and its legacy form
(`[python.modules.<key>]` started, `[exe.modules.<key>]` only connected to). Their modules run
beside Raceplane's, launched the way dp-control-room launches them.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from modules.control_room.setup_errors import Locator, SetupError, type_name
from modules.control_room.setup_schema import (
    EXTERNAL,
    REMOTE,
    ControlRoomTable,
    DareplaneMacroTable,
    DareplaneModuleTable,
    LegacySection,
    MacroGlobals,
    MacroTable,
    ModuleTable,
)

# dp-control-room's kinds: `python -m <custom_entry_point>` in the module's folder, an executable
DAREPLANE_PYTHON = "python"
DAREPLANE_EXE = "exe"
_DAREPLANE_CONNECT_ONLY = "conn_only"  # its legacy [exe.modules.*]: connected to, not started
_DAREPLANE_KINDS = (DAREPLANE_PYTHON, DAREPLANE_EXE, _DAREPLANE_CONNECT_ONLY)
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 5  # restarts allowed within `reset_after_s` of each other
    backoff_s: float = 0.1  # delay before the second restart; the first is immediate
    backoff_max_s: float = 5.0
    reset_after_s: float = 30.0  # running this long forgives earlier crashes

    def delay(self, restarts_so_far: int) -> float:
        """Seconds to wait before restart number `restarts_so_far + 1`."""
        if restarts_so_far <= 0:
            return 0.0
        return min(self.backoff_max_s, self.backoff_s * 2 ** (restarts_so_far - 1))


@dataclass(frozen=True)
class ControlRoomSettings:
    host: str = "127.0.0.1"
    port: int = 8100
    log_host: str = "127.0.0.1"
    log_port: int = 9020
    log_file: Path = Path("logs/raceplane.jsonl")
    log_server: bool = True  # start the log server; false when one is already running
    output_dir: Path = Path("logs")  # each process's stdout/stderr goes to <output_dir>/<key>.out
    up_timeout_s: float = 20.0
    grace_s: float = 2.0
    health_interval_s: float = 1.0
    health_failures: int = 3  # UP checks missed in a row before a local module is restarted
    on_up: tuple[str, ...] = ()  # macros run once, in order, when the stack is first up
    lsl_config: Path | None = None  # an liblsl config for every module; None: the stack's own
    restart: RestartPolicy = field(default_factory=RestartPolicy)


@dataclass(frozen=True)
class ModuleSpec:
    key: str
    kind: str
    ip: str = "127.0.0.1"
    port: int = 0
    kwargs: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    restart: bool = True
    protocol: str = "json"
    entry: str | None = None  # external modules: `python -m <entry>`
    python: str | None = None  # external modules: their interpreter (e.g. a Dareplane venv)
    cwd: Path | None = None
    line: int = 0  # where `[modules.<key>]` starts, for messages
    args: tuple[str, ...] = ()  # Dareplane modules: positional arguments
    executable: Path | None = None  # Dareplane "exe" modules: what to run

    @property
    def is_remote(self) -> bool:
        return self.kind == REMOTE


@dataclass(frozen=True)
class MacroStep:
    module: str
    cmd: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Macro:
    name: str
    steps: tuple[MacroStep, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    title: str = ""  # Dareplane macros: their `name` (the button label); MACRO takes it too
    delay_s: float = 0.0  # Dareplane macros: wait before the first step
    step_gap_s: float = 0.0  # Dareplane macros: wait before each step ([macros.globals] sleep_s)
    # Dareplane's macro semantics: parameters it does not use are ignored, text parameters may
    # name others as "$<name>"
    dareplane: bool = False


@dataclass(frozen=True)
class Setup:
    path: Path | None
    settings: ControlRoomSettings
    modules: dict[str, ModuleSpec]
    macros: dict[str, Macro]

    def start_waves(self) -> list[list[str]]:
        """Module keys grouped so that each group depends only on earlier groups."""
        placed: dict[str, int] = {}
        for key in self.modules:
            _wave_of(key, self.modules, placed)
        waves: list[list[str]] = [[] for _ in range(max(placed.values(), default=-1) + 1)]
        for key in self.modules:
            waves[placed[key]].append(key)
        return waves


def _wave_of(key: str, modules: dict[str, ModuleSpec], placed: dict[str, int]) -> int:
    if key not in placed:
        placed[key] = 1 + max(
            (_wave_of(d, modules, placed) for d in modules[key].depends_on), default=-1
        )
    return placed[key]


def load_setup(path: Path | str) -> Setup:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SetupError(f"cannot read setup file {path}: {error}") from error
    return parse_setup(text, path)


def parse_setup(text: str, path: Path | None = None) -> Setup:
    """Validate a setup file's text; relative paths in it are relative to the file's folder."""
    name = str(path) if path else "<setup>"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SetupError(f"{name}: invalid TOML: {error}") from error
    builder = _Builder(Locator(name, text), path.parent.resolve() if path else Path.cwd())
    return builder.setup(data, path)


_Model = TypeVar("_Model", bound=BaseModel)


class _Builder:
    """Validates each table against its schema, checks what spans tables, builds the records."""

    def __init__(self, locator: Locator, base: Path) -> None:
        self.locator = locator
        self.fail = locator.fail
        self.base = base
        self.modules_root: str | None = None  # Dareplane: modules.modules_root
        self.step_gap_s = 0.0  # Dareplane: [macros.globals] sleep_s
        self.tables: dict[str, tuple[str, ...]] = {}  # a module's table, when not modules.<key>

    def check(self, model: type[_Model], value: Any, at: tuple[str, ...]) -> _Model:
        try:
            return model.model_validate(value)
        except ValidationError as error:
            raise self.locator.invalid(error, at, model) from None

    def table(self, parent: dict[str, Any], at: tuple[str, ...]) -> dict[str, Any]:
        value = parent.get(at[-1], {})
        if not isinstance(value, dict):
            raise self.fail(at, f"{'.'.join(at)} must be a table, not {type_name(value)}")
        return value

    def setup(self, data: dict[str, Any], path: Path | None) -> Setup:
        for key in data:
            if key not in ("control_room", "modules", "macros", "python", "exe"):
                raise self.fail(
                    (key,), f"unknown table {key!r}; expected control_room, modules, macros"
                )
        settings = self.settings(
            self.check(ControlRoomTable, self.table(data, ("control_room",)), ("control_room",))
        )
        modules_table = dict(self.table(data, ("modules",)))
        root = modules_table.pop("modules_root", None)
        if root is not None and not isinstance(root, str):
            raise self.fail(
                ("modules", "modules_root"),
                f"modules_root must be a string, not {type_name(root)} {root!r}",
            )
        self.modules_root = root
        modules_table.update(self.legacy_dareplane_modules(data, modules_table))
        if not modules_table:
            raise self.fail(("modules",), "no modules: add at least one [modules.<key>] table")
        modules = {key: self.module(key, value) for key, value in modules_table.items()}
        self.check_graph(modules)
        macros_table = dict(self.table(data, ("macros",)))
        at = ("macros", "globals")
        self.step_gap_s = self.check(MacroGlobals, macros_table.pop("globals", {}), at).sleep_s
        macros = {name: self.macro(name, value, modules) for name, value in macros_table.items()}
        for name in settings.on_up:
            if name not in macros:
                raise self.fail(("control_room", "on_up"), f"on_up names unknown macro {name!r}")
        return Setup(path, settings, modules, macros)

    def path(self, value: str) -> Path:
        return (self.base / value).resolve()

    def settings(self, table: ControlRoomTable) -> ControlRoomSettings:
        restart = table.restart
        return ControlRoomSettings(
            host=table.host,
            port=table.port,
            log_host=table.log_host,
            log_port=table.log_port,
            log_file=self.path(table.log_file),
            log_server=table.log_server,
            output_dir=self.path(table.output_dir),
            up_timeout_s=table.up_timeout_s,
            grace_s=table.grace_s,
            health_interval_s=table.health_interval_s,
            health_failures=table.health_failures,
            on_up=tuple(table.on_up),
            lsl_config=None if table.lsl_config is None else self.path(table.lsl_config),
            restart=RestartPolicy(
                max_restarts=restart.max_restarts,
                backoff_s=restart.backoff_s,
                backoff_max_s=restart.backoff_max_s,
                reset_after_s=restart.reset_after_s,
            ),
        )

    def legacy_dareplane_modules(
        self, data: dict[str, Any], modules: dict[str, Any]
    ) -> dict[str, Any]:
        """dp-control-room's legacy form, as it reads it: [python.modules.*] are started
        (its modules_root moves to modules.modules_root), [exe.modules.*] only connected to."""
        found: dict[str, Any] = {}
        for section, kind in (("python", DAREPLANE_PYTHON), ("exe", _DAREPLANE_CONNECT_ONLY)):
            table = self.check(LegacySection, self.table(data, (section,)), (section,))
            if table.modules_root is not None and kind == DAREPLANE_PYTHON:
                self.modules_root = table.modules_root
            for key, module in table.modules.items():
                if key in modules or key in found:
                    raise self.fail((section, "modules", key), f"module {key!r} is defined twice")
                found[key] = {**module, "kind": kind}
                self.tables[key] = (section, "modules", key)
        return found

    def module(self, key: str, table: Any) -> ModuleSpec:
        at = self.tables.get(key, ("modules", key))
        if not isinstance(table, dict):
            raise self.fail(at, f"modules.{key} must be a table, not {type_name(table)}")
        kind = table.get("kind")
        if isinstance(kind, str) and kind.strip().lower() in _DAREPLANE_KINDS:
            return self.dareplane_module(key, self.check(DareplaneModuleTable, table, at))
        if not _KEY.match(key):
            raise self.fail(at, f"module key {key!r}: use letters, digits, '_' and '-'")
        module = self.check(ModuleTable, table, at)
        return ModuleSpec(
            key=key,
            kind=module.kind,
            ip=module.ip,
            port=module.port,
            kwargs=dict(module.kwargs),
            depends_on=tuple(module.depends_on),
            restart=module.restart,
            protocol=module.protocol or ("legacy" if module.kind == EXTERNAL else "json"),
            entry=module.entry,
            python=module.python,
            cwd=None if module.cwd is None else self.path(module.cwd),
            line=self.locator.line(at),
        )

    def dareplane_module(self, key: str, module: DareplaneModuleTable) -> ModuleSpec:
        """A dp-control-room module: started as it starts them, spoken to in legacy mode."""
        at = self.tables.get(key, ("modules", key))
        kind = module.kind.strip().lower()
        common: dict[str, Any] = {
            "key": key,
            "ip": module.ip,
            "port": module.port,
            "depends_on": tuple(module.depends_on),
            "restart": module.restart,
            "protocol": "legacy",
            "line": self.locator.line(at),
        }
        if kind == _DAREPLANE_CONNECT_ONLY:
            return ModuleSpec(kind=REMOTE, **common)
        args = tuple(str(arg) for arg in module.args)
        if kind == DAREPLANE_EXE:
            if module.path is None:
                raise self.fail(at, f'{".".join(at)}: kind = "exe" needs path (the executable)')
            return ModuleSpec(
                kind=DAREPLANE_EXE,
                executable=self.dareplane_path(module.path, (*at, "path")),
                cwd=None if module.cwd is None else self.dareplane_path(module.cwd, (*at, "cwd")),
                args=args,
                **common,
            )
        if module.cwd is None and self.modules_root is None:
            raise self.fail(
                at, f"{'.'.join(at)} needs cwd (its folder), or set modules.modules_root"
            )
        folder = (
            self.dareplane_path(module.cwd, (*at, "cwd"))
            if module.cwd is not None
            else self.dareplane_path(str(Path(str(self.modules_root)) / key), at)
        )
        return ModuleSpec(
            kind=DAREPLANE_PYTHON,
            kwargs=dict(module.kwargs),
            entry=module.custom_entry_point,
            python=module.python_executable,
            cwd=folder,
            args=args,
            **common,
        )

    def dareplane_path(self, value: str, where: tuple[str, ...]) -> Path:
        """dp-control-room's rule: absolute as is; else relative to the setup file's folder if
        that exists, else to the working directory if that exists; else an error."""
        path = Path(value).expanduser()
        if path.is_absolute():
            return path.resolve()
        for base in (self.base, Path.cwd()):
            if (base / path).exists():
                return (base / path).resolve()
        raise self.fail(
            where,
            f"{value!r} is found neither beside the setup file ({self.base}) nor in the "
            f"working directory ({Path.cwd()})",
        )

    def check_graph(self, modules: dict[str, ModuleSpec]) -> None:
        addresses: dict[tuple[str, int], str] = {}
        for key, spec in modules.items():
            other = addresses.setdefault((spec.ip, spec.port), key)
            if other != key:
                raise self.fail(
                    ("modules", key, "port"),
                    f"{spec.ip}:{spec.port} is already used by modules.{other}",
                )
            for dependency in spec.depends_on:
                if dependency not in modules:
                    raise self.fail(
                        ("modules", key, "depends_on"), f"depends on unknown module {dependency!r}"
                    )
        for key in modules:
            cycle = _find_cycle(key, modules, [])
            if cycle:
                raise self.fail(
                    ("modules", key, "depends_on"), "dependency cycle: " + " -> ".join(cycle)
                )

    def macro(self, name: str, table: Any, modules: dict[str, ModuleSpec]) -> Macro:
        at = ("macros", name)
        if not isinstance(table, dict):
            raise self.fail(at, f"macros.{name} must be a table, not {type_name(table)}")
        if "cmds" in table:
            return self.dareplane_macro(name, self.check(DareplaneMacroTable, table, at), modules)
        macro = self.check(MacroTable, table, at)
        if not macro.steps:
            raise self.fail(at, f"macro {name!r} has no steps: add [[macros.{name}.steps]] tables")
        where = (*at, "steps")
        for number, step in enumerate(macro.steps, start=1):
            if step.module not in modules:
                raise self.fail(where, f"step {number} names unknown module {step.module!r}")
            cmd = step.cmd
            if not cmd or any(c in cmd for c in ";|") or cmd != cmd.strip():
                raise self.fail(where, f"step {number}: cmd {cmd!r} is not a command name")
        return Macro(
            name=name,
            steps=tuple(MacroStep(s.module, s.cmd, dict(s.payload)) for s in macro.steps),
            defaults=dict(macro.defaults),
            description=macro.description,
        )

    def dareplane_macro(
        self, name: str, macro: DareplaneMacroTable, modules: dict[str, ModuleSpec]
    ) -> Macro:
        """A dp-control-room macro: `cmds = {comN = [module, PCOMM, "arg=param", ...]}` sends
        PCOMM with {arg: the macro's parameter param}; `default_json` gives the defaults."""
        at = ("macros", name)
        steps = []
        for step_key, command in macro.cmds.items():
            where = (*at, "cmds", step_key)
            module, cmd, *mappings = command
            if module not in modules:
                raise self.fail(where, f"{step_key} names unknown module {module!r}")
            payload = {}
            for mapping in mappings:
                argument, equals, parameter = mapping.partition("=")
                if not equals or not argument or not parameter:
                    raise self.fail(where, f"{mapping!r} is not 'arg=param'")
                payload[argument.strip()] = "{" + parameter.strip() + "}"
            steps.append(MacroStep(module, cmd, payload))
        if not steps:
            raise self.fail(at, f"macro {name!r} has no cmds")
        return Macro(
            name=name,
            steps=tuple(steps),
            defaults=dict(macro.default_json),
            description=macro.description,
            title=name if macro.name is None else macro.name,
            delay_s=macro.delay_s,
            step_gap_s=self.step_gap_s,
            dareplane=True,
        )


def _find_cycle(key: str, modules: dict[str, ModuleSpec], path: list[str]) -> list[str]:
    if key in path:
        return [*path[path.index(key) :], key]
    for dependency in modules[key].depends_on:
        cycle = _find_cycle(dependency, modules, [*path, key])
        if cycle:
            return cycle
    return []

"""Setup files: load a TOML setup, check every key, and say which line is wrong.

A setup file names the modules of a stack (`[modules.<key>]`), the macros a person can run
(`[macros.<name>]`) and the control room's own settings (`[control_room]`); docs/DESIGN.md,
"Control room", is the schema. Loading has no side effects: nothing is started or imported.

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
from typing import Any

REMOTE = "remote"
EXTERNAL = "external"
# dp-control-room's kinds: `python -m <custom_entry_point>` in the module's folder, an executable
DAREPLANE_PYTHON = "python"
DAREPLANE_EXE = "exe"
_DAREPLANE_CONNECT_ONLY = "conn_only"  # its legacy [exe.modules.*]: connected to, not started
_DAREPLANE_MODULE_KEYS = {
    "kind",
    "ip",
    "port",
    "cwd",
    "kwargs",
    "args",
    "python_executable",
    "custom_entry_point",
    "retry_after_s",
    "max_connect_retries",
    "path",
    "pcomms",
    "type",  # legacy form: a label, unused by dp-control-room too
    "depends_on",
    "restart",
}
PROTOCOLS = ("json", "legacy")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_KIND = re.compile(r"^[a-z][a-z0-9_]*$")
Scalar = str | int | float | bool


class SetupError(ValueError):
    """A setup file that cannot be used; the message names the file and, where known, the line."""


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
    checker = _Checker(name, text, path.parent.resolve() if path else Path.cwd())
    return checker.setup(data, path)


class _Checker:
    def __init__(self, name: str, text: str, base: Path) -> None:
        self.name = name
        self.lines = _key_lines(text)
        self.base = base
        self.modules_root: str | None = None  # Dareplane: modules.modules_root
        self.step_gap_s = 0.0  # Dareplane: [macros.globals] sleep_s

    def fail(self, where: tuple[str, ...], message: str) -> SetupError:
        line = self._line(where)
        location = f"{self.name}, line {line}" if line else self.name
        return SetupError(f"{location}: [{'.'.join(where[:-1]) or where[0]}] {message}")

    def _line(self, where: tuple[str, ...]) -> int:
        # The exact key if it has a line of its own, else the nearest enclosing table.
        for length in range(len(where), 0, -1):
            if where[:length] in self.lines:
                return self.lines[where[:length]]
        return 0

    def setup(self, data: dict[str, Any], path: Path | None) -> Setup:
        for key in data:
            if key not in ("control_room", "modules", "macros", "python", "exe"):
                raise self.fail(
                    (key,), f"unknown table {key!r}; expected control_room, modules, macros"
                )
        settings = self.settings(self.table(data, ("control_room",)))
        modules_table = dict(self.table(data, ("modules",)))
        self.modules_root = self.value(modules_table, ("modules", "modules_root"), str, None)
        modules_table.pop("modules_root", None)
        modules_table.update(self.legacy_dareplane_modules(data, modules_table))
        if not modules_table:
            raise self.fail(("modules",), "no modules: add at least one [modules.<key>] table")
        modules = {key: self.module(key, value) for key, value in modules_table.items()}
        self.check_graph(modules)
        macros_table = dict(self.table(data, ("macros",)))
        globals_table = macros_table.pop("globals", None) or {}
        self.unknown(globals_table, ("macros", "globals"), {"sleep_s"})
        self.step_gap_s = self.positive(globals_table, ("macros", "globals", "sleep_s"), 0.0)
        macros = {name: self.macro(name, value, modules) for name, value in macros_table.items()}
        for name in settings.on_up:
            if not isinstance(name, str) or name not in macros:
                raise self.fail(("control_room", "on_up"), f"on_up names unknown macro {name!r}")
        return Setup(path, settings, modules, macros)

    def table(self, parent: dict[str, Any], where: tuple[str, ...]) -> dict[str, Any]:
        value = parent.get(where[-1], {})
        if not isinstance(value, dict):
            raise self.fail(where, f"{where[-1]} must be a table, not {_type(value)}")
        return value

    def value(
        self,
        table: dict[str, Any],
        where: tuple[str, ...],
        kind: type | tuple[type, ...],
        default: Any,
    ) -> Any:
        if where[-1] not in table:
            return default
        value = table[where[-1]]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds:
            kinds = (*kinds, int)  # `grace_s = 2` means 2.0
        # bool is an int in Python, but `port = true` is a mistake, not port 1.
        if isinstance(value, bool) and bool not in kinds:
            value_ok = False
        else:
            value_ok = isinstance(value, kinds)
        if not value_ok:
            wanted = " or ".join(_type_name(k) for k in kinds if k is not int or float not in kinds)
            raise self.fail(where, f"{where[-1]} must be {wanted}, not {_type(value)} {value!r}")
        return float(value) if float in kinds and isinstance(value, int) else value

    def unknown(self, table: dict[str, Any], where: tuple[str, ...], allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(
                    (*where, key), f"unknown key {key!r}; allowed: {', '.join(sorted(allowed))}"
                )

    def port(self, table: dict[str, Any], where: tuple[str, ...], default: int | None) -> int:
        if default is None and where[-1] not in table:
            raise self.fail(where, f"{where[-1]} is required")
        value = self.value(table, where, int, default)
        if not 1 <= value <= 65535:
            raise self.fail(where, f"{where[-1]} = {value} is not a TCP port (1-65535)")
        return value

    def positive(self, table: dict[str, Any], where: tuple[str, ...], default: float) -> float:
        value = self.value(table, where, float, default)
        if value < 0:
            raise self.fail(where, f"{where[-1]} must not be negative")
        return value

    def path(self, table: dict[str, Any], where: tuple[str, ...], default: Path) -> Path:
        return (self.base / self.value(table, where, str, str(default))).resolve()

    def settings(self, table: dict[str, Any]) -> ControlRoomSettings:
        at = ("control_room",)
        names = {f for f in ControlRoomSettings.__dataclass_fields__}
        self.unknown(table, at, names)
        defaults = ControlRoomSettings()
        restart_table = self.table(table, (*at, "restart"))
        return ControlRoomSettings(
            host=self.value(table, (*at, "host"), str, defaults.host),
            port=self.port(table, (*at, "port"), defaults.port),
            log_host=self.value(table, (*at, "log_host"), str, defaults.log_host),
            log_port=self.port(table, (*at, "log_port"), defaults.log_port),
            log_file=self.path(table, (*at, "log_file"), defaults.log_file),
            log_server=self.value(table, (*at, "log_server"), bool, defaults.log_server),
            output_dir=self.path(table, (*at, "output_dir"), defaults.output_dir),
            up_timeout_s=self.positive(table, (*at, "up_timeout_s"), defaults.up_timeout_s),
            grace_s=self.positive(table, (*at, "grace_s"), defaults.grace_s),
            health_interval_s=self.positive(
                table, (*at, "health_interval_s"), defaults.health_interval_s
            ),
            health_failures=self.value(
                table, (*at, "health_failures"), int, defaults.health_failures
            ),
            restart=self.restart(restart_table, (*at, "restart")),
            on_up=tuple(self.value(table, (*at, "on_up"), list, [])),
            lsl_config=(
                self.path(table, (*at, "lsl_config"), Path()) if "lsl_config" in table else None
            ),
        )

    def restart(self, table: dict[str, Any], at: tuple[str, ...]) -> RestartPolicy:
        self.unknown(table, at, set(RestartPolicy.__dataclass_fields__))
        policy = RestartPolicy()
        return RestartPolicy(
            max_restarts=self.value(table, (*at, "max_restarts"), int, policy.max_restarts),
            backoff_s=self.positive(table, (*at, "backoff_s"), policy.backoff_s),
            backoff_max_s=self.positive(table, (*at, "backoff_max_s"), policy.backoff_max_s),
            reset_after_s=self.positive(table, (*at, "reset_after_s"), policy.reset_after_s),
        )

    def legacy_dareplane_modules(
        self, data: dict[str, Any], modules: dict[str, Any]
    ) -> dict[str, Any]:
        """dp-control-room's legacy form, as it reads it: [python.modules.*] are started
        (its modules_root moves to modules.modules_root), [exe.modules.*] only connected to."""
        found: dict[str, Any] = {}
        for section, kind in (("python", DAREPLANE_PYTHON), ("exe", _DAREPLANE_CONNECT_ONLY)):
            table = self.table(data, (section,))
            self.unknown(table, (section,), {"modules_root", "modules"})
            root = self.value(table, (section, "modules_root"), str, None)
            if root is not None and kind == DAREPLANE_PYTHON:
                self.modules_root = root
            for key, module in self.table(table, (section, "modules")).items():
                if key in modules or key in found:
                    raise self.fail((section, "modules", key), f"module {key!r} is defined twice")
                if not isinstance(module, dict):
                    raise self.fail((section, "modules", key), f"{key} must be a table")
                found[key] = {**module, "kind": kind}
        return found

    def module(self, key: str, table: Any) -> ModuleSpec:
        at = ("modules", key)
        if not isinstance(table, dict):
            raise self.fail(at, f"modules.{key} must be a table, not {_type(table)}")
        kind = table.get("kind")
        if isinstance(kind, str) and kind.strip().lower() in (
            DAREPLANE_PYTHON,
            DAREPLANE_EXE,
            _DAREPLANE_CONNECT_ONLY,
        ):
            return self.dareplane_module(key, table)
        if not _KEY.match(key):
            raise self.fail(at, f"module key {key!r}: use letters, digits, '_' and '-'")
        allowed = {
            "kind",
            "ip",
            "port",
            "kwargs",
            "depends_on",
            "restart",
            "protocol",
            "entry",
            "python",
            "cwd",
        }
        self.unknown(table, at, allowed)
        if "kind" not in table:
            raise self.fail(
                (*at, "kind"), f'modules.{key} needs kind = "<module>", "external" or "remote"'
            )
        kind = self.value(table, (*at, "kind"), str, "")
        if kind not in (REMOTE, EXTERNAL) and not _KIND.match(kind):
            raise self.fail((*at, "kind"), f"kind {kind!r} is not a module name (modules.<kind>)")
        entry = self.value(table, (*at, "entry"), str, None)
        if (kind == EXTERNAL) != (entry is not None):
            raise self.fail(
                (*at, "entry"),
                'entry (python -m <entry>) is required for, and only for, kind = "external"',
            )
        if kind == REMOTE:
            for local_only in ("kwargs", "python", "cwd", "restart"):
                if local_only in table:
                    raise self.fail(
                        (*at, local_only), f"{local_only} has no meaning for a remote module"
                    )
        protocol = self.value(
            table, (*at, "protocol"), str, "legacy" if kind == EXTERNAL else "json"
        )
        if protocol not in PROTOCOLS:
            raise self.fail(
                (*at, "protocol"),
                f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}",
            )
        depends_on = self.value(table, (*at, "depends_on"), list, [])
        if not all(isinstance(item, str) for item in depends_on):
            raise self.fail((*at, "depends_on"), "depends_on must be a list of module keys")
        cwd = self.value(table, (*at, "cwd"), str, None)
        return ModuleSpec(
            key=key,
            kind=kind,
            ip=self.value(table, (*at, "ip"), str, "127.0.0.1"),
            port=self.port(table, (*at, "port"), None),
            kwargs=self.kwargs(self.table(table, (*at, "kwargs")), (*at, "kwargs")),
            depends_on=tuple(depends_on),
            restart=self.value(table, (*at, "restart"), bool, True),
            protocol=protocol,
            entry=entry,
            python=self.value(table, (*at, "python"), str, None),
            cwd=None if cwd is None else (self.base / cwd).resolve(),
            line=self._line(at),
        )

    def dareplane_module(self, key: str, table: dict[str, Any]) -> ModuleSpec:
        """A dp-control-room module: started as it starts them, spoken to in legacy mode."""
        at = ("modules", key)
        self.unknown(table, at, _DAREPLANE_MODULE_KEYS)
        kind = table["kind"].strip().lower()
        if "port" not in table or "ip" not in table:
            raise self.fail(at, f"modules.{key} needs ip and port (how we reach it)")
        self.positive(table, (*at, "retry_after_s"), 1.0)  # we wait up_timeout_s for UP
        self.value(table, (*at, "max_connect_retries"), int, 3)
        args = self.value(table, (*at, "args"), list, [])
        if not all(isinstance(arg, Scalar) for arg in args):
            raise self.fail((*at, "args"), "args must be a list of strings or numbers")
        depends_on = self.value(table, (*at, "depends_on"), list, [])
        common = {
            "key": key,
            "ip": self.value(table, (*at, "ip"), str, "127.0.0.1"),
            "port": self.port(table, (*at, "port"), None),
            "depends_on": tuple(depends_on),
            "restart": self.value(table, (*at, "restart"), bool, True),
            "protocol": "legacy",
            "line": self._line(at),
        }
        if kind == _DAREPLANE_CONNECT_ONLY:
            return ModuleSpec(kind=REMOTE, **common)
        kwargs = self.kwargs(self.table(table, (*at, "kwargs")), (*at, "kwargs"))
        cwd = self.value(table, (*at, "cwd"), str, None)
        if kind == DAREPLANE_EXE:
            if "path" not in table:
                raise self.fail(at, f'modules.{key}: kind = "exe" needs path (the executable)')
            return ModuleSpec(
                kind=DAREPLANE_EXE,
                executable=self.dareplane_path(self.value(table, (*at, "path"), str, ""), at),
                cwd=None if cwd is None else self.dareplane_path(cwd, (*at, "cwd")),
                args=tuple(str(arg) for arg in args),
                **common,
            )
        if cwd is None and self.modules_root is None:
            raise self.fail(
                at, f"modules.{key} needs cwd (its folder), or set modules.modules_root"
            )
        folder = (
            self.dareplane_path(cwd, (*at, "cwd"))
            if cwd is not None
            else self.dareplane_path(str(Path(str(self.modules_root)) / key), at)
        )
        return ModuleSpec(
            kind=DAREPLANE_PYTHON,
            kwargs=kwargs,
            entry=self.value(table, (*at, "custom_entry_point"), str, "api.server"),
            python=self.value(table, (*at, "python_executable"), str, None),
            cwd=folder,
            args=tuple(str(arg) for arg in args),
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

    def dareplane_macro(self, name: str, table: dict[str, Any], modules: dict) -> Macro:
        """A dp-control-room macro: `cmds = {comN = [module, PCOMM, "arg=param", ...]}` sends
        PCOMM with {arg: the macro's parameter param}; `default_json` gives the defaults."""
        at = ("macros", name)
        self.unknown(table, at, {"name", "description", "default_json", "cmds", "delay_s"})
        steps = []
        for step_key, command in self.table(table, (*at, "cmds")).items():
            where = (*at, "cmds", step_key)
            if (
                not isinstance(command, list)
                or len(command) < 2
                or not all(isinstance(part, str) for part in command)
            ):
                raise self.fail(where, f"{step_key} must be [module, PCOMM, 'arg=param', ...]")
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
            defaults=dict(self.table(table, (*at, "default_json"))),
            description=self.value(table, (*at, "description"), str, ""),
            title=self.value(table, (*at, "name"), str, name),
            delay_s=self.positive(table, (*at, "delay_s"), 0.0),
            step_gap_s=self.step_gap_s,
            dareplane=True,
        )

    def kwargs(self, table: dict[str, Any], at: tuple[str, ...]) -> dict[str, Any]:
        for key, value in table.items():
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(item, Scalar) for item in items):
                raise self.fail(
                    (*at, key),
                    f"{key}: a command-line option takes a string, number, boolean or list of them",
                )
        return dict(table)

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
            raise self.fail(at, f"macros.{name} must be a table, not {_type(table)}")
        if "cmds" in table:
            return self.dareplane_macro(name, table, modules)
        self.unknown(table, at, {"description", "defaults", "steps"})
        steps = self.value(table, (*at, "steps"), list, [])
        if not steps:
            raise self.fail(at, f"macro {name!r} has no steps: add [[macros.{name}.steps]] tables")
        parsed = []
        for index, step in enumerate(steps):
            where = (*at, "steps")
            if not isinstance(step, dict):
                raise self.fail(
                    where, f"step {index + 1} must be a table with module, cmd and payload"
                )
            self.unknown(step, where, {"module", "cmd", "payload"})
            module = self.value(step, (*where, "module"), str, "")
            if module not in modules:
                raise self.fail(where, f"step {index + 1} names unknown module {module!r}")
            cmd = self.value(step, (*where, "cmd"), str, "")
            if not cmd or any(c in cmd for c in ";|") or cmd != cmd.strip():
                raise self.fail(where, f"step {index + 1}: cmd {cmd!r} is not a command name")
            parsed.append(MacroStep(module, cmd, self.table(step, (*where, "payload"))))
        return Macro(
            name=name,
            steps=tuple(parsed),
            defaults=self.table(table, (*at, "defaults")),
            description=self.value(table, (*at, "description"), str, ""),
        )


def _find_cycle(key: str, modules: dict[str, ModuleSpec], path: list[str]) -> list[str]:
    if key in path:
        return [*path[path.index(key) :], key]
    for dependency in modules[key].depends_on:
        cycle = _find_cycle(dependency, modules, [*path, key])
        if cycle:
            return cycle
    return []


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Line numbers (1-based) of every table header and `key =` line, by dotted path.

    tomllib reports syntax errors with their line but keeps no positions for valid documents,
    so semantic errors find theirs here. First occurrence wins (array-of-tables repeat).
    """
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _dotted(header.group(1))
            lines.setdefault(table, number)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            lines.setdefault((*table, *_dotted(assign.group(1))), number)
    return lines


def _dotted(key: str) -> tuple[str, ...]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([^.\s"\']+)', key)
    return tuple(next(p for p in part if p) for part in parts)


def _type(value: Any) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), _type_name(type(value))
    )


def _type_name(kind: type) -> str:
    return {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "a boolean",
        list: "a list",
        dict: "a table",
    }.get(kind, kind.__name__)

"""`raceplane`: the command a person types.

Each subcommand lives with the code it drives; this file only lists them and dispatches, so
`raceplane --help` stays fast (nothing heavy is imported until a subcommand runs). A
subcommand target is a function `main(argv: list[str]) -> int`.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module

from dareplane_utils.lsl_config import ENV_VAR

# name -> (module path, function, one-line help). Keep in the order a newcomer meets them.
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "up": (
        "modules.control_room.commands",
        "up",
        "start a stack from a setup file: raceplane up [SETUP]",
    ),
    "down": ("modules.control_room.commands", "down", "stop the running stack"),
    "status": ("modules.control_room.commands", "status", "table of the running stack's modules"),
    "send": (
        "modules.control_room.commands",
        "send",
        "command a module: raceplane send MODULE CMD [JSON]",
    ),
    "macro": (
        "modules.control_room.commands",
        "macro",
        "run a setup-file macro: raceplane macro NAME [JSON]",
    ),
    "run": (
        "modules.cli",
        "run_module",
        "run one module in the foreground: raceplane run [--stack SETUP] MODULE [args]",
    ),
    "doctor": (
        "modules.doctor",
        "main",
        "can a stack run here? ports, LSL, UDP, disk, log server: raceplane doctor [SETUP]",
    ),
    "logs": ("dareplane_utils.logging.viewer", "main", "read or follow (-f) the central log"),
    "record": (
        "modules.recorder.cli",
        "record_main",
        "record LSL streams to XDF: raceplane record FILE",
    ),
    "inspect": (
        "modules.recorder.cli",
        "inspect_main",
        "list the streams of XDF files: raceplane inspect FILE...",
    ),
    "report": (
        "modules.analysis.report",
        "main",
        "an HTML page of a recording's laps and telemetry: raceplane report FILE [-o OUT]",
    ),
    "streams": (
        "modules.stream_catalogue",
        "main",
        "the LSL stream catalogue, or one stream's channels: raceplane streams [STREAM]",
    ),
    "replay": (
        "modules.game_sim.replay",
        "main",
        "send a raw UDP capture to a UDP target: raceplane replay FILE [--speed N]",
    ),
    "results": (
        "modules.lap_timer.results",
        "main",
        "a session's results (grid, classification, stops, penalties): raceplane results [SESSION]",
    ),
    "league": (
        "modules.league.cli",
        "main",
        "championships: raceplane league check|attach|decide|decisions|standings LEAGUE.toml",
    ),
    "livetiming": (
        "modules.livetiming.cli",
        "main",
        "F1 live timing: raceplane livetiming save FILE | replay FILE...",
    ),
}

# Commands that open LSL streams themselves (`run` chooses its own, for --stack).
LSL_COMMANDS = ("record",)

MODULES = (
    "control_room",
    "game_sim",
    "telemetry_decoder",
    "lap_timer",
    "recorder",
    "web_bridge",
    "engineer",
    "livetiming",
)


RUN_USAGE = """usage: raceplane run [--stack SETUP] MODULE [args]

Runs one module as `python -m modules.MODULE [args]` would, with the LSL configuration of a
stack: that of SETUP's stack (a module joining a stack from another machine), or, without
--stack, that of the default stack (`raceplane up`, control room port 8100).

modules: """


def run_module(argv: list[str]) -> int:
    """`raceplane run [--stack SETUP] MODULE [args]`: `python -m modules.MODULE [args]` with
    the LSL configuration of a stack (modules/control_room/lsl.py)."""
    if not argv or argv[0] in ("-h", "--help"):
        print(RUN_USAGE + ", ".join(MODULES))
        return 0 if argv else 2
    stack = None
    if argv[0] == "--stack":
        if len(argv) < 3:
            print("raceplane run: --stack SETUP MODULE [args]", file=sys.stderr)
            return 2
        stack, argv = argv[1], argv[2:]
    name, *rest = argv
    name = name.replace("-", "_")
    if name not in MODULES:
        print(
            f"raceplane run: unknown module {name!r}; choose one of: {', '.join(MODULES)}",
            file=sys.stderr,
        )
        return 2
    if not use_stack_lsl("run", stack):
        return 2
    entry = import_module(f"modules.{name}.__main__")
    return entry.main(rest) or 0


def use_stack_lsl(command: str, setup_file: str | None = None) -> bool:
    """Point this process's liblsl (and its children's) at the stack's configuration, before
    anything loads liblsl; False (having said why) if it cannot be had."""
    from modules.control_room.lsl import LslConfigError, choose
    from modules.control_room.setup import SetupError, load_setup

    try:
        choice = choose(load_setup(setup_file) if setup_file else None)
    except (SetupError, LslConfigError) as error:
        print(f"raceplane {command}: {error}", file=sys.stderr)
        return False
    os.environ[ENV_VAR] = str(choice.path)
    print(f"raceplane {command}: LSL {choice.describe()}", file=sys.stderr, flush=True)
    return True


def usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [
        "usage: raceplane COMMAND [args]   (raceplane COMMAND --help for its options)",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {text}" for name, (_, _, text) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    command, *rest = argv
    if command not in SUBCOMMANDS:
        print(f"raceplane: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    if command in LSL_COMMANDS and not use_stack_lsl(command):
        return 2
    module_path, function, _ = SUBCOMMANDS[command]
    try:
        code = getattr(import_module(module_path), function)(rest) or 0
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`raceplane streams | head`): stop quietly, as Unix tools do.
        # Python's own flush at exit would fail again, so stdout goes to /dev/null first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())

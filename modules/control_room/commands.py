"""`raceplane down | status | send | macro`: talk to a running control room.

The control room's address is --host/--port, else the [control_room] table of --setup FILE,
else 127.0.0.1:8100. Exit status: 0 done, 1 refused or not reachable, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from modules.control_room.setup import ControlRoomSettings, SetupError, load_setup
from modules.control_room.table import render_table

_TIMEOUT_S = 60.0  # a macro may drive several modules in turn
# Module kinds whose STATUS `inputs` say which expected streams are missing or quiet.
CONSUMERS = ("lap_timer", "recorder", "web_bridge")


class CliError(Exception):
    """A failure to report on stderr; `status` is the exit code."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _parser(name: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"raceplane {name}", description=description)
    parser.add_argument("--host", default=None, help="control room host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="control room port (default 8100)")
    parser.add_argument(
        "--setup", type=Path, default=None, help="take host and port from this setup file"
    )
    parser.add_argument("--json", action="store_true", help="print the raw JSON result")
    return parser


def _address(args: argparse.Namespace) -> tuple[str, int]:
    settings = ControlRoomSettings()
    if args.setup is not None:
        try:
            settings = load_setup(args.setup).settings
        except SetupError as error:
            raise CliError(str(error), 2) from error
    return (args.host or settings.host, args.port or settings.port)


def _ask(address: tuple[str, int], cmd: str, payload: dict[str, Any] | None = None) -> Any:
    client = ModuleClient(*address, timeout=_TIMEOUT_S)
    try:
        client.connect()
    except OSError as error:
        raise CliError(
            f"no control room answers at {address[0]}:{address[1]}: is the stack up? "
            f"(start it with `raceplane up`; other port: --port or --setup)"
        ) from error
    try:
        with client:
            return client.request(cmd, payload)
    except ModuleError as error:
        raise CliError(error.error) from error
    except OSError as error:
        raise CliError(f"control room at {address[0]}:{address[1]}: {error}") from error


def _payload(text: str | None, what: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(
            f"{what} is not valid JSON ({error}): {text!r}; e.g. '{{\"laps\": 3}}'", 2
        ) from error
    if not isinstance(value, dict):
        raise CliError(
            f"{what} must be a JSON object like '{{\"laps\": 3}}', not {type(value).__name__}", 2
        )
    return value


def _run(name: str, body: Any, argv: list[str], parser: argparse.ArgumentParser) -> int:
    args = parser.parse_args(argv)
    try:
        return body(args)
    except CliError as error:
        print(f"raceplane {name}: {error}", file=sys.stderr)
        return error.status
    except BrokenPipeError:
        # The reader left (`| head`): not an error; keep Python from complaining at exit.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0


def _print(result: Any, as_json: bool) -> None:
    if as_json or not isinstance(result, str):
        print(json.dumps(result, indent=None if as_json else 2))
    else:
        print(result)


def one_line(result: Any, width: int = 160) -> str:
    """A command's result on one line for a person: a dict's values, lists as their length,
    empty values left out, cut at `width` (the full result is what --json prints)."""
    if not isinstance(result, dict):
        text = json.dumps(result)
    else:
        parts = []
        for key, value in result.items():
            if isinstance(value, list):
                parts.append(f"{key}={len(value)}")
            elif isinstance(value, dict):
                parts.append(f"{key}={{{one_line(value, width)}}}")
            elif value is not None and value != "":
                parts.append(f"{key}={value}")
        text = " ".join(parts)
    return text if len(text) <= width else text[: width - 3] + "..."


def status(argv: list[str]) -> int:
    parser = _parser(
        "status", "Show every module of the running stack: state, pid, uptime, CPU, memory."
    )

    def body(args: argparse.Namespace) -> int:
        address = _address(args)
        result = _ask(address, "STATUS")
        if args.json:
            _print(result, True)
            return 0
        print(render_table(result["modules"]))
        for label, key in (("dashboard", "dashboard"), ("logs", "log_file"), ("setup", "setup")):
            if result.get(key):
                print(f"{label + ':':<11}{result[key]}")
        if result.get("lsl"):
            print(f"{'lsl:':<11}{result['lsl']['description']}")
        for line in _input_lines(address, result["modules"]):
            print(f"{'inputs:':<11}{line}")
        if result.get("macros"):
            print("macros:    " + ", ".join(result["macros"]))
        return 0

    return _run("status", body, argv, parser)


def _input_lines(address: tuple[str, int], modules: list[dict[str, Any]]) -> list[str]:
    """What each running consumer misses (its STATUS `inputs`), one line per problem."""
    lines, checked = [], []
    for module in modules:
        if module["kind"] not in CONSUMERS or not module["up"]:
            continue
        try:
            status = _ask(address, "SEND", {"module": module["key"], "cmd": "STATUS"})
        except CliError as error:
            lines.append(f"{module['key']}: cannot ask: {error}")
            continue
        checked.append(module["key"])
        problems = (status.get("inputs") or {}).get("problems", [])
        lines += [f"{module['key']}: {problem}" for problem in problems]
    return lines or ([f"every expected stream arrives ({', '.join(checked)})"] if checked else [])


def send(argv: list[str]) -> int:
    parser = _parser("send", "Send one command to one module through the control room.")
    parser.add_argument("module", help="module key in the setup file (see raceplane status)")
    parser.add_argument("cmd", help="command name, e.g. STATUS")
    parser.add_argument("payload", nargs="?", help="JSON object of keyword arguments")

    def body(args: argparse.Namespace) -> int:
        payload = _payload(args.payload, "payload")
        address = _address(args)
        _print(
            _ask(address, "SEND", {"module": args.module, "cmd": args.cmd, "payload": payload}),
            args.json,
        )
        return 0

    return _run("send", body, argv, parser)


def macro(argv: list[str]) -> int:
    parser = _parser("macro", "Run a macro of the setup file, with optional parameters.")
    parser.add_argument("name", help="macro name (see raceplane status)")
    parser.add_argument("params", nargs="?", help="JSON object of macro parameters")

    def body(args: argparse.Namespace) -> int:
        params = _payload(args.params, "parameters")
        if "name" in params:
            raise CliError("a macro parameter may not be called 'name'", 2)
        steps = _ask(_address(args), "MACRO", {"name": args.name, **params})
        if args.json:
            _print(steps, True)
        else:
            for step in steps:
                print(f"{step['module']} {step['cmd']}: {one_line(step['result'])}")
        return 0

    return _run("macro", body, argv, parser)


def down(argv: list[str]) -> int:
    parser = _parser(
        "down", "Stop the running stack (as Ctrl-C in `raceplane up` does) and wait for it."
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the stack to stop"
    )

    def body(args: argparse.Namespace) -> int:
        address = _address(args)
        _ask(address, "SHUTDOWN")
        # The control room closes its port after the last module is gone.
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            try:
                ModuleClient(*address, timeout=1.0).connect().close()
            except OSError:
                print("raceplane down: stack stopped")
                return 0
            time.sleep(0.1)
        raise CliError(
            f"the stack was still stopping after {args.timeout:g} s (see `raceplane status`)"
        )

    return _run("down", body, argv, parser)


def up(argv: list[str]) -> int:
    from modules.control_room.__main__ import main

    return main(argv)

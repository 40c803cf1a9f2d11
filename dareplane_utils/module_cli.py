"""The command line every module shares: --host, --port, --log-host, --log-port, --config.

A module builds its parser with `module_parser`, adds its own options, and calls
`parse_module_args`. A `--config FILE` (TOML) sets defaults for any option by its dest name
(`udp_port = 20777`, or nested under `[<module name>]`); options typed on the command line win.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config file that cannot be read, or that names options the module does not have."""


def module_parser(
    name: str, default_port: int, description: str | None = None
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m modules.{name}",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--host",
        "--ip",
        default="127.0.0.1",
        help="address the command server binds (--ip: Dareplane's name)",
    )
    parser.add_argument("--port", type=int, default=default_port, help="TCP command port")
    parser.add_argument(
        "--log-host",
        default=os.environ.get("RACEPLANE_LOG_HOST", "127.0.0.1"),
        help="log server host (env RACEPLANE_LOG_HOST)",
    )
    parser.add_argument(
        "--log-port",
        type=int,
        default=int(os.environ.get("RACEPLANE_LOG_PORT", "9020")),
        help="log server port (env RACEPLANE_LOG_PORT)",
    )
    parser.add_argument("--config", type=Path, default=None, help="TOML file with option defaults")
    parser.set_defaults(module_name=name)
    return parser


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from error


def parse_module_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """Parse argv, taking defaults from --config; unknown config keys are an error, not ignored.

    Dareplane's launchers write options as `--key=value` with the setup file's key as is
    (`--udp_port=20777`, `--verbose=True`): underscores are read as dashes, and a flag's
    `=True` / `=False` as the flag / its absence.
    """
    argv = dareplane_options(parser, sys.argv[1:] if argv is None else argv)
    preliminary, _ = parser.parse_known_args(argv)
    if preliminary.config is not None:
        try:
            table = load_toml(preliminary.config)
        except ConfigError as error:
            parser.error(str(error))
        section = table.get(preliminary.module_name, table)
        known = {action.dest for action in parser._actions}
        settings = {
            key.replace("-", "_"): value
            for key, value in section.items()
            if not isinstance(value, dict)
        }
        unknown = sorted(set(settings) - known)
        if unknown:
            parser.error(f"{preliminary.config}: unknown option(s) {', '.join(unknown)}")
        parser.set_defaults(**settings)
    return parser.parse_args(argv)


def dareplane_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """argv with Dareplane's `--some_key=value` spellings turned into this parser's options."""
    flags = {
        option: action
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--")
    }
    result: list[str] = []
    for token in argv:
        name, equals, value = token.partition("=")
        if name.startswith("--") and name not in flags and name.replace("_", "-") in flags:
            name = name.replace("_", "-")
        action = flags.get(name)
        if equals and action is not None and action.nargs == 0:
            if value.lower() in ("true", "1", "yes"):
                result.append(name)
            elif value.lower() not in ("false", "0", "no", ""):
                result.append(token)  # argparse says what is wrong with it
            continue
        result.append(f"{name}{equals}{value}")
    return result

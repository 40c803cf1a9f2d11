"""Run a Raceplane stack from a setup file: start it, supervise it, stop it on Ctrl-C.

`raceplane up [SETUP]` and `python -m modules.control_room [SETUP]` are the same. The setup
file's [control_room] table gives the control room's port and the log server; --host, --port,
--log-host and --log-port override it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from dareplane_utils.default_server.server import DefaultServer
from dareplane_utils.logging.logger import get_logger
from dareplane_utils.logging.sender import JsonSocketHandler
from dareplane_utils.module_cli import module_parser, parse_module_args
from modules.control_room.launch import REPO
from modules.control_room.lsl import LslConfigError
from modules.control_room.room import ControlRoom
from modules.control_room.setup import Setup, SetupError, load_setup
from modules.control_room.supervisor import ModuleStatus
from modules.control_room.table import render_table, status_line

DEFAULT_SETUP = REPO / "configs" / "demo.toml"


def build_parser() -> argparse.ArgumentParser:
    parser = module_parser("control_room", 8100, __doc__)
    parser.prog = "raceplane up"
    parser.add_argument(
        "setup", nargs="?", type=Path, default=DEFAULT_SETUP, help="setup file (TOML)"
    )
    # None means "as the setup file says"; a flag typed here wins over the file.
    parser.set_defaults(host=None, port=None, log_host=None, log_port=None)
    return parser


def apply_overrides(setup: Setup, args: argparse.Namespace) -> Setup:
    changes = {
        name: getattr(args, name)
        for name in ("host", "port", "log_host", "log_port")
        if getattr(args, name) is not None
    }
    return dataclasses.replace(setup, settings=dataclasses.replace(setup.settings, **changes))


def main(argv: list[str] | None = None) -> int:
    args = parse_module_args(build_parser(), argv)
    try:
        setup = apply_overrides(load_setup(args.setup), args)
    except SetupError as error:
        print(f"raceplane up: {error}", file=sys.stderr)
        return 2
    settings = setup.settings
    # The status table tells the person at the terminal what happens; stderr keeps the problems.
    logger = get_logger(
        "control_room",
        log_host=settings.log_host,
        log_port=settings.log_port,
        stderr_level=logging.WARNING,
    )
    try:
        room = ControlRoom(setup, logger, on_change=_print_change)
    except LslConfigError as error:
        print(f"raceplane up: {error}", file=sys.stderr)
        return 2
    server = DefaultServer(
        port=settings.port,
        ip=settings.host,
        pcommand_map=room.commands(),
        name="control_room",
        logger=logger,
    )
    try:
        server.init_server()
    except OSError as error:
        print(
            f"raceplane up: {error} (already up? `raceplane status --port {settings.port}`)",
            file=sys.stderr,
        )
        return 1
    server_thread = server.serve_in_thread()
    interrupts = _on_interrupt(room)
    began = time.monotonic()
    print(f"raceplane: starting {len(setup.modules)} module(s) from {setup.path}", flush=True)
    print(f"raceplane: LSL {room.lsl.describe()}", flush=True)
    starter = threading.Thread(target=_start, args=(room, began), name="starter", daemon=True)
    starter.start()
    # Ctrl-C, SHUTDOWN (raceplane down), or CLOSE/SIGTERM ending the server: all stop the stack.
    while not room.shutdown_requested.wait(0.1) and server_thread.is_alive():
        pass
    print("raceplane: stopping (Ctrl-C again to kill at once)", flush=True)
    stopped = time.monotonic()
    room.supervisor.stop_modules()
    starter.join()
    server.shutdown(timeout=10)
    _flush_log_records(logger)
    room.supervisor.stop_log_server()
    signal.signal(signal.SIGINT, interrupts)
    failed = [s.key for s in room.supervisor.statuses() if s.state == "failed"]
    left = room.supervisor.leftovers()
    took = f"{time.monotonic() - stopped:.1f} s"
    if left:
        print(f"raceplane: stopped in {took}, but processes {left} remain", file=sys.stderr)
    else:
        print(f"raceplane: stopped in {took}; no process left", flush=True)
    return 1 if failed or left else 0


def _start(room: ControlRoom, began: float) -> None:
    every_one_up = room.supervisor.start()
    if room.shutdown_requested.is_set():
        return
    settings = room.setup.settings
    for name in settings.on_up:
        try:
            room.macro(name)
            print(f"raceplane: ran macro {name}", flush=True)
        except ValueError as error:
            print(f"raceplane: on_up macro {name} failed: {error}", file=sys.stderr, flush=True)
    print("\n" + render_table(room.supervisor.status_dicts()), flush=True)
    if every_one_up:
        print(f"\nraceplane: all modules up in {time.monotonic() - began:.1f} s", flush=True)
    else:
        print("\nraceplane: some modules are not up (see above); the rest is running", flush=True)
    if room.dashboard_url():
        print(f"dashboard:    {room.dashboard_url()}")
    if settings.log_server:
        print(f"logs:         {settings.log_file}   (follow: raceplane logs -f)")
    print(
        f"control room: {settings.host}:{settings.port}   (raceplane status / send / macro / down)"
    )
    print("Ctrl-C stops everything.", flush=True)


def _flush_log_records(logger: logging.Logger) -> None:
    """Deliver the control room's own records while the log server still runs; a record
    sent after it stopped would only hold up the exit."""
    for handler in list(logger.handlers):
        if isinstance(handler, JsonSocketHandler):
            handler.close()
            logger.removeHandler(handler)


def _print_change(status: ModuleStatus) -> None:
    print(status_line(dataclasses.asdict(status)), flush=True)


def _on_interrupt(room: ControlRoom) -> Any:
    def handler(signum: int, frame: Any) -> None:
        if room.shutdown_requested.is_set():
            # A second Ctrl-C: no more patience, kill every process group now.
            room.supervisor.kill_all()
            raise SystemExit(130)
        room.shutdown_requested.set()

    previous = signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return previous


if __name__ == "__main__":
    sys.exit(main())

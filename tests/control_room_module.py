"""A small module for the control room's tests, written the way Dareplane modules are.

It uses only the Dareplane-compatible API (`DefaultServer(port, ip, pcommand_map, name,
logger)`, `init_server()`, `start_listening()`), so the same file runs on Raceplane's
dareplane_utils and, from a throwaway venv, on dareplane-utils 0.0.24. Run it as
`python -m control_room_module --port P` with this folder as the working directory.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from dareplane_utils.default_server.server import DefaultServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="test_module")
    parser.add_argument("--marker", type=Path, help="append every MARK text here")
    parser.add_argument("--child", action="store_true", help="keep a child process running")
    parser.add_argument("--stubborn", action="store_true", help="ignore SIGTERM and outlive CLOSE")
    parser.add_argument("--exit-code", type=int, help="exit with this code before serving")
    # The control room also passes --log-host/--log-port to Raceplane kinds; not needed here.
    args, _ = parser.parse_known_args()

    if args.exit_code is not None:
        print(f"{args.name}: exiting with {args.exit_code} as told", flush=True)
        return args.exit_code
    if args.stubborn:
        # Blocked, not ignored: a handler installed later (by a server) cannot undo it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    child = None
    if args.child:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])

    def mark(text: str = "") -> int:
        if args.marker:
            with open(args.marker, "a") as handle:
                handle.write(f"{text}\n")
        return 0

    def echo(**kwargs: object) -> dict:
        return kwargs

    def pid() -> int:
        return os.getpid()

    def fail() -> None:
        raise ValueError("asked to fail")

    def work() -> tuple[threading.Thread, threading.Event]:
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait, daemon=True)
        thread.start()
        return thread, stop

    server = DefaultServer(
        port=args.port,
        ip=args.host,
        pcommand_map={"MARK": mark, "ECHO": echo, "PID": pid, "FAIL": fail, "WORK": work},
        name=args.name,
        logger=logging.getLogger(args.name),
    )
    server.init_server()
    print(f"{args.name}: serving on {args.host}:{args.port}", flush=True)
    server.start_listening()
    if args.stubborn:
        time.sleep(600)
    if child is not None:
        child.terminate()
        child.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

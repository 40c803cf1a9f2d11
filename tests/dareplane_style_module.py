"""A module written the way Dareplane modules are, run by the tests as a real process.

`python -m tests.dareplane_style_module --port P --ticks FILE`. Its commands return what
Dareplane's return: 0, a `(Thread, Event)` pair, a `subprocess.Popen`. The worker thread and
the child processes write their ids to --ticks so a test can look them up with psutil. After
CLOSE it prints the threads the server left alive, so a test can see that none is.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from dareplane_utils.default_server.server import DefaultServer
from dareplane_utils.logging.logger import get_logger
from dareplane_utils.module_cli import module_parser, parse_module_args

# A child that starts a grandchild, so stopping must end a whole process tree.
_CHILD = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(sys.argv[1], "a") as f:
    f.write(f"process {grandchild.pid}\\n")
time.sleep(600)
"""


def make_commands(ticks: Path) -> dict:
    def record(line: str) -> None:
        with ticks.open("a") as handle:
            handle.write(line + "\n")

    def noop() -> int:
        return 0

    def start_thread(period_s: float = 0.01) -> tuple[threading.Thread, threading.Event]:
        stop = threading.Event()

        def run() -> None:
            record(f"thread {threading.get_native_id()}")
            while not stop.wait(period_s):
                pass

        thread = threading.Thread(target=run, name="dareplane-style-worker")
        thread.start()
        return thread, stop

    def start_process() -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", _CHILD, str(ticks)])
        record(f"process {process.pid}")
        return process

    return {"NOOP": noop, "START_THREAD": start_thread, "START_PROCESS": start_process}


def main(argv: list[str] | None = None) -> int:
    parser = module_parser("dareplane_style_module", 8199, __doc__)
    parser.add_argument("--ticks", type=Path, required=True)
    args = parse_module_args(parser, argv)
    logger = get_logger("dareplane_style", log_host=args.log_host, log_port=args.log_port)
    server = DefaultServer(
        port=args.port,
        ip=args.host,
        pcommand_map=make_commands(args.ticks),
        name="dareplane_style",
        logger=logger,
    )
    before = set(threading.enumerate())  # the logger's sender thread is not the server's
    server.init_server()
    print("listening", flush=True)
    server.start_listening()
    left = sorted(t.name for t in set(threading.enumerate()) - before)
    print(f"threads left after close: {left}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

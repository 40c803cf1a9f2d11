"""`raceplane doctor [SETUP]`: can a stack run on this machine? Each check printed with a fix.

Checks, for the setup file's ports and paths (default configs/demo.toml): the TCP and UDP
ports are free, LSL discovery works end to end (an outlet in another process, found and read
here, with the configuration the stack would use), a UDP datagram reaches the decoder's port,
there is disk space for recordings, and the log server's port and file are usable. Exit 0 when
nothing failed, 1 otherwise. Finishes within a few seconds (each check has a time limit).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dareplane_utils.lsl_config import ENV_VAR, LslConfig, write_config
from modules.control_room import link
from modules.control_room.launch import REPO
from modules.control_room.lsl import FROM_STACK, LslConfigError, choose
from modules.control_room.setup import Setup, SetupError, load_setup

DEFAULT_SETUP = REPO / "configs" / "demo.toml"
MIN_FREE_BYTES = 1 << 30  # a long race records a few hundred MB
LSL_TIMEOUT_S = 3.0
# The test outlet: pushes a sample every 50 ms until its stdin closes.
_OUTLET = """
import sys, threading, pylsl
info = pylsl.StreamInfo(sys.argv[1], "doctor", 1, 0, "float32", sys.argv[1])
outlet = pylsl.StreamOutlet(info)
print("ready", flush=True)
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
while not done.wait(0.05):
    outlet.push_sample([42.0])
"""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def render(check: Check) -> str:
    line = f"  {'ok' if check.ok else 'FAIL':<5} {check.name:<10} {check.detail}"
    return line + (f"\n        fix: {check.fix}" if check.fix else "")


# ---- the checks ------------------------------------------------------------------------------


def ports(setup: Setup) -> Check:
    """Every port the stack binds on this machine is free (or held by this stack, running)."""
    settings = setup.settings
    wanted: list[tuple[str, str, int, int]] = [("control room", settings.host, settings.port, 0)]
    if settings.log_server:
        wanted.append(("log server", settings.log_host, settings.log_port, 0))
    for spec in setup.modules.values():
        if spec.is_remote:
            continue
        wanted.append((spec.key, spec.ip, spec.port, 0))
        if "http_port" in spec.kwargs:
            host = str(spec.kwargs.get("http_host", "127.0.0.1"))
            wanted.append((f"{spec.key} http", host, int(spec.kwargs["http_port"]), 0))
        if "udp_port" in spec.kwargs:
            host = str(spec.kwargs.get("udp_host", "0.0.0.0"))
            wanted.append((f"{spec.key} udp", host, int(spec.kwargs["udp_port"]), 1))
    busy = [f"{what} {port}/{'udp' if udp else 'tcp'}" for what, host, port, udp in wanted
            if not _free(host, port, udp)]  # fmt: skip
    if not busy:
        return Check("ports", True, f"all {len(wanted)} ports free")
    if link.is_up((settings.host, settings.port), "json", timeout=0.5):
        return Check(
            "ports",
            True,
            f"in use by the stack running here ({', '.join(busy)})",
            "nothing to do; `raceplane status` shows it, `raceplane down` stops it",
        )
    return Check(
        "ports",
        False,
        f"in use: {', '.join(busy)}",
        "stop what holds them (`ss -ltnup` names it; an old stack: `raceplane down`) or give "
        "the setup file other ports",
    )


def lsl(setup: Setup | None) -> Check:
    """An outlet in another process, found and read here, with the stack's kind of config.

    Run once per process: liblsl keeps the first config it reads."""
    try:
        choice = choose(setup)
    except LslConfigError as error:
        return Check("lsl", False, str(error), "point lsl_config / LSLAPICFG at a readable file")
    if choice.source == FROM_STACK:
        # Same shape as the stack's, in a session of its own: a running stack never sees it.
        probe = LslConfig(f"raceplane-doctor-{uuid.uuid4().hex}", choice.config.peers)
        path = write_config(probe, Path(tempfile.mkdtemp(prefix="raceplane-doctor-")))
    else:
        path = choice.path
    name = f"doctor-{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    outlet = subprocess.Popen(
        [sys.executable, "-c", _OUTLET, name],
        env={**os.environ, ENV_VAR: str(path)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # This process reads the same config (liblsl reads it once, at its first use; nothing
        # here used LSL before), loading pylsl while the outlet's process starts.
        os.environ[ENV_VAR] = str(path)
        import pylsl

        if outlet.stdout is None or outlet.stdout.readline().strip() != "ready":
            return Check("lsl", False, "the test outlet did not start", "reinstall: make install")
        found = pylsl.resolve_byprop("name", name, 1, LSL_TIMEOUT_S)
        sample = pylsl.StreamInlet(found[0]).pull_sample(timeout=2.0)[0] if found else None
    finally:
        outlet.communicate(timeout=5)  # closes its stdin: it exits
    took = time.monotonic() - began
    where = choice.describe()
    if sample == [42.0]:
        return Check("lsl", True, f"test outlet found and read in {took:.1f} s; {where}")
    return Check(
        "lsl",
        False,
        f"a test outlet in another process was not found within {LSL_TIMEOUT_S:g} s; {where}",
        "loopback must be up (`ip link set lo up`) and UDP on 127.0.0.0/8 not firewalled; "
        "with your own lsl_config / LSLAPICFG, check its ResolveScope and KnownPeers",
    )


def udp(setup: Setup) -> Check:
    """A datagram sent where the game simulator sends reaches the decoder's UDP port."""
    decoder = next((s for s in setup.modules.values() if s.kind == "telemetry_decoder"), None)
    if decoder is None:
        return Check("udp", True, "no telemetry decoder in this setup")
    port = int(decoder.kwargs.get("udp_port", 20777))
    host = str(decoder.kwargs.get("udp_host", "0.0.0.0"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        try:
            receiver.bind((host, port))
        except OSError as error:
            return Check(
                "udp",
                False,
                f"cannot listen on UDP {host}:{port}: {error.strerror}",
                "another program (a decoder already running?) holds it: stop it or set "
                "udp_port in the setup file (and the game's UDP port to match)",
            )
        receiver.settimeout(1.0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"raceplane doctor", ("127.0.0.1", port))
        try:
            data, _ = receiver.recvfrom(64)
        except TimeoutError:
            data = b""
    if data == b"raceplane doctor":
        return Check("udp", True, f"a datagram to 127.0.0.1:{port} arrived")
    return Check(
        "udp",
        False,
        f"a datagram to 127.0.0.1:{port} did not arrive",
        f"a firewall drops UDP to port {port}: allow it (for the game on another machine, "
        "from that machine too)",
    )


def disk(setup: Setup) -> Check:
    """Recordings have room: free space and a writable folder where the recorder saves."""
    recorder = next((s for s in setup.modules.values() if s.kind == "recorder"), None)
    if recorder is None:
        return Check("disk", True, "no recorder in this setup")
    folder = Path(str(recorder.kwargs.get("save_path", "recordings")))
    folder = folder if folder.is_absolute() else (recorder.cwd or REPO) / folder
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if not os.access(existing, os.W_OK):
        return Check(
            "disk", False, f"{existing} is not writable", "set save_path to a folder you own"
        )
    detail = f"{free / 2**30:.1f} GB free for recordings in {folder}"
    if free < MIN_FREE_BYTES:
        return Check("disk", False, detail, "free some space, or set save_path on another disk")
    return Check("disk", True, detail)


def log_server(setup: Setup) -> Check:
    """The log server: answering (a stack runs), or able to start (its file's folder)."""
    settings = setup.settings
    address = f"{settings.log_host}:{settings.log_port}"
    if link.is_up((settings.log_host, settings.log_port), link.TCP_ONLY, timeout=0.5):
        return Check("log", True, f"a log server answers on {address}")
    if not settings.log_server:
        return Check(
            "log",
            False,
            f"the setup uses a log server at {address} (log_server = false) and none answers",
            "start one (`python -m dareplane_utils.logging.server`) or set log_server = true",
        )
    folder = settings.log_file.parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not os.access(existing, os.W_OK):
        return Check(
            "log",
            False,
            f"cannot write the log file in {folder}",
            "set log_file to a folder you own",
        )
    return Check(
        "log", True, f"none running; the stack starts one on {address}, file {settings.log_file}"
    )


def _free(host: str, port: int, udp: int) -> bool:
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        if not udp:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="raceplane doctor", description=__doc__.split("\n")[0])
    parser.add_argument("setup", nargs="?", type=Path, default=DEFAULT_SETUP, help="setup file")
    args = parser.parse_args(argv)
    try:
        setup = load_setup(args.setup)
    except SetupError as error:
        print(f"raceplane doctor: {error}", file=sys.stderr)
        return 2
    print(f"raceplane doctor: {args.setup}", flush=True)
    began = time.monotonic()
    checks: list[Callable[[], Check]] = [
        lambda: ports(setup),
        lambda: lsl(setup),
        lambda: udp(setup),
        lambda: disk(setup),
        lambda: log_server(setup),
    ]
    results = []
    for check in checks:
        results.append(check())
        print(render(results[-1]), flush=True)
    failed = [c.name for c in results if not c.ok]
    took = time.monotonic() - began
    verdict = f"{len(failed)} problem(s): {', '.join(failed)}" if failed else "all good"
    print(f"raceplane doctor: {verdict} ({took:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

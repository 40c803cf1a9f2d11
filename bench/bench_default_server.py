"""DefaultServer round trips and throughput, side by side with dareplane-utils 0.0.24.

Each server runs in its own process (ours from .venv, Dareplane's from a throwaway venv, since
both are imported as `dareplane_utils`); this process drives it over loopback with one
selector loop, so the load generator costs one core and the server gets the other.

    .venv/bin/python bench/bench_default_server.py          (or: make bench)

Rows:
- UP round trip (legacy `UP;` -> `1`), one client, sequential.
- A command with a small JSON payload: ours in JSON mode (one reply line); Dareplane has no
  reply for module commands, so there (and in our "legacy" row) it is `CMD|{..};UP;` -> `1`.
- UP commands/s with 1, 10 and 100 clients at once, each sending its next UP as soon as the
  last is answered, with per-request latency and how many clients got served at all.
"""

from __future__ import annotations

import logging
import selectors
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER = ("dareplane-utils-0.0.24", ["dareplane-utils==0.0.24"])
PAYLOAD = b'ECHO|{"driver": "VER", "lap": 12, "sector_ms": [28731, 31012, 24870]};'
LATENCY_REQUESTS = 5000
LOAD_SECONDS = 0.5
ROUNDS = 4
PACE_S = 0.01


def serve(port: int) -> None:
    """Run whichever `dareplane_utils` this interpreter has: the same module for both."""
    from dareplane_utils.default_server.server import DefaultServer

    quiet = logging.getLogger("bench.quiet")
    quiet.setLevel(logging.WARNING)
    # Dareplane's callables must return an int; 0 is valid for both.
    server = DefaultServer(
        port=port, ip="127.0.0.1", pcommand_map={"ECHO": lambda **_: 0}, name="bench", logger=quiet
    )
    server.logger.setLevel(logging.WARNING)
    server.init_server()
    print("ready", flush=True)
    server.start_listening()


class ServerProcess:
    def __init__(self, python: Path) -> None:
        from dareplane_utils.testing import free_port

        self.port = free_port()
        self.process = subprocess.Popen(
            [str(python), str(Path(__file__)), "serve", str(self.port)],
            stdout=subprocess.PIPE,
            cwd=HERE,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"{python}: benchmark server did not start ({line!r})")

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    banner = b""
    while not banner.endswith(b"\n"):
        banner += sock.recv(1024)
    return sock


def round_trips(sock: socket.socket, request: bytes, reply_end: bytes, count: int) -> list[float]:
    """Sequential request/reply latencies in microseconds on one connection."""
    samples = []
    for _ in range(count):
        start = time.perf_counter_ns()
        sock.sendall(request)
        reply = sock.recv(65536)
        while not reply.endswith(reply_end):
            reply += sock.recv(65536)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


@dataclass
class _LoadClient:
    sock: socket.socket
    greeted: bool = False
    waiting: bool = False
    sent_at: int = 0
    latencies: list[float] = field(default_factory=list)

    def ask(self) -> None:
        self.sent_at = time.perf_counter_ns()
        self.waiting = True
        self.sock.send(b"UP;")


def load(port: int, clients: int, paced: bool) -> tuple[float, list[float], int]:
    """UP load from `clients` connections: (commands/s, latencies in us, clients served).

    Closed loop: every client asks again as soon as it is answered; latencies of all.
    Paced: client 0 (the probe) asks again at once, the others every PACE_S; latencies of
    the probe only. The probe connects first, so a one-client-at-a-time server serves it.
    """
    selector = selectors.DefaultSelector()
    members = [_LoadClient(connect(port))]
    members[0].greeted = True
    for _ in range(clients - 1):
        sock = socket.socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Non-blocking: Dareplane's backlog of 10 leaves the rest of 100 clients unconnected.
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        members.append(_LoadClient(sock))
    members[0].sock.setblocking(False)
    for member in members:
        selector.register(member.sock, selectors.EVENT_READ, member)
    start = time.perf_counter()
    end = start + LOAD_SECONDS
    next_tick = start
    members[0].ask()
    answered = 0
    while (now := time.perf_counter()) < end:
        if paced and now >= next_tick:
            for member in members[1:]:
                if member.greeted and not member.waiting:
                    member.ask()
            next_tick = now + PACE_S
        for key, _ in selector.select(timeout=PACE_S):
            member = key.data
            try:
                data = member.sock.recv(65536)
            except OSError:  # never got through the backlog
                data = b""
            if not data:
                selector.unregister(member.sock)
                continue
            if not member.greeted:
                member.greeted = True  # the banner; UP replies never contain a line end
            else:
                answered += data.count(b"1")
                member.waiting = False
                if member is members[0] or not paced:
                    member.latencies.append((time.perf_counter_ns() - member.sent_at) / 1000)
            if member is members[0] or not paced:
                member.ask()
    elapsed = time.perf_counter() - start
    latencies = [value for member in members for value in member.latencies]
    served = sum(1 for member in members if member.greeted)
    for member in members:
        member.sock.close()
    selector.close()
    return answered / elapsed, latencies, served


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from bench.peers import peer_python, print_table

    implementations = {
        "raceplane": Path(sys.executable),
        "dareplane-utils 0.0.24": peer_python(*PEER),
    }
    cases = [
        ("UP", b"UP;", b"1", False),
        ("ECHO+payload, legacy (+UP)", PAYLOAD + b"UP;", b"1", False),
        ("ECHO+payload, JSON mode", PAYLOAD, b"\n", True),
    ]
    # The machine is shared: rounds alternate between the servers so that both see the same
    # background load, and each row pools its rounds.
    latency_rows = []
    for case, request, reply_end, hello in cases:
        labels = [label for label in implementations if label == "raceplane" or not hello]
        samples: dict[str, list[float]] = {label: [] for label in labels}
        servers = [ServerProcess(implementations[label]) for label in labels]
        try:
            socks = [connect(server.port) for server in servers]
            for sock in socks:
                if hello:
                    sock.sendall(b'HELLO|{"protocol": 2};')
                    while not sock.recv(65536).endswith(b"\n"):
                        pass
                round_trips(sock, request, reply_end, 200)  # warm-up
            for _ in range(ROUNDS):
                for label, sock in zip(labels, socks, strict=True):
                    count = LATENCY_REQUESTS // ROUNDS
                    samples[label] += round_trips(sock, request, reply_end, count)
        finally:
            for server in servers:
                server.__exit__()
        for label in labels:
            latency_rows.append(
                [case, label, percentile(samples[label], 0.5), percentile(samples[label], 0.99)]
            )
    print_table(
        f"Command round trip on loopback, one client, {LATENCY_REQUESTS} requests",
        ["command", "server", "p50 us", "p99 us"],
        latency_rows,
    )
    for paced, title in (
        (True, f"UP round trip of one client while the others send UP every {PACE_S * 1000:g} ms"),
        (False, "UP throughput, every client asking again as soon as answered"),
    ):
        rows = []
        for clients in (1, 10, 100):
            results: dict[str, list] = {label: [0.0, [], 0] for label in implementations}
            for _ in range(ROUNDS):
                for label, python in implementations.items():
                    with ServerProcess(python) as server:
                        rate, latencies, served = load(server.port, clients, paced)
                    results[label][0] += rate / ROUNDS
                    results[label][1] += latencies
                    results[label][2] = served
            for label, (rate, latencies, served) in results.items():
                rows.append(
                    [
                        clients,
                        label,
                        f"{served}/{clients}",
                        rate,
                        percentile(latencies, 0.5),
                        percentile(latencies, 0.99),
                    ]
                )
        print_table(
            f"{title} ({ROUNDS} x {LOAD_SECONDS:g} s per row)",
            ["clients", "server", "served", "commands/s", "p50 us", "p99 us"],
            rows,
        )
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
    else:
        sys.exit(main())

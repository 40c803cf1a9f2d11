"""Live timing: receiving a feed, reading saved files, replaying them; Raceplane beside FastF1.

1. Receive: a local SignalR Core server (tests/livetiming_server.py) streams N feed messages
   as fast as it can; the clients save them to a file (`raceplane livetiming save` and FastF1's
   `SignalRClient`, each as a process). Time from the Subscribe reply to the last line on disk.
2. Read: one saved session read back (Raceplane's merge_files vs FastF1's LiveTimingData).
3. Replay: the same session turned into Raceplane's stream samples flat out (no peer: FastF1
   does not replay onto streams).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peers import print_table
from dareplane_utils.testing import free_port, wait_until
from modules.livetiming.replay import replay
from modules.livetiming.savefile import SaveWriter, merge_files
from tests.livetiming_server import HubConnection, LiveTimingServer, hold, synthetic_race

FEED_MESSAGES = 20_000
FASTF1_CLIENT = (
    "import sys\n"
    "from fastf1.livetiming.client import SignalRClient as C\n"
    "C._connection_url = sys.argv[1].replace('http', 'ws')\n"
    "C._negotiate_url = sys.argv[1] + '/negotiate'\n"
    "C._access_token_factory = lambda self: (lambda: 'bench')\n"
    "C(sys.argv[2], timeout=30).start()\n"
)


def receive(kind: str, feed: list, state: dict, directory: Path) -> float:
    """Messages per second saved by one client, Subscribe reply to the last line on disk."""
    path = directory / f"{kind}.txt"
    started: list[float] = []

    def scenario(conn: HubConnection) -> None:
        subscribe = conn.wait_subscribe(timeout=60)
        started.append(time.perf_counter())
        conn.send({"type": 3, "invocationId": subscribe["invocationId"], "result": state})
        for topic, data, stamp in feed:
            conn.feed(topic, data, stamp)
        hold(conn)

    expected = len(feed) + len(state)

    def done() -> bool:
        if not path.exists():
            return False
        with open(path, "rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) >= (
                expected
            )

    with LiveTimingServer([scenario]) as server:
        if kind == "raceplane":
            command = [
                sys.executable,
                "-m",
                "modules.livetiming",
                "--log-port",
                str(free_port()),
                "save",
                str(path),
                "--url",
                server.url,
                "--timeout",
                "30",
            ]
        else:
            command = [sys.executable, "-c", FASTF1_CLIENT, server.url, str(path)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: started, timeout=60, message=f"{kind} subscribing")
            wait_until(done, timeout=300, interval=0.005, message=f"{kind} saving everything")
            elapsed = time.perf_counter() - started[0]
        finally:
            process.kill()
            process.wait(timeout=10)
    return len(feed) / elapsed


def big_session(directory: Path) -> tuple[Path, int]:
    race = synthetic_race(laps=250, drivers=("1", "44", "16", "4"))
    path = directory / "session.txt"
    writer = SaveWriter(path)
    writer.write_state(race.state)
    for topic, data, stamp in race.feed:
        writer.write_feed(topic, data, stamp)
    writer.close()
    return path, len(race.feed)


def main() -> int:
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        path, messages = big_session(directory)
        race = synthetic_race(laps=400, drivers=("1", "44", "16", "4"))
        feed = (race.feed * (FEED_MESSAGES // len(race.feed) + 1))[:FEED_MESSAGES]
        rows = [
            [kind, FEED_MESSAGES, receive(kind, feed, race.state, directory)]
            for kind in ("raceplane", "fastf1")
        ]
        print_table(
            "receive and save a SignalR feed (messages/s, higher is better)",
            ["client", "messages", "messages/s"],
            rows,
        )

        import fastf1
        from fastf1.livetiming.data import LiveTimingData

        fastf1.set_log_level("ERROR")
        t0 = time.perf_counter()
        ours = merge_files([path])
        ours_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        data = LiveTimingData(str(path))
        data.load()
        theirs_s = time.perf_counter() - t0
        theirs = sum(len(data.get(c)) for c in data.list_categories())
        print_table(
            f"read a saved session ({messages} lines; seconds, lower is better)",
            ["reader", "messages read", "seconds", "messages/s"],
            [
                ["raceplane merge_files", len(ours), ours_s, len(ours) / ours_s],
                ["fastf1 LiveTimingData", theirs, theirs_s, theirs / theirs_s],
            ],
        )

        samples = []
        t0 = time.perf_counter()
        report = replay([path], samples.append, logging.getLogger("bench"), flat_out=True)
        took = time.perf_counter() - t0
        print_table(
            "replay flat out into stream samples (no LSL push)",
            ["replay", "messages", "samples", "seconds", "messages/s"],
            [
                ["raceplane", report.messages, report.samples, took, report.messages / took],
                ["fastf1", "n/a (no replay onto streams)", "", "", ""],
            ],
        )
    return 0


if __name__ == "__main__":
    threading.excepthook = lambda args: None  # server threads ending with the bench are fine
    sys.exit(main())

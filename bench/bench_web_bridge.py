"""Web bridge: lap sample on LSL -> WebSocket message -> dashboard DOM, and how many 20 Hz
telemetry WebSocket clients one bridge holds.

    .venv/bin/python bench/bench_web_bridge.py          (or: make bench)

A feeder process publishes `raceplane.laps`, `raceplane.car_telemetry` and `raceplane.lap_data`
(modules.web_bridge.feeder); a bridge process watches them. Times are the LSL clock (one
monotonic clock for every process on the machine); the browser's are wall-clock, converted.

Tables:
- Lap latency: push on LSL -> received. The reference is a plain pylsl inlet in this process
  (what LSL alone costs); then a WebSocket client of the bridge; then the dashboard in
  headless Chromium (the lap's row appears in the "Latest laps" list), p50/p99.
- Load: N extra clients subscribed to one car's telemetry at 20 Hz with the track map (what a
  dashboard asks for), the feeder at 20 Hz; lap latency at a probe client, the telemetry rate
  each client gets, the bridge's CPU. Grows N until the p50 doubles against one client.
"""

from __future__ import annotations

import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import pylsl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peers import print_table
from dareplane_utils.testing import wait_until
from modules.web_bridge.devstack import DevStack

LAPS = 200
DOM_LAPS = 100
LAP_INTERVAL_S = 0.05
TELEMETRY_HZ = 20
CLIENT_STEPS = [1, 10, 25, 50, 100, 200, 400]
LOAD_LAPS = 60
CHROMIUM = "/usr/bin/chromium"
WARM_UP = 10  # first laps of each measurement, while connections settle: not counted
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Feeder:
    """Writes orders to the feeder process; a reader thread pairs each with its push time."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lock = threading.Lock()
        self.pending: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.stamps: dict[str, float] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stop = threading.Event()

    def push(self, order: dict, key: str | None = None) -> None:
        with self.lock:
            self.pending.put(key)
            self.process.stdin.write(json.dumps(order) + "\n")
            self.process.stdin.flush()

    def _read(self) -> None:
        for line in self.process.stdout:
            key = self.pending.get()
            if key is not None:
                self.stamps[key] = float(line.split()[1])

    def lap(self, key: str) -> None:
        lap = {"session_uid": "bench", "car_index": 0, "driver": key, "team": "McLaren",
               "lap": 1, "lap_time_ms": 80000, "sector_ms": [1, 2, 3], "valid": True,
               "tyre": "soft", "pit_in": False, "pit_out": False, "source": "game"}  # fmt: skip
        self.push({"stream": "raceplane.laps", "json": lap}, key)

    def telemetry_loop(self) -> None:
        """20 Hz of telemetry and lap data for 20 cars, as the game sends it."""
        cars = {str(i): {"speed_kph": 200 + i, "gear": 6, "throttle": 1.0} for i in range(20)}
        positions = {
            str(i): {"car_position": i + 1, "result_status": 2, "current_lap_num": 1}
            for i in range(20)
        }
        motion = {str(i): {"world_position_x_m": i, "world_position_z_m": i} for i in range(20)}
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.push({"stream": "raceplane.car_telemetry", "cars": cars})
            self.push({"stream": "raceplane.lap_data", "cars": positions})
            self.push({"stream": "raceplane.motion", "cars": motion})
            next_at += 1 / TELEMETRY_HZ
            time.sleep(max(0.0, next_at - time.monotonic()))

    def start_telemetry(self) -> threading.Thread:
        self._stop.clear()
        thread = threading.Thread(target=self.telemetry_loop, daemon=True)
        thread.start()
        return thread

    def stop_telemetry(self) -> None:
        self._stop.set()


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values[WARM_UP:])
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def measure_inlet(feeder: Feeder) -> list[float]:
    """The reference: the same laps read by a plain pylsl inlet, pulled in a tight loop."""
    info = pylsl.resolve_byprop("name", "raceplane.laps", 1, 10)[0]
    inlet = pylsl.StreamInlet(info)
    inlet.open_stream(10)
    arrivals: list[tuple[str, float]] = []
    done = threading.Event()

    def pull() -> None:
        while not done.is_set():
            sample, _ = inlet.pull_sample(timeout=0.2)
            if sample:
                key = json.loads(sample[0])["driver"]
                arrivals.append((key, pylsl.local_clock()))

    thread = threading.Thread(target=pull, daemon=True)
    thread.start()
    for i in range(LAPS):
        feeder.lap(f"inlet-{i}")
        time.sleep(LAP_INTERVAL_S)
    time.sleep(0.5)
    done.set()
    thread.join()
    return [1000 * (t - feeder.stamps[key]) for key, t in arrivals if key in feeder.stamps]


class Probe:
    """A WebSocket client in a thread of its own, noting when each bench lap arrives."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.arrivals: dict[str, float] = {}
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError(f"no WebSocket connection to {url}")

    def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        with connect(self.url, open_timeout=10, max_size=None) as ws:
            self.ws = ws
            ws.send(json.dumps({"type": "subscribe", "cars": [], "map": False}))
            self.ready.set()
            try:
                for text in ws:
                    now = pylsl.local_clock()
                    if text.startswith('{"type":"lap"'):
                        self.arrivals[json.loads(text)["data"]["driver"]] = now
            except ConnectionClosed:
                return

    def close(self) -> None:
        self.ws.close()
        self.thread.join(timeout=5)


def measure_ws(feeder: Feeder, url: str, prefix: str, count: int) -> list[float]:
    probe = Probe(url)
    time.sleep(0.3)
    keys = [f"{prefix}-{i}" for i in range(count)]
    for key in keys:
        feeder.lap(key)
        time.sleep(LAP_INTERVAL_S)
    wait_until(lambda: all(k in probe.arrivals for k in keys[-5:]), timeout=30, message="laps")
    probe.close()
    return [1000 * (probe.arrivals[k] - feeder.stamps[k]) for k in keys if k in probe.arrivals]


def measure_dom(feeder: Feeder, url: str) -> list[float]:
    from playwright.sync_api import sync_playwright

    watch = """() => {
      window.__seen = {};
      new MutationObserver((records) => {
        const now = performance.timeOrigin + performance.now();
        for (const r of records) for (const n of r.addedNodes)
          if (n.dataset && n.dataset.driver) window.__seen[n.dataset.driver] = now;
      }).observe(document.querySelector('#laps'), { childList: true });
    }"""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(url)
        page.wait_for_function("document.querySelector('#connection').textContent === 'live'")
        page.evaluate(watch)
        # Wall clock minus LSL clock, to put the browser's times on the LSL clock.
        offset = min(time.time() - pylsl.local_clock() for _ in range(50))
        keys = [f"dom-{i}" for i in range(DOM_LAPS)]
        for key in keys:
            feeder.lap(key)
            time.sleep(LAP_INTERVAL_S * 2)
        page.wait_for_function(f"'{keys[-1]}' in window.__seen", timeout=30_000)
        seen = page.evaluate("window.__seen")
        browser.close()
    return [seen[k] - 1000 * (feeder.stamps[k] + offset) for k in keys if k in seen]


CLIENTS_SCRIPT = """
import asyncio, json, sys, time
import websockets
url, n = sys.argv[1], int(sys.argv[2])
counts = [0] * n
async def client(i):
    async with websockets.connect(url, max_size=None) as ws:
        sub = {"type": "subscribe", "cars": [i % 20], "rate_hz": 20, "map": True}
        await ws.send(json.dumps(sub))
        async for text in ws:
            if text.startswith('{"type":"telemetry"'):
                counts[i] += 1
async def main():
    tasks = [asyncio.create_task(client(i)) for i in range(n)]
    await asyncio.sleep(1.0)
    print("ready", flush=True)
    start = list(counts); t0 = time.monotonic()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    dt = time.monotonic() - t0
    rates = [(c - s) / dt for c, s in zip(counts, start)]
    print(json.dumps({"mean_hz": sum(rates) / n, "min_hz": min(rates)}), flush=True)
    for t in tasks: t.cancel()
asyncio.run(main())
"""


def measure_load(feeder: Feeder, url: str, bridge_pid: int) -> list[list[object]]:
    bridge = psutil.Process(bridge_pid)
    rows: list[list[object]] = []
    baseline = None
    feeder.start_telemetry()
    try:
        for n in CLIENT_STEPS:
            clients = subprocess.Popen(
                [sys.executable, "-c", CLIENTS_SCRIPT, url, str(n)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            if clients.stdout.readline().strip() != "ready":
                raise RuntimeError("load clients did not start")
            bridge.cpu_percent(None)
            delays = measure_ws(feeder, url, f"load{n}", LOAD_LAPS)
            cpu = bridge.cpu_percent(None)
            clients.stdin.write("\n")
            clients.stdin.flush()
            rates = json.loads(clients.stdout.readline())
            clients.wait(timeout=30)
            p50, p99 = percentiles(delays)
            baseline = baseline or p50
            rows.append([n, p50, p99, rates["mean_hz"], rates["min_hz"], cpu])
            if p50 >= 2 * baseline:
                break
    finally:
        feeder.stop_telemetry()
    return rows


def main() -> int:
    with DevStack(Path(tempfile.mkdtemp(prefix="bench-web-bridge-"))) as dev:
        os.environ["LSLAPICFG"] = str(dev.lsl_config)  # this process's own inlet, same session
        process = dev.feeder("raceplane.laps", "raceplane.car_telemetry", "raceplane.lap_data",
                             "raceplane.motion")  # fmt: skip
        feeder = Feeder(process)
        bridge = dev.bridge()
        url = bridge.url.replace("http", "ws") + "ws"
        wait_until(
            lambda: len(httpx.get(bridge.url + "api/streams").json()) == 4,
            timeout=30,
            message="bridge watching the feeder",
        )
        inlet = measure_inlet(feeder)
        ws = measure_ws(feeder, url, "ws", LAPS)
        dom = measure_dom(feeder, bridge.url) if Path(CHROMIUM).exists() else []
        rows = [["plain pylsl inlet (reference)", len(inlet) - WARM_UP, *percentiles(inlet)]]
        rows.append(["bridge -> WebSocket client", len(ws) - WARM_UP, *percentiles(ws)])
        if dom:
            rows.append(
                ["bridge -> dashboard DOM (Chromium)", len(dom) - WARM_UP, *percentiles(dom)]
            )
        print_table("Lap sample pushed on LSL -> seen (ms)", ["path", "laps", "p50", "p99"], rows)
        load = measure_load(feeder, url, dev.processes["web_bridge"].pid)
        print_table(
            f"Lap -> WebSocket (ms) with N clients on {TELEMETRY_HZ} Hz telemetry + map",
            ["clients", "p50", "p99", "telemetry Hz/client", "min Hz", "bridge CPU %"],
            load,
        )
        held = [row[0] for row in load if row[1] < 2 * load[0][1]]
        print(f"\nclients held before the lap delay doubles: {max(held)}"
              f"{' (the largest step tried)' if len(held) == len(load) else ''}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

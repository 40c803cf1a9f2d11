"""Footprint: what the demo stack costs beside the game, per process, with one dashboard open.

The demo stack (configs/demo.toml: log server, decoder, lap timer, recorder, web bridge, game
simulator, on free ports, in an LSL session of its own) races 22 cars at real time and 60 Hz,
recording, with one headless Chromium on the dashboard. After a warm-up, each process's CPU
time (user + system, from /proc) over a window gives its CPU % of one core, and its RSS is
read at the end of the window (RSS counts the shared libraries each process maps, libpython,
numpy, liblsl, in every one; PSS shares them out, so the PSS column adds up to what the stack
really takes; USS is what the process alone holds, what stopping it would free). CPU seconds
over the window are printed beside the %: on a machine busy with other work they are the
steadier figure. Then whole races at high speed (--races of --race-laps at --race-speed x and
--race-rate Hz, the dashboard still open) show whether the web bridge's memory levels off:
sampled every 2 s, the curve printed, and its RSS and USS at the end of each race (a leak grows
race after race; rings and caches filling up do not).

Goal from issue 18: the stack (everything but the simulator, which plays the game, and the
browser) under 12 % of one core and under 250 MB.

    .venv/bin/python bench/bench_footprint.py [--window S] [--warmup S] [--race-laps N] [--races N]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]

from bench_control_room import answers_up, demo_setup, status, toml  # noqa: E402
from peers import print_table  # noqa: E402

from dareplane_utils.client.module_client import ModuleClient  # noqa: E402
from dareplane_utils.testing import free_port, isolate_lsl, wait_until  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
GAME = "game_sim"  # plays the part of the game: measured, but not part of the stack
GOAL_CPU_PERCENT = 12.0
GOAL_RSS_MB = 250.0
CONTROL_ROOM_PID = [0]  # set once the control room runs


def members(process: psutil.Process) -> list[psutil.Process]:
    """A module's process and its children (its helpers count as its own); the control room
    alone (its children are the modules, measured each on their own)."""
    if process.pid == CONTROL_ROOM_PID[0]:
        return [process]
    return [process, *process.children(recursive=True)]


def family_cpu_s(process: psutil.Process) -> float:
    """CPU seconds of `members(process)`."""
    total = 0.0
    for member in members(process):
        try:
            times = member.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def family_rss_mb(process: psutil.Process) -> float:
    total = 0
    for member in members(process):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += member.memory_info().rss
    return total / 1e6


def family_full_mb(process: psutil.Process) -> tuple[float, float]:
    """(PSS, USS) of `members(process)`, MB."""
    pss = uss = 0
    for member in members(process):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            full = member.memory_full_info()
            pss, uss = pss + full.pss, uss + full.uss
    return pss / 1e6, uss / 1e6


def game_state(port: int) -> str:
    with ModuleClient("127.0.0.1", port).connect() as client:
        return client.request("STATUS")["state"]


def packets_sent(port: int) -> int:
    with ModuleClient("127.0.0.1", port).connect() as client:
        return client.request("STATUS")["packets_sent"]


def recorder_bytes(port: int) -> int:
    with ModuleClient("127.0.0.1", port).connect() as client:
        return client.request("STATUS")["bytes"]


def start_browser(url: str):
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
    )
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(url)
    page.wait_for_selector("#tower tbody tr", timeout=60_000)
    return playwright, browser


def browser_processes(own: psutil.Process) -> list[psutil.Process]:
    return [p for p in own.children(recursive=True) if "chrom" in p.name().lower()]


def race_memory(
    bridge: psutil.Process, game_port: int, race: dict[str, Any], args: argparse.Namespace
) -> None:
    """The web bridge's RSS and USS over `args.races` whole races, sampled every 2 s."""
    samples: list[tuple[float, float, float]] = []  # (s since the first race began, RSS, USS)
    ends: list[list[object]] = []
    start = time.monotonic()
    for number in range(1, args.races + 1):
        with ModuleClient("127.0.0.1", game_port).connect() as client:
            client.request("STOP")
            fast = {"laps": args.race_laps, "speed": args.race_speed, "rate": args.race_rate}
            client.request("START", {**race, **fast})
        wait_until(lambda: game_state(game_port) == "racing", timeout=30)
        while True:
            samples.append(
                (time.monotonic() - start, family_rss_mb(bridge), family_full_mb(bridge)[1])
            )
            if game_state(game_port) != "racing":
                break
            time.sleep(2)
        ends.append([f"end of race {number}", samples[-1][0], samples[-1][1], samples[-1][2]])
    step = max(1, len(samples) // 16)
    curve = [[f"{t:.0f} s", t, rss, uss] for t, rss, uss in samples[::step]]
    first, last = samples[0], samples[-1]
    half = samples[len(samples) // 2]
    print_table(
        f"Web bridge memory over {args.races} whole races: {args.race_laps} laps of Monza each "
        f"at {args.race_speed:g}x, 22 cars, {args.race_rate} Hz, the dashboard open "
        f"({last[0]:.0f} s, {len(samples)} samples, every {step}th shown)",
        ["web_bridge", "s", "RSS MB", "USS MB"],
        [
            *curve,
            *ends,
            ["peak", "", max(r for _, r, _ in samples), max(u for _, _, u in samples)],
            ["rise over all", "", last[1] - first[1], last[2] - first[2]],
            ["rise over the second half", "", last[1] - half[1], last[2] - half[2]],
        ],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--laps", type=int, default=3, help="measured race (Monza, real time)")
    parser.add_argument("--race-laps", type=int, default=10, help="the whole race, for RSS")
    parser.add_argument("--races", type=int, default=2, help="whole races, one after another")
    # The simulator is Python: 22 cars at 60 Hz and 10x outrun it on a busy machine.
    parser.add_argument("--race-speed", type=float, default=8.0, help="its speed (x real time)")
    parser.add_argument("--race-rate", type=int, default=20, help="its game send rate, Hz")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--rate", type=int, default=60, help="game send rate, Hz")
    args = parser.parse_args()
    isolate_lsl("bench-footprint")
    work = Path(tempfile.mkdtemp(prefix="raceplane-footprint-"))
    data, missing = demo_setup(work)
    room_port = free_port()
    data["control_room"].update(
        port=room_port,
        log_port=free_port(),
        log_file=str(work / "log.jsonl"),
        output_dir=str(work / "out"),
    )
    setup = work / "setup.toml"
    setup.write_text(toml(data))
    ports = {key: spec["port"] for key, spec in data["modules"].items()}
    http_port = data["modules"]["web_bridge"]["kwargs"]["http_port"]
    room = subprocess.Popen(
        [sys.executable, "-m", "modules.control_room", str(setup)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    playwright = browser = None
    try:
        wait_until(lambda: all(answers_up(p) for p in ports.values()), timeout=120)
        rows = wait_until(
            lambda: (
                (rows := status(room_port))
                and all(r["state"] == "running" for r in rows.values())
                and rows
            ),
            timeout=60,
        )
        processes = {key: psutil.Process(row["pid"]) for key, row in rows.items() if row["pid"]}
        processes["control_room"] = psutil.Process(room.pid)
        CONTROL_ROOM_PID[0] = room.pid
        with ModuleClient("127.0.0.1", ports["recorder"]).connect() as client:
            client.request("RECORD", {"filename": "race.xdf"})
        with ModuleClient("127.0.0.1", ports[GAME]).connect() as client:
            race = {"track": "monza", "laps": args.laps, "cars": 22, "speed": 1}
            client.request("START", {**race, "rate": args.rate})
        playwright, browser = start_browser(f"http://127.0.0.1:{http_port}/")
        own = psutil.Process()
        time.sleep(args.warmup)
        chromium = browser_processes(own)
        before = {key: family_cpu_s(p) for key, p in processes.items()}
        chromium_before = sum(family_cpu_s(p) for p in chromium)
        recorded_before = recorder_bytes(ports["recorder"])
        sent_before = packets_sent(ports[GAME])
        began = time.monotonic()
        time.sleep(args.window)
        elapsed = time.monotonic() - began
        recorded_mb_per_min = (
            (recorder_bytes(ports["recorder"]) - recorded_before) / 1e6 * (60 / elapsed)
        )
        cpu_s = {key: family_cpu_s(p) - before[key] for key, p in processes.items()}
        # A simulator starved by other work on the machine sends fewer packets, and the stack
        # then has less to do: CPU per packet compares runs on a busy machine.
        sent = max(1, packets_sent(ports[GAME]) - sent_before)
        per_k = {key: 1000 * 1000 * cpu_s[key] / sent for key in processes}
        cpu = {key: 100 * cpu_s[key] / elapsed for key in processes}
        rss = {key: family_rss_mb(p) for key, p in processes.items()}
        full = {key: family_full_mb(p) for key, p in processes.items()}
        chromium_cpu = 100 * (sum(family_cpu_s(p) for p in chromium) - chromium_before) / elapsed
        chromium_rss = sum(p.memory_info().rss for p in chromium if p.is_running()) / 1e6

        stack = [key for key in processes if key != GAME]
        table = [
            [key, cpu_s[key], per_k[key], cpu[key], rss[key], *full[key]] for key in sorted(stack)
        ]
        table.append(
            [
                "= the stack",
                sum(cpu_s[k] for k in stack),
                sum(per_k[k] for k in stack),
                sum(cpu[k] for k in stack),
                sum(rss[k] for k in stack),
                sum(full[k][0] for k in stack),
                sum(full[k][1] for k in stack),
            ]
        )
        table.append(
            [
                f"  goal (issue 18): < {GOAL_CPU_PERCENT:g} % and < {GOAL_RSS_MB:g} MB",
                "",
                "",
                GOAL_CPU_PERCENT,
                GOAL_RSS_MB,
                "",
                "",
            ]
        )
        game = [cpu_s[GAME], per_k[GAME], cpu[GAME], rss[GAME], *full[GAME]]
        table.append([f"{GAME} (the game's part)", *game])
        table.append(
            ["chromium (the dashboard client)", "", "", chromium_cpu, chromium_rss, "", ""]
        )
        print_table(
            f"Demo stack at real time, {args.rate} Hz, 22 cars, recording, one dashboard client: "
            f"CPU over {elapsed:.0f} s after {args.warmup:g} s"
            + (f" (left out, not in this tree: {', '.join(missing)})" if missing else ""),
            [
                "process",
                "CPU s",
                "CPU ms/1k packets",
                "CPU % of one core",
                "RSS MB",
                "PSS MB",
                "USS MB",
            ],
            table,
        )

        print(
            f"\nthe game sent {sent / elapsed:.0f} packets/s over the window (the simulator "
            "sends fewer when the machine is busy)"
        )
        print(
            f"recording: {recorded_mb_per_min:.1f} MB per minute of race "
            f"({recorded_mb_per_min * 60 / 1000:.2f} GB per hour) at {args.rate} Hz, 22 cars"
        )
        race_memory(processes["web_bridge"], ports[GAME], race, args)
        return 0
    finally:
        if browser is not None:
            browser.close()
        if playwright is not None:
            playwright.stop()
        room.send_signal(signal.SIGINT)
        try:
            room.wait(timeout=60)
        except subprocess.TimeoutExpired:
            room.kill()
        shutil.rmtree(work, ignore_errors=True)  # the recording alone is hundreds of MB


if __name__ == "__main__":
    sys.exit(main())

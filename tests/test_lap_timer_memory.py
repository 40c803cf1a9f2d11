"""The lap timer's memory stays bounded by what a session must keep, in process and in seconds.

The soak (test_soak.py) found the lap timer's RSS growing ~5 MB a lap through a 22-lap race: its
JSON rings kept every Session (~19 kB, 2/s) and SessionHistory (~13 kB, 20/s) text they had
held until they wrapped, which for Session took longer than the race. Here the real decoder
core makes a real Session packet, a feeder process pushes it on a real LSL outlet many times,
and the Feed and LapTimer run in this process under tracemalloc.
"""

from __future__ import annotations

import gc
import logging
import subprocess
import tracemalloc

import pytest
from test_lap_timer import UID
from test_lap_timer_live import Decoder

from dareplane_utils.testing import wait_until
from modules.game_sim.broadcast import Broadcaster
from modules.game_sim.race import RaceSim, SessionOptions
from modules.lap_timer.feed import JSON_RING_SAMPLES, Feed
from modules.lap_timer.store import Store
from modules.lap_timer.timer import LapTimer
from modules.telemetry_decoder.core import Datagram, DecoderCore

SESSION = "raceplane.session"
WARM_UP = 100
# Fewer than a JSON ring holds: a ring that keeps what it was given keeps all of them.
PACKETS = 1000
# What may stay behind: the work thread's last batch and allocator slack; the old feed kept
# PACKETS x ~19 kB, about 18 MB.
MAX_GROWTH_BYTES = 4_000_000


def session_packet() -> dict:
    """A Session packet of a 22-car race as the decoder publishes it (marshal zones, forecast)."""
    sim = RaceSim(SessionOptions(laps=5, cars=22, rate=20, seed=7), session_uid=UID)
    broadcaster, core = Broadcaster(sim, 2025), DecoderCore()
    for step in range(1000):
        datagrams = [Datagram(d, ("127.0.0.1", 20777), step + i * 1e-4) for i, d in
                     enumerate(broadcaster.step())]  # fmt: skip
        for publication in core.feed(datagrams):
            if publication.stream == SESSION:
                return publication.objects[0]
    raise AssertionError("the simulator sent no Session packet")


@pytest.fixture
def decoder(spawn):
    process = spawn(
        "tests.lap_timer_feeder",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
    )
    return Decoder(process)


def test_session_packets_do_not_pile_up_in_the_feed(decoder, tmp_path):
    assert PACKETS < JSON_RING_SAMPLES
    packet = session_packet()
    store = Store(tmp_path / "memory.sqlite3")
    timer = LapTimer(store)
    feed = Feed(timer, logging.getLogger("test_lap_timer_memory"))
    feed.start()
    tracemalloc.start()
    try:
        wait_until(lambda: SESSION in feed.connected, timeout=20, message="feed on the session")

        def handled(marker: int) -> bool:
            session = timer.sessions.get(str(UID))
            return session is not None and session.total_laps == marker

        def push(count: int, marker: int) -> int:
            """`count` Session packets, the last with total_laps `marker`; traced bytes once
            the lap timer has handled that last one."""
            for i in range(count):
                decoder.push(SESSION, {**packet, "total_laps": marker if i == count - 1 else 5})
            wait_until(
                lambda: handled(marker) and feed.status()["queued"] == 0,
                timeout=60,
                message=f"the lap timer handling Session packet {marker}",
            )
            gc.collect()
            return tracemalloc.get_traced_memory()[0]

        def first() -> bool:
            # A sample pushed while the inlet still subscribes may never arrive: repeat it.
            decoder.push(SESSION, {**packet, "total_laps": 90})
            return handled(90)

        wait_until(first, timeout=20, interval=0.2, message="the lap timer reading Sessions")
        before = push(WARM_UP, 91)
        after = push(PACKETS, 92)
        assert feed.samples[SESSION] >= WARM_UP + PACKETS
        assert feed.status()["lost"] == {}
        growth = after - before
        assert growth < MAX_GROWTH_BYTES, (
            f"{growth / 1e6:.1f} MB more traced after {PACKETS} Session packets "
            f"of {len(str(packet)) / 1e3:.0f} kB"
        )
    finally:
        tracemalloc.stop()
        feed.stop()
        store.close()

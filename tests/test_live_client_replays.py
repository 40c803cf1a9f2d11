"""The live client on the two replay sources, as on a live stack: a real F1 session replayed
from its live-timing file (live-timing topics) and a game capture replayed through the decoder
and the lap timer (laps, telemetry), each a real process publishing on LSL."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pylsl
import pytest
from test_lap_timer_e2e import client
from test_order_game import all_seven, make_capture, start_chain

from dareplane_utils.testing import free_port, wait_until
from modules.game_sim.race import SessionOptions
from modules.live import LiveClient, Telemetry
from modules.livetiming.savefile import merge_files
from modules.livetiming.state import LiveSession
from modules.livetiming.topics import TopicError
from modules.stream_catalogue import STREAMS

ROOT = Path(__file__).resolve().parent.parent
SESSION = ROOT.parent / "shared" / "data" / "livetiming" / "2024_spain_qualifying.txt.gz"
LAP_FIELDS = ("lap_time_ms", "sector_ms", "valid", "pit_in", "pit_out", "tyre")


def published(path: Path) -> list[dict]:
    """What a replay of `path` publishes on raceplane.livetiming, in order (as JSON sees it)."""
    session, out = LiveSession(), []
    for message in merge_files([path], []):
        try:
            samples = session.feed(message)
        except (TopicError, ValueError, TypeError, KeyError, IndexError, AttributeError):
            continue  # the replay refuses it too
        out += [orjson.loads(orjson.dumps(s.value)) for s in samples if s.stream.endswith("timing")]
    return out


@pytest.mark.skipif(not SESSION.exists(), reason=f"no live-timing file {SESSION}")
@pytest.mark.timeout(300)
def test_live_timing_topics_of_a_replayed_session(tmp_path: Path) -> None:
    path = tmp_path / SESSION.name.removesuffix(".gz")
    path.write_bytes(gzip.decompress(SESSION.read_bytes()))
    want = published(path)
    want_rc = [m for m in want if m["topic"] == "RaceControlMessages"]
    want_timing = [m for m in want if m["topic"] == "TimingData"]
    assert len(want_rc) > 10 and len(want_timing) > 5000

    live = LiveClient(missing_after_s=60)
    messages: list[dict] = []
    again: list[dict] = []
    timing: list[dict] = []
    live.on("RaceControlMessages", messages.append)

    @live.on("RaceControlMessages")
    def broken(message: dict) -> None:
        raise KeyError("a user's bug")

    live.on("RaceControlMessages", again.append)
    live.on("TimingData", timing.append)
    with live:
        # Paced (not flat out), so the client finds the stream, created with the first
        # message, long before the session's first race control message (807 s in: 8 s here).
        replay = subprocess.run(
            [sys.executable, "-m", "modules.livetiming.cli", "--log-port", str(free_port()),
             "replay", str(path), "--speed", "100", "--linger-s", "2"],
            cwd=ROOT, capture_output=True, text=True, timeout=200,
        )  # fmt: skip
        assert replay.returncode == 0, replay.stderr[-2000:]
        wait_until(
            lambda: len(messages) >= len(want_rc) and timing and timing[-1] == want_timing[-1],
            timeout=60,
            message="every race control message and the last TimingData delivered",
        )
        status = live.status()
    assert [dict(m) for m in messages] == want_rc  # each once, in order, decoded
    assert again == messages  # the raising callback stopped neither the next one
    assert status["callback_errors"] == {broken.__qualname__: len(want_rc)}
    assert {m.topic for m in messages} == {"RaceControlMessages"}
    # TimingData began before the client found the stream (a few, at 100x): from there on,
    # every message once and in order.
    assert [dict(m) for m in timing] == want_timing[len(want_timing) - len(timing) :]
    assert len(timing) > 0.9 * len(want_timing)


@pytest.mark.timeout(400)
def test_laps_and_telemetry_of_a_replayed_game_capture(spawn, tmp_path: Path) -> None:
    options = SessionOptions(cars=20, laps=2, seed=11, rate=20)
    truth, datagrams = make_capture(tmp_path / "race.rpcap", options, uid=0xCA_0024)
    ports = start_chain(spawn, tmp_path)
    timer = client(ports["timer"])
    all_seven(timer)

    live = LiveClient(missing_after_s=30)
    laps: list[dict] = []
    also: list[dict] = []
    telemetry: list[Telemetry] = []
    live.on("laps", laps.append)

    @live.on("laps")
    def broken(lap: dict) -> None:
        raise ValueError("a user's bug")

    live.on("laps", also.append)
    fields = ("speed_kph", "gear")
    live.on_telemetry(cars=[3], channels=fields, rate_hz=5, function=telemetry.append)
    # What the decoder published, read beside the client to compare with.
    (info,) = pylsl.resolve_byprop("name", "raceplane.car_telemetry", 1, 30)
    raw = pylsl.StreamInlet(info, max_buflen=600)
    raw.open_stream(timeout=10)
    # The same laps through asyncio: a second client, run_async in an event loop of its own.
    in_loop = LiveClient(missing_after_s=30)
    async_laps: list[dict] = []
    finished = threading.Event()

    @in_loop.on("laps")
    async def keep(lap: dict) -> None:
        await asyncio.sleep(0)
        async_laps.append(lap)

    loop = threading.Thread(
        target=asyncio.run,
        args=(in_loop.run_async(until=finished.is_set, timeout_s=300),),
        daemon=True,  # a failing test leaves it to its timeout
    )
    loop.start()
    with live:
        wait_until(
            lambda: live.status()["missing"] == [] == in_loop.status()["missing"],
            timeout=60,
            message="the clients reading the lap timer's laps and the decoder's telemetry",
        )
        replay = subprocess.run(
            [sys.executable, "-m", "modules.game_sim.replay", str(tmp_path / "race.rpcap"),
             "--flat-out", "--target-port", str(ports["udp"]),
             "--ack", f"127.0.0.1:{ports['timer']}"],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert replay.returncode == 0, replay.stderr[-2000:]
        assert f"sent {datagrams} datagrams" in replay.stdout
        expected = {(c["car_index"], lap["lap"]): lap for c in truth["cars"] for lap in c["laps"]}
        uid = str(truth["session_uid"])
        wait_until(
            lambda: len([lap for lap in laps if lap["session_uid"] == uid]) >= len(expected),
            timeout=60,
            message="every lap of the capture delivered",
        )
        wait_until(lambda: len(async_laps) >= len(laps), message="every lap through asyncio")
        finished.set()
        loop.join(timeout=30)
    mine = [lap for lap in laps if lap["session_uid"] == uid]
    keys = [(lap["car_index"], lap["lap"]) for lap in mine]
    assert len(keys) == len(set(keys)) == len(expected)  # each exactly once
    assert {k: {f: lap[f] for f in LAP_FIELDS} for k, lap in zip(keys, mine, strict=True)} == {
        k: {f: lap[f] for f in LAP_FIELDS} for k, lap in expected.items()
    }
    for car in {car for car, _ in keys}:
        numbers = [n for c, n in keys if c == car]
        assert numbers == sorted(numbers)
    assert also == laps
    assert async_laps == laps and not loop.is_alive()
    # Telemetry at 5 Hz by the game's clock, named, with units, equal to the decoder's samples.
    ours = [t for t in telemetry if t.session_uid == int(truth["session_uid"])]
    assert len(ours) > 20 and {t.car for t in ours} == {3}
    steps = [b.session_time_s - a.session_time_s for a, b in itertools.pairwise(ours)]
    assert min(steps) >= 0.2 - 1e-3 and max(steps) <= 0.2 + 1e-3
    assert ours[0].units["speed_kph"] == "km/h"
    samples, _ = raw.pull_chunk(timeout=1.0, max_samples=100000)
    col = {c.label: i for i, c in enumerate(STREAMS["raceplane.car_telemetry"].channels)}
    sent = {int(s[col["header.frame_identifier"]]): s for s in samples}
    assert all(t.frame in sent for t in ours)
    for t in ours:
        assert t.values == {f: float(sent[t.frame][col[f"car03.{f}"]]) for f in fields}
    assert max(t["speed_kph"] for t in ours) > 100

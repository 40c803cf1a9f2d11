"""The lap timer as a process: real LSL outlets in another process (lap_timer_feeder.py)
play the decoder, commands go over TCP, laps and standings come back on LSL, and the SQLite
file survives a restart.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from test_lap_timer import LABELS, UID, Track

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.stream_watcher.lsl_stream_watcher import StreamWatcher
from dareplane_utils.testing import free_port, wait_until


class Decoder:
    """The test's end of the feeder process."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        process.stdin.write(json.dumps(LABELS) + "\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == "ready"

    def push(self, name: str, value) -> None:
        if isinstance(value, np.ndarray):
            value = value.tolist()
        self.process.stdin.write(json.dumps([name, value]) + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "pushed"

    def lap(self, track: Track, car: int, s1: int, s2: int, s3: int, invalid: bool = False) -> None:
        track.set(car, sector1_time_ms=s1, current_lap_invalid=int(invalid))
        self.push("raceplane.lap_data", track.sample())
        track.set(car, sector2_time_ms=s2)
        self.push("raceplane.lap_data", track.sample())
        lap = track.values["current_lap_num"][car]
        track.set(car, current_lap_num=lap + 1, last_lap_time_ms=s1 + s2 + s3)
        track.set(car, sector1_time_ms=0, sector2_time_ms=0, current_lap_invalid=0)
        self.push("raceplane.lap_data", track.sample())


def header(frame: int = 0) -> dict:
    """A JSON sample's header; `frame` orders it among the lap_data samples (the next one's)."""
    return {
        "session_uid": str(UID),
        "game_year": 25,
        "session_time_s": 0.0,
        "overall_frame_identifier": frame,
    }


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


# Standings with a custom league table, as a league would configure it.
LEAGUE_POINTS = ("--custom-points", "league=3,2,1", "--points-table", "league")


def json_rows(watcher: StreamWatcher) -> list[dict]:
    watcher.update()
    if not watcher.n_new:
        return []
    data, _ = watcher.last(watcher.n_new)
    watcher.n_new = 0
    return [json.loads(row[0]) for row in data]


def test_race_through_lsl_commands_and_restart(start_lap_timer, decoder, tmp_path):
    port, db = free_port(), tmp_path / "timer.sqlite3"
    timer = start_lap_timer(port, db, *LEAGUE_POINTS)
    client = ModuleClient("127.0.0.1", port, timeout=10).connect(retries=200, interval=0.05)
    laps_in = StreamWatcher("raceplane.laps", buffer_size_samples=100)
    laps_in.connect_to_stream(timeout=10)
    standings_in = StreamWatcher("raceplane.standings", buffer_size_samples=100)
    standings_in.connect_to_stream(timeout=10)
    wait_until(
        lambda: len(client.request("STATUS")["inputs"]["connected"]) == 5,
        timeout=20,
        interval=0.1,
        message="lap timer connected to the feeder's five streams",
    )

    track = Track(cars=2)
    names = [{"name": n, "team_name": "T"} for n in ("Ann", "Bob")]

    def timer_knows_the_drivers() -> bool:
        # As the game does (Session 2/s, Participants every 5 s): a sample pushed while an inlet
        # is still subscribing never reaches it, so repeat until the timer has them.
        decoder.push(
            "raceplane.session",
            {
                "header": header(track.frame_id + 1),
                "session_type": 15,
                "track_name": "Monza",
                "total_laps": 2,
            },
        )
        decoder.push(
            "raceplane.participants",
            {"header": header(track.frame_id + 1), "num_active_cars": 2, "participants": names},
        )
        decoder.push(
            "raceplane.car_status",
            [UID >> 32, UID & 0xFFFFFFFF, 0.0, track.frame_id + 1] + [17] * 22,
        )
        decoder.push("raceplane.lap_data", track.sample())
        try:
            rows = client.request("GET_STANDINGS")["rows"]
        except ModuleError:  # "no session yet": the session sample has not arrived either
            return False
        return {"Ann", "Bob"} <= {row["driver"] for row in rows}

    wait_until(timer_knows_the_drivers, timeout=20, interval=0.2, message="drivers known")
    decoder.lap(track, 0, 30_000, 30_000, 30_000)
    decoder.lap(track, 1, 30_000, 30_500, 30_000, invalid=True)
    decoder.lap(track, 0, 29_000, 29_000, 29_001)
    decoder.lap(track, 1, 29_000, 29_000, 29_000)

    laps: list[dict] = []
    wait_until(lambda: laps.extend(json_rows(laps_in)) or len(laps) >= 4, message="4 laps on LSL")
    assert [(lap["driver"], lap["lap"], lap["lap_time_ms"], lap["valid"]) for lap in laps] == [
        ("Ann", 1, 90_000, True),
        ("Bob", 1, 90_500, False),
        ("Ann", 2, 87_001, True),
        ("Bob", 2, 87_000, True),
    ]
    assert laps[2]["sector_ms"] == [29_000, 29_000, 29_001]
    assert {lap["tyre"] for lap in laps} == {"medium"}
    assert {lap["session_uid"] for lap in laps} == {str(UID)}
    published: list[dict] = []
    wait_until(
        lambda: (
            published.extend(json_rows(standings_in))
            or (published and published[-1]["rows"][1]["laps"] == 2)
        ),
        message="standings after lap 2 on LSL",
    )
    table = client.request("GET_STANDINGS")
    assert table["rows"] == published[-1]["rows"]
    assert [(r["driver"], r["gap_ms"], r["points"]) for r in table["rows"]] == [
        ("Ann", 0, 3),
        ("Bob", 499, 2),
    ]

    with pytest.raises(ModuleError, match="not understood"):
        client.request("ADD_LAP", {"driver": "Cy", "team": "X", "time": "1:2x.5"})
    with pytest.raises(ModuleError, match="driver"):
        client.request("ADD_LAP", {"team": "X", "time": "1:20.5"})
    typed = client.request("ADD_LAP", {"driver": "Cy", "team": "X", "time": "1:20.5"})
    assert typed["lap_time_ms"] == 80_500
    export = client.request("EXPORT", {"path": str(tmp_path / "out.csv")})
    assert (tmp_path / "out.csv").read_text().splitlines()[1].startswith("1,Cy,X,1,1:20.500")
    assert export["rows"] == 1
    client.request("CLOSE")
    assert timer.wait(timeout=20) == 0
    client.close()

    again = start_lap_timer(port, db, *LEAGUE_POINTS)
    client = ModuleClient("127.0.0.1", port, timeout=10).connect(retries=200, interval=0.05)
    assert client.request("GET_LAPS", {"session_uid": str(UID)}) == sorted(
        laps, key=lambda lap: (lap["car_index"], lap["lap"])
    )
    assert client.request("GET_LAPS", {"car": "Cy"}) == [typed]
    client.request("CLOSE")
    assert again.wait(timeout=20) == 0
    client.close()

"""Files both ways with FastF1, and replays that the lap timer follows over real LSL."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import warnings
from datetime import timedelta
from pathlib import Path

import pytest

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until
from modules.livetiming.replay import replay
from modules.livetiming.savefile import SaveWriter
from modules.livetiming.topics import parse_timestamp
from tests.livetiming_server import LiveTimingServer, serve, synthetic_race

REPO = Path(__file__).resolve().parent.parent
LOG = logging.getLogger("test_livetiming_replay")


def save(path: Path, race, feed=None, state=True) -> Path:
    writer = SaveWriter(path)
    if state:
        writer.write_state(race.state)
    for topic, data, stamp in race.feed if feed is None else feed:
        writer.write_feed(topic, data, stamp)
    writer.close()
    return path


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pandas, inside FastF1
def test_a_saved_file_loads_in_fastf1(tmp_path):
    fastf1 = pytest.importorskip("fastf1")
    from fastf1.livetiming.data import LiveTimingData

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fastf1.api warns that it is going private
        import fastf1.api as api
    fastf1.set_log_level("WARNING")
    race = synthetic_race()
    data = LiveTimingData(str(save(tmp_path / "race.txt", race)))
    start = parse_timestamp(race.feed[0][2])
    for topic in {topic for topic, _, _ in race.feed}:
        want = [
            (parse_timestamp(stamp) - start, value) for t, value, stamp in race.feed if t == topic
        ]
        got = [(entry[0], entry[1]) for entry in data.get(topic)]
        assert got == want, topic
    # FastF1 skips the state lines (no timestamp), as it does in files of its own client.
    assert data.errorcount == len(race.state)
    # And decodes the compressed topics into the cars' telemetry and positions.
    car = api.car_data("", livedata=data)
    assert {number: len(frame) for number, frame in car.items()} == {"1": 3, "44": 3, "16": 3}
    assert list(car["44"]["Speed"]) == [251, 251, 251]
    positions = api.position_data("", livedata=data)
    assert list(positions["16"]["X"]) == [1002, 1002, 1002]


def test_replay_paces_and_stops(tmp_path):
    race = synthetic_race()
    path = save(tmp_path / "race.txt", race)
    everything: list = []
    report = replay([path], everything.append, LOG, flat_out=True)
    assert report.messages == len(race.state) + len(race.feed) and report.refused == 0
    assert report.samples == len(everything)
    # Paced: the same samples in the same order, however fast.
    paced: list = []
    assert replay([path], paced.append, LOG, speed=10_000.0).samples == len(everything)
    assert [s.stream for s in paced] == [s.stream for s in everything]
    # A stop during the pause before the next message ends the replay there.
    stop = threading.Event()

    def publish(sample):
        paced.append(sample)
        stop.set()

    report = replay([path], publish, LOG, speed=1.0, stop=stop)
    assert report.stopped and report.messages < len(race.feed)
    with pytest.raises(ValueError, match="speed"):
        replay([path], paced.append, LOG, speed=0)


def test_replay_refuses_undecodable_messages_and_goes_on(tmp_path):
    race = synthetic_race()
    feed = list(race.feed)
    bad_stamp = feed[3][2]
    feed.insert(4, ("CarData.z", "this is not base64 deflate", bad_stamp))
    path = save(tmp_path / "race.txt", race, feed)
    samples: list = []
    report = replay([path], samples.append, LOG, flat_out=True)
    assert report.refused == 1 and "CarData.z" in report.first_refusal
    assert report.messages == len(race.state) + len(feed)


def test_a_replay_of_overlapping_files_shows_laps_and_standings_in_the_lap_timer(
    start_lap_timer, spawn, tmp_path
):
    race = synthetic_race()
    # Two recordings of one race that overlap by a fifth, given in the wrong order.
    cut = len(race.feed) * 3 // 5
    first = save(tmp_path / "part1.txt", race, race.feed[:cut])
    second = save(tmp_path / "part2.txt", race, race.feed[cut - len(race.feed) // 5 :])
    port = free_port()
    start_lap_timer(port, tmp_path / "laps.sqlite3")
    client = ModuleClient("127.0.0.1", port, timeout=10).connect(retries=200, interval=0.05)
    player = spawn(
        "modules.livetiming.cli",
        "--log-port",
        str(free_port()),
        "replay",
        str(second),
        str(first),
        "--flat-out",  # as fast as the lap timer takes it, ending once it has applied it all
        "--ack",
        f"127.0.0.1:{port}",
        "--wait-s",
        "30",
    )
    output, _ = player.communicate(timeout=90)
    assert player.returncode == 0, output
    assert "overlapping earlier files" in output.decode()

    def all_laps():
        laps = client.request("GET_LAPS")
        return laps if len(laps) == sum(len(v) for v in race.laps.values()) else None

    laps = wait_until(all_laps, timeout=30, message="every lap in the lap timer")
    got = {(lap["driver"], lap["lap"], lap["lap_time_ms"], tuple(lap["sector_ms"])) for lap in laps}
    want = {
        (race.names[number], lap, time, sectors)
        for number, entries in race.laps.items()
        for lap, time, sectors in entries
    }
    assert got == want  # each lap once: the overlap was not replayed twice
    table = client.request("GET_STANDINGS")
    assert table["track"] == "Sakhir" and table["session_type"] == "Race"
    assert [row["driver"] for row in table["rows"]] == [race.names[n] for n in race.final_order]
    assert [row["laps"] for row in table["rows"]] == [3, 3, 3]
    client.close()


def test_the_lap_timer_follows_a_live_session_while_it_is_saved(start_lap_timer, spawn, tmp_path):
    race = synthetic_race()
    port = free_port()
    start_lap_timer(port, tmp_path / "laps.sqlite3")
    client = ModuleClient("127.0.0.1", port, timeout=10).connect(retries=200, interval=0.05)
    with LiveTimingServer([serve(race.state, race.feed)]) as server:
        saver = spawn(
            "modules.livetiming.cli",
            "--log-port",
            str(free_port()),
            "save",
            str(tmp_path / "live.txt"),
            "--url",
            server.url,
            "--publish",
            "--wait-s",
            "30",
            "--timeout",
            "3",
        )
        output, _ = saver.communicate(timeout=90)
    assert saver.returncode == 0, output
    assert "ended: idle" in output.decode()
    table = wait_until(
        lambda: (t := client.request("GET_STANDINGS"))["rows"] and t, message="standings"
    )
    wait_until(
        lambda: [r["laps"] for r in client.request("GET_STANDINGS")["rows"]] == [3, 3, 3],
        timeout=30,
        message="every lap",
    )
    table = client.request("GET_STANDINGS")
    assert [row["driver"] for row in table["rows"]] == [race.names[n] for n in race.final_order]
    client.close()


def test_replay_command_errors(tmp_path):
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "modules.livetiming.cli", "--log-port", str(free_port()), *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )

    missing = run("replay", str(tmp_path / "nope.txt"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("not a line\n" * 3)
    result = run("replay", str(garbage), "--flat-out", "--no-ack", "--linger-s", "0")
    assert result.returncode == 1
    assert "0 of 3 lines replayed, 3 unreadable" in result.stdout
    assert f"{garbage} is not live timing data" in result.stderr
    config = tmp_path / "bad.toml"
    config.write_text("[replay]\nsped = 2\n")
    result = run("--config", str(config), "replay", str(garbage))
    assert result.returncode == 2 and "sped" in result.stderr


def test_state_time_is_the_first_message_time(tmp_path):
    race = synthetic_race()
    path = save(tmp_path / "race.txt", race)
    samples: list = []
    replay([path], samples.append, LOG, flat_out=True)
    first = parse_timestamp(race.feed[0][2])
    state_samples = [s for s in samples if s.stream == "raceplane.livetiming" and s.value["state"]]
    assert len(state_samples) == len(race.state)
    assert all(s.time == first for s in state_samples)
    assert samples[-1].time - first >= timedelta(minutes=4)

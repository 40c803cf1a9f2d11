"""The live timing module as the control room runs it: a DefaultServer commanded over TCP,
saving from the local SignalR test server and replaying into a real lap timer."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.testing import free_port, wait_until
from modules.control_room.launch import command_line
from modules.control_room.setup import ControlRoomSettings, parse_setup
from modules.livetiming.savefile import SaveWriter, merge_files
from modules.livetiming.saving import READ_STREAMS
from tests.livetiming_server import LiveTimingServer, serve, synthetic_race

REPO = Path(__file__).resolve().parent.parent


def save(path: Path, race) -> Path:
    writer = SaveWriter(path)
    writer.write_state(race.state)
    for topic, data, stamp in race.feed:
        writer.write_feed(topic, data, stamp)
    writer.close()
    return path


def connect(port: int) -> ModuleClient:
    return ModuleClient("127.0.0.1", port, timeout=15).connect(retries=300, interval=0.05)


def refused(client: ModuleClient, command: str, payload: dict) -> str:
    with pytest.raises(ModuleError) as caught:
        client.request(command, payload)
    return caught.value.error


def test_launched_from_a_setup_file_it_saves_the_feed_and_says_how_it_goes(tmp_path):
    race = synthetic_race()
    port = free_port()
    with LiveTimingServer([serve(race.state, race.feed)]) as server:
        setup = parse_setup(
            f"""
            [modules.live]
            kind = "livetiming"
            port = {port}
            kwargs = {{ url = "{server.url}", wait_s = 0.5, timeout = 0, backoff_s = 0.1 }}
            """
        )
        command = command_line(
            setup.modules["live"], ControlRoomSettings(log_port=free_port(), output_dir=tmp_path)
        )
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            client = connect(port)
            assert client.request("STATUS")["state"] == "idle"
            assert client.request("STATUS")["url"] == server.url
            path = tmp_path / "live.txt"
            assert client.request("SAVE", {"path": str(path)})["url"] == server.url
            assert "running" in refused(client, "SAVE", {"path": str(tmp_path / "b.txt")})
            assert "running" in refused(client, "REPLAY", {"paths": [str(path)]})

            def all_saved():
                status = client.request("STATUS")
                return status["save"]["messages"] == len(race.feed) and status

            status = wait_until(all_saved, timeout=30, message="the whole feed saved")
            assert status["state"] == "saving" and status["save"]["connected"]
            topics: dict[str, int] = {}
            for topic, _, _ in race.feed:
                topics[topic] = topics.get(topic, 0) + 1
            assert status["save"]["topics"] == topics
            assert status["save"]["file"] == str(path)
            assert status["save"]["lines"] == len(race.state) + len(race.feed)
            assert status["save"]["rollover"]["rollovers"] == 0
            assert 0 < status["save"]["rollover"]["next_in_s"] <= 115 * 60
            final = client.request("STOP")
            assert final["state"] == "idle" and final["ended"] == "stopped"
            feed = [m for m in merge_files([path]) if not m.is_state]
            assert [(m.topic, m.data) for m in feed] == [(t, d) for t, d, _ in race.feed]
            # The server says what is wrong with a command, and keeps going.
            assert "path" in refused(client, "SAVE", {})
            assert "no such directory" in refused(
                client, "SAVE", {"path": str(tmp_path / "no" / "x.txt")}
            ).replace("No such file or directory", "no such directory")
            assert "timeout" in refused(client, "SAVE", {"path": str(path), "timeout": -1})
            assert "no such file" in refused(client, "REPLAY", {"paths": [str(tmp_path / "x")]})
            assert "list" in refused(client, "REPLAY", {"paths": str(path)})
            both = {"paths": [str(path)], "speed": 2, "flat_out": True}
            assert "not both" in refused(client, "REPLAY", both)
            assert "speed" in refused(client, "REPLAY", {"paths": [str(path)], "speed": 0})
            assert client.request("UP") == 1
            # A replay as recorded (minutes): STATUS follows it, STOP ends it where it is.
            client.request("REPLAY", {"paths": [str(path)], "speed": 1})

            def under_way():
                replay = client.request("STATUS")["replay"]
                return replay["messages"] > len(race.state) and replay

            replay = wait_until(under_way, timeout=30, message="the replay under way")
            assert replay["total"] == len(race.state) + len(race.feed)
            assert 0 < replay["progress"] < 1 and replay["position"].startswith("2024-03-02T15")
            assert replay["files"][0]["kept"] == replay["total"] and replay["speed"] == 1
            final = client.request("STOP")
            assert final["state"] == "idle" and final["ended"] == "stopped"
            assert final["replay"]["stopped"] and final["published"]["raceplane.lap_data"] > 0
            # STOP also ends the wait for readers (none here) at once, not after wait_s.
            client.request("REPLAY", {"paths": [str(path)], "flat_out": True, "wait_s": 600})
            assert client.request("STATUS")["state"] == "replaying"
            final = client.request("STOP")
            assert final["state"] == "idle" and final["ended"] == "stopped"
            client.send("CLOSE")
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            process.stdout.close()


def replay_into_a_lap_timer(
    start_lap_timer, live: ModuleClient, race, path: Path, db: Path, how: dict
):
    """Every lap the lap timer takes from one replay (without row ids), and its standings."""
    port = free_port()
    timer = start_lap_timer(port, db)
    with connect(port) as client:
        if live.request("STATUS")["published"]:
            # The outlets are there from the first replay on, and a reader that has just left
            # may still count as their consumer (liblsl notices at the next push): the replay
            # would not wait for this lap timer. It starts once the lap timer reads them all.
            wait_until(
                lambda: set(READ_STREAMS) <= set(client.request("STATUS")["inputs"]["connected"]),
                timeout=30,
                message="the lap timer on the streams",
            )
        live.request("REPLAY", {"paths": [str(path)], **how})

        def finished():
            status = live.request("STATUS")
            return status["state"] == "idle" and status

        status = wait_until(finished, timeout=120, message="the replay ends")
        assert status["ended"] == "done" and status["replay"]["done"]
        assert status["replay"]["messages"] == status["replay"]["total"]
        assert status["replay"]["refused"] == 0 and status["replay"]["progress"] == 1.0
        count = sum(len(v) for v in race.laps.values())

        def all_laps():
            try:
                laps = client.request("GET_LAPS")
            except ModuleError:  # no session yet: the replay's data is still on its way
                return None
            return laps if len(laps) >= count else None

        laps = wait_until(all_laps, timeout=30, message="every lap in the lap timer")
        wait_until(
            lambda: [r["laps"] for r in client.request("GET_STANDINGS")["rows"]] == [3, 3, 3],
            timeout=30,
            message="the standings of every lap",
        )
        table = client.request("GET_STANDINGS")
        client.send("CLOSE")
    assert timer.wait(timeout=30) == 0
    return [{k: v for k, v in lap.items() if k != "id"} for lap in laps], table


def test_a_flat_out_replay_gives_the_lap_timer_what_a_paced_one_gives(
    spawn, start_lap_timer, tmp_path
):
    race = synthetic_race()
    path = save(tmp_path / "race.txt", race)
    port = free_port()
    spawn(
        "modules.livetiming",
        "--port",
        str(port),
        "--log-port",
        str(free_port()),
        "--wait-s",
        "30",
        stdout=open(tmp_path / "livetiming.log", "a"),  # noqa: SIM115 (the child holds it)
    )
    with connect(port) as live:
        flat, flat_table = replay_into_a_lap_timer(
            start_lap_timer, live, race, path, tmp_path / "flat.sqlite3", {"flat_out": True}
        )
        paced, paced_table = replay_into_a_lap_timer(
            start_lap_timer, live, race, path, tmp_path / "paced.sqlite3", {"speed": 100}
        )
        published = live.request("STATUS")["published"]
        live.send("CLOSE")
    assert flat == paced
    assert flat_table["rows"] == paced_table["rows"]
    # And both are the race as run: every lap once, under its driver's name and team.
    got = {(lap["driver"], lap["lap"], lap["lap_time_ms"], tuple(lap["sector_ms"])) for lap in flat}
    want = {
        (race.names[number], lap, time, sectors)
        for number, entries in race.laps.items()
        for lap, time, sectors in entries
    }
    assert got == want and len(flat) == len(want)
    assert {lap["team"] for lap in flat} == {"Red Bull Racing", "Mercedes", "Ferrari"}
    pitted = race.names[list(race.laps)[-1]]
    tyres = [lap["tyre"] for lap in flat if lap["driver"] == pitted]
    assert tyres[0] != tyres[-1]  # the pit stop's new tyre, in step with the laps
    assert [row["driver"] for row in flat_table["rows"]] == [
        race.names[n] for n in race.final_order
    ]
    assert published["raceplane.participants"] >= 2  # two replays through the same outlets

"""The SignalR client against a local server that subscribes, streams and throws faults."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dareplane_utils.testing import free_port, wait_until
from modules.livetiming.client import ClientOptions, LiveTimingClient
from modules.livetiming.savefile import SaveWriter, merge_files
from modules.livetiming.topics import TOPICS
from tests.livetiming_server import (
    RS,
    HubConnection,
    LiveTimingServer,
    hold,
    serve,
    synthetic_race,
)

LOG = logging.getLogger("test_livetiming_client")
REPO = Path(__file__).resolve().parent.parent


class Recorder:
    """A client saving into a file, run in a thread; what the save command does, in-process."""

    def __init__(self, url: str, path: Path, **options) -> None:
        self.writer = SaveWriter(path)
        self.states: list[dict] = []
        self.feed: list[tuple] = []
        options = {"backoff_s": 0.05, "backoff_max_s": 0.2, **options}
        self.client = LiveTimingClient(
            ClientOptions(url=url, **options),
            self._state,
            self._feed,
            LOG,
            on_rollover=self.writer.roll_over,
        )
        self.ended: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _state(self, result):
        self.states.append(result)
        self.writer.write_state(result)

    def _feed(self, topic, data, timestamp):
        self.feed.append((topic, data, timestamp))
        self.writer.write_feed(topic, data, timestamp)

    def _run(self):
        try:
            self.ended = self.client.run()
        finally:
            self.writer.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.client.stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def test_subscribe_and_stream_with_token(tmp_path):
    race = synthetic_race()
    with (
        LiveTimingServer([serve(race.state, race.feed)]) as server,
        Recorder(server.url, tmp_path / "s.txt", access_token="secret") as rec,
    ):
        wait_until(lambda: len(rec.feed) == len(race.feed), message="the whole feed")
        conn = server.connections[0]
        assert conn.request.headers["Authorization"] == "Bearer secret"
        assert server.negotiations[0].headers["authorization"] == "Bearer secret"
        assert "negotiateVersion=1" in server.negotiations[0].path
        assert "id=" in conn.request.path
    assert rec.states == [race.state]
    assert rec.feed == race.feed
    assert server.connections[0].subscriptions == [[list(TOPICS)]]
    assert rec.client.stats.bad_messages == 0 and server.errors == []
    # What was saved reads back as the session.
    messages = merge_files([tmp_path / "s.txt"])
    assert len(messages) == len(race.state) + len(race.feed)


def _subscribe_topics(conn: HubConnection) -> list[str]:
    message = conn.wait_subscribe()
    conn.send({"type": 3, "invocationId": message["invocationId"], "result": {}})
    return message["arguments"][0]


@pytest.mark.parametrize("fault", ["drop", "close"])
def test_server_disconnect_then_reconnect_and_resubscribe(tmp_path, fault):
    race = synthetic_race()
    half = len(race.feed) // 2
    first = serve(race.state, race.feed[:half], then=fault)
    second = serve(race.state, race.feed[half:])
    with (
        LiveTimingServer([first, second]) as server,
        Recorder(server.url, tmp_path / "s.txt") as rec,
    ):
        wait_until(lambda: len(rec.feed) == len(race.feed), message="the feed over 2 connections")
    assert len(server.connections) == 2
    assert rec.feed == race.feed and len(rec.states) == 2
    assert rec.client.stats.failures == 1
    reason = rec.client.stats.last_error
    assert ("server restarting" in reason) if fault == "close" else reason


def test_bad_frames_are_skipped_and_the_feed_goes_on(tmp_path):
    race = synthetic_race()
    feed = race.feed[:5]

    def scenario(conn: HubConnection) -> None:
        subscribe = conn.wait_subscribe()
        conn.send_text("{not json\x1e")
        conn.send_text('["a list"]\x1e')
        conn.send_text('{"type": 99}\x1e')
        conn.send({"type": 1, "target": "feed", "arguments": ["TimingData"]})  # too few
        conn.send_binary(b"\xff\xfe binary garbage")
        conn.send({"type": 1, "target": "somethingElse", "arguments": [1]})  # not ours: ignored
        conn.send({"type": 3, "invocationId": "other", "result": {"x": 1}})  # not our call
        conn.send({"type": 3, "invocationId": subscribe["invocationId"], "result": race.state})
        for topic, data, stamp in feed:
            conn.feed(topic, data, stamp)
        hold(conn)

    with (
        LiveTimingServer([scenario]) as server,
        Recorder(server.url, tmp_path / "s.txt") as rec,
    ):
        wait_until(lambda: len(rec.feed) == len(feed), message="the good messages")
    assert rec.feed == feed and rec.states == [race.state]
    assert rec.client.stats.bad_messages == 5
    assert len(server.connections) == 1  # bad messages do not cost the connection


def test_fragmented_messages_are_put_together_and_websocket_pings_answered(tmp_path):
    race = synthetic_race()

    def scenario(conn: HubConnection) -> None:
        subscribe = conn.wait_subscribe()
        conn.send_ws_ping()
        state = {"type": 3, "invocationId": subscribe["invocationId"], "result": race.state}
        conn.send_fragmented(json.dumps(state) + RS, parts=7)
        for topic, data, stamp in race.feed:
            message = {"type": 1, "target": "feed", "arguments": [topic, data, stamp]}
            conn.send_fragmented(json.dumps(message) + RS, parts=3)
        hold(conn)

    with (
        LiveTimingServer([scenario]) as server,
        Recorder(server.url, tmp_path / "s.txt") as rec,
    ):
        wait_until(lambda: len(rec.feed) == len(race.feed), message="the fragmented feed")
        wait_until(lambda: server.connections[0].pongs == 1, message="the pong")
    assert rec.feed == race.feed and rec.states == [race.state]
    assert rec.client.stats.bad_messages == 0 and len(server.connections) == 1


def test_raw_garbage_on_the_socket_costs_the_connection_only(tmp_path):
    race = synthetic_race()

    def garbage(conn: HubConnection) -> None:
        conn.wait_subscribe()
        conn.send_raw(b"\x00\x01 this is not a websocket frame \xff" * 10)
        hold(conn)

    with (
        LiveTimingServer([garbage, serve(race.state, race.feed)]) as server,
        Recorder(server.url, tmp_path / "s.txt") as rec,
    ):
        wait_until(lambda: len(rec.feed) == len(race.feed), message="the feed after garbage")
    assert len(server.connections) == 2


def test_negotiate_and_handshake_failures_are_retried_with_backoff(tmp_path):
    race = synthetic_race()
    with (
        LiveTimingServer(
            [serve(race.state, race.feed)], negotiate_failures=2, handshake_errors=1
        ) as server,
        Recorder(server.url, tmp_path / "s.txt") as rec,
    ):
        wait_until(lambda: len(rec.feed) == len(race.feed), message="the feed after failures")
    posts = [n for n in server.negotiations if n.method == "POST"]
    assert len(posts) == 4  # two refused, one for the refused handshake, one that worked
    assert rec.client.stats.failures == 3


def test_a_silent_server_is_left_and_the_client_connects_again(tmp_path):
    race = synthetic_race()

    def silent(conn: HubConnection) -> None:
        _subscribe_topics(conn)
        conn.closed.wait(30)  # no pings answered, nothing sent

    with (
        LiveTimingServer([silent, serve(race.state, race.feed)]) as server,
        Recorder(server.url, tmp_path / "s.txt", server_timeout_s=0.5, ping_interval_s=0.1) as rec,
    ):
        wait_until(lambda: len(rec.feed) == len(race.feed), message="the feed after silence")
    assert len(server.connections) == 2
    assert "silent" in rec.client.stats.last_error
    assert server.connections[0].pings > 0  # the client pinged while it waited


def test_roll_over_to_a_new_connection_and_file_then_replay_both(tmp_path):
    race = synthetic_race()
    third = len(race.feed) // 3
    parts = [race.feed[:third], race.feed[third : 2 * third], race.feed[2 * third :]]
    scenarios = [serve(race.state, part) for part in parts]
    path = tmp_path / "race.txt"
    gate = threading.Event()

    def slow(scenario):
        def run(conn):
            gate.wait(10)
            scenario(conn)

        return run

    with (
        LiveTimingServer([scenarios[0], slow(scenarios[1]), slow(scenarios[2])]) as server,
        Recorder(server.url, path, rollover_s=0.3) as rec,
    ):
        wait_until(lambda: len(rec.feed) >= len(parts[0]), message="the first part")
        gate.set()
        wait_until(lambda: len(rec.feed) == len(race.feed), message="all parts")
        wait_until(lambda: rec.client.stats.rollovers >= 2, message="two roll-overs")
    files = rec.writer.files
    assert files[:3] == [path, tmp_path / "race.1.txt", tmp_path / "race.2.txt"]
    assert rec.client.stats.failures == 0
    messages = merge_files(files)
    feed = [m for m in messages if not m.is_state]
    assert [m.topic for m in feed] == [topic for topic, _, _ in race.feed]


def test_save_command_writes_until_the_feed_goes_quiet(tmp_path):
    race = synthetic_race()
    path = tmp_path / "saved.txt"
    with LiveTimingServer([serve(race.state, race.feed)]) as server:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "modules.livetiming.cli",
                "--log-port",
                str(free_port()),
                "save",
                str(path),
                "--url",
                server.url,
                "--timeout",
                "1",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ended: idle" in result.stdout
    lines = path.read_text().splitlines()
    assert len(lines) == len(race.state) + len(race.feed)


def test_fastf1_client_saves_from_the_test_server_and_raceplane_replays_it(tmp_path):
    """FastF1's own `save` (its SignalR client) pointed at the test server writes the file."""
    pytest.importorskip("fastf1")
    race = synthetic_race()
    path = tmp_path / "fastf1.txt"
    script = (
        "import sys\n"
        "from fastf1.livetiming.client import SignalRClient as C\n"
        "C._connection_url = sys.argv[1].replace('http', 'ws')\n"
        "C._negotiate_url = sys.argv[1] + '/negotiate'\n"
        "C._access_token_factory = lambda self: (lambda: 'test-token')\n"
        "C(sys.argv[2], timeout=2).start()\n"
    )
    expected = len(race.state) + len(race.feed)

    def lines() -> int:
        return len(path.read_text().splitlines()) if path.exists() else 0

    with LiveTimingServer([serve(race.state, race.feed)]) as server:
        # FastF1's client does not always exit after its timeout; it is ended once done.
        fastf1 = subprocess.Popen(
            [sys.executable, "-c", script, server.url, str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: lines() >= expected, timeout=30, message="FastF1's file")
        finally:
            fastf1.kill()
            fastf1.wait(timeout=10)
    assert server.connections[0].request.headers["Authorization"] == "Bearer test-token"
    messages = merge_files([path])
    assert [(m.topic, m.data) for m in messages if not m.is_state] == [
        (topic, data) for topic, data, _ in race.feed
    ]


def test_save_command_fails_when_the_feed_cannot_be_reached(tmp_path):
    path = tmp_path / "saved.txt"
    nobody = f"http://127.0.0.1:{free_port()}/signalrcore"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "modules.livetiming.cli",
            "--log-port",
            str(free_port()),
            "save",
            str(path),
            "--url",
            nobody,
            "--timeout",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"saved nothing; could not reach the feed at {nobody}" in result.stderr

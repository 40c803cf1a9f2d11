"""The game simulator as a process: commands over TCP, packets over real UDP, captures replayed."""

from __future__ import annotations

import socket
import threading
from collections import defaultdict

import pytest

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.testing import free_port, wait_until
from modules.f1_udp.capture import CaptureWriter
from modules.f1_udp.packets import PacketId, parse_packet
from modules.game_sim.broadcast import Broadcaster
from modules.game_sim.race import RaceSim, SessionOptions


class UdpSink:
    """A real UDP socket that keeps everything it receives, in order, on a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.datagrams.append(self.sock.recv(65535))
            except TimeoutError:
                continue

    def wait_settled(self) -> None:
        """Wait until nothing more arrives for a moment (the sender is done)."""
        seen = [-1]

        def settled() -> bool:
            count, seen[0] = seen[0], len(self.datagrams)
            return count == seen[0]

        wait_until(settled, timeout=30, interval=0.3, message="the datagram stream to end")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def sink():
    udp = UdpSink()
    yield udp
    udp.close()


@pytest.fixture
def game_sim(spawn, sink):
    port = free_port()
    process = spawn(
        "modules.game_sim",
        "--port",
        str(port),
        "--target-port",
        str(sink.port),
        "--log-port",
        str(free_port()),
    )
    client = ModuleClient("127.0.0.1", port, timeout=10).connect(retries=200, interval=0.05)
    yield client, process
    client.close()


def test_a_22_car_3_lap_race_flat_out_over_udp_matches_truth(game_sim, sink):
    client, _ = game_sim
    client.request("START", {"laps": 3, "cars": 22, "flat_out": True, "seed": 5, "retirements": 1})
    status = wait_until(
        lambda: (s := client.request("STATUS"))["state"] == "finished" and s,
        timeout=90,
        message="race end",
    )
    assert status["packets_sent"] > 10_000 and status["leader"]
    sink.wait_settled()
    # Loopback UDP may drop under load, as any UDP would: check what arrived, which is nearly all.
    assert len(sink.datagrams) > status["packets_sent"] // 2
    truth = client.request("TRUTH")
    assert truth["finished"] and len(truth["cars"]) == 22
    packets = [parse_packet(d) for d in list(sink.datagrams)]
    assert {int(p["header"]["sessionUID"]) for p in packets} == {int(truth["session_uid"])}
    # Every lap time a LapData packet showed is the truth's lap time for that car and lap.
    truth_laps = {
        (c["car_index"], lap["lap"]): lap["lap_time_ms"] for c in truth["cars"] for lap in c["laps"]
    }
    shown = defaultdict(set)
    for packet in packets:
        if packet["header"]["packetId"] == PacketId.LAP_DATA:
            for i, row in enumerate(packet["lapData"][:22]):
                if row["lastLapTimeInMS"] and row["resultStatus"] == 2:
                    shown[(i, int(row["currentLapNum"]) - 1)].add(int(row["lastLapTimeInMS"]))
    assert shown
    for key, values in shown.items():
        assert values == {truth_laps[key]}, key
    (final,) = [p for p in packets if p["header"]["packetId"] == PacketId.FINAL_CLASSIFICATION]
    rows = final["classificationData"]
    assert sorted(range(22), key=lambda i: int(rows[i]["position"])) == truth["final_order"]


def test_bad_commands_get_clear_errors_and_the_server_carries_on(game_sim):
    client, _ = game_sim
    with pytest.raises(ModuleError, match="no session has been started"):
        client.request("TRUTH")
    with pytest.raises(ModuleError, match="laps must be int"):
        client.request("START", {"laps": "many"})
    with pytest.raises(ModuleError, match="unknown START option"):
        client.request("START", {"lapz": 3})
    with pytest.raises(ModuleError, match="cars must be 20 or 22"):
        client.request("START", {"cars": 21})
    with pytest.raises(ModuleError, match="no capture file"):
        client.request("REPLAY", {"path": "/nonexistent/capture.rpcap"})
    assert client.request("STATUS")["state"] == "idle"


def test_start_stop_and_one_session_at_a_time(game_sim, sink):
    client, process = game_sim
    client.request("START", {"laps": "2", "speed": "2"})  # macros send text
    wait_until(lambda: client.request("STATUS")["packets_sent"] > 0, message="first packets")
    with pytest.raises(ModuleError, match="already racing"):
        client.request("START", {})
    client.request("STOP")
    assert client.request("STATUS")["state"] == "stopped"
    sent = client.request("STATUS")["packets_sent"]
    assert client.request("TRUTH")["finished"] is False
    client.request("START", {"laps": 1, "flat_out": True, "session": "time_trial"})
    wait_until(
        lambda: client.request("STATUS")["state"] == "finished", timeout=60, message="time trial"
    )
    assert client.request("TRUTH")["session_type"] == "time_trial"
    assert client.request("STATUS")["packets_sent"] != sent
    client.send("CLOSE")
    assert process.wait(timeout=20) == 0


def test_stop_sends_the_frame_it_made_so_truth_is_what_went_out(game_sim, sink):
    client, _ = game_sim
    # Paced: the sender spends most of its time waiting for the next frame, already made.
    client.request("START", {"laps": 2, "cars": 20, "rate": 10, "speed": 2})
    wait_until(lambda: client.request("STATUS")["frame"] >= 5, message="a few frames")
    client.request("STOP")
    sink.wait_settled()
    frame = client.request("STATUS")["frame"]
    sent = [parse_packet(d)["header"] for d in list(sink.datagrams)]
    assert max(int(h["frameIdentifier"]) for h in sent) == frame


def test_restart_starts_a_new_session_on_the_same_stream(game_sim, sink):
    client, _ = game_sim
    with pytest.raises(ModuleError, match="no session is running"):
        client.request("RESTART", {})
    client.request("START", {"laps": 2, "cars": 20, "rate": 10, "speed": 20, "seed": 4})
    wait_until(lambda: client.request("STATUS")["frame"] >= 50, message="the first session")
    first = client.request("STATUS")["session_uid"]
    with pytest.raises(ModuleError, match="RESTART keeps"):
        client.request("RESTART", {"format": 2024})
    with pytest.raises(ModuleError, match="late_joiners must be"):
        client.request("RESTART", {"late_joiners": 15})
    second = client.request("RESTART", {"laps": "1", "late_joiners": 2})["session_uid"]
    wait_until(
        lambda: client.request("STATUS")["state"] == "finished", timeout=60, message="the restart"
    )
    sink.wait_settled()
    assert client.request("STATUS")["session_uid"] == second != first
    truth, abandoned = client.request("TRUTH"), client.request("TRUTH", {"session_uid": first})
    assert truth["finished"] and truth["total_laps"] == 1 and truth["session_uid"] == second
    assert not abandoned["finished"] and abandoned["total_laps"] == 2
    with pytest.raises(ModuleError, match="no session '1'"):
        client.request("TRUTH", {"session_uid": "1"})
    # On the wire: the first session's frames, then the second's from frame 0 and SSTA.
    headers = [parse_packet(d)["header"] for d in list(sink.datagrams)]
    uids = [str(int(h["sessionUID"])) for h in headers]
    switch = uids.index(second)
    assert set(uids[:switch]) == {first} and set(uids[switch:]) == {second}
    assert int(headers[switch]["frameIdentifier"]) == 0
    assert int(headers[switch - 1]["frameIdentifier"]) >= 50


def make_capture(path) -> list[bytes]:
    sim = RaceSim(SessionOptions(cars=20, laps=1, rate=10, seed=3))
    broadcaster = Broadcaster(sim, 2024)
    datagrams = []
    while len(datagrams) < 400:
        datagrams += broadcaster.step()
    with CaptureWriter(path) as writer:
        for i, datagram in enumerate(datagrams):
            writer.write(datagram, 1000.0 + i * 0.0005)  # 0.2 s of recording
    return datagrams


def test_replay_command_sends_the_capture_byte_for_byte(game_sim, sink, tmp_path):
    client, _ = game_sim
    path = tmp_path / "race.rpcap"
    sent = make_capture(path)
    client.request("REPLAY", {"path": str(path), "speed": 4})
    wait_until(lambda: len(sink.datagrams) >= len(sent), timeout=30, message="replayed datagrams")
    assert sink.datagrams == sent
    wait_until(lambda: client.request("STATUS")["state"] == "finished", message="replay end")
    status = client.request("STATUS")
    assert status["replay"]["path"] == str(path) and status["packets_sent"] == len(sent)


def test_replay_of_a_cut_short_capture_sends_what_is_complete(game_sim, sink, tmp_path):
    client, _ = game_sim
    path = tmp_path / "cut.rpcap"
    sent = make_capture(path)
    path.write_bytes(path.read_bytes()[:-5])
    client.request("REPLAY", {"path": str(path), "flat_out": True})
    wait_until(lambda: client.request("STATUS")["state"] == "finished", message="replay end")
    wait_until(lambda: len(sink.datagrams) >= len(sent) - 1, message="replayed datagrams")
    assert sink.datagrams == sent[:-1]
    assert "cut short" in client.request("STATUS")["replay"]["problems"][0]


def test_replay_command_line(spawn, sink, tmp_path):
    path = tmp_path / "race.rpcap"
    sent = make_capture(path)
    process = spawn(
        "modules.game_sim.replay",
        *(str(path), "--flat-out", "--no-ack", "--target-port", str(sink.port)),
    )
    assert process.wait(timeout=30) == 0
    wait_until(lambda: len(sink.datagrams) >= len(sent), message="replayed datagrams")
    assert sink.datagrams == sent
    not_a_capture = tmp_path / "notes.txt"
    not_a_capture.write_text("hello")
    process = spawn("modules.game_sim.replay", str(not_a_capture), "--target-port", str(sink.port))
    assert process.wait(timeout=30) == 2
    assert b"not a Raceplane UDP capture" in process.stdout.read()

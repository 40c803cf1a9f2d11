"""The decoder as a process: real UDP in, real LSL out, read back field by field.

Each test starts `python -m modules.telemetry_decoder` on free ports and reads its outlets
with LSL inlets, found by their source_id (`raceplane.<kind>@decoder:<udp port>`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator

import numpy as np
import pylsl
import pytest
from test_decoder_core import LAP_DATA_CONTRACT, randomise

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.testing import free_port, wait_until
from modules.f1_udp import FORMATS, PacketId, fill_header, new_packet, set_event
from modules.f1_udp.capture import read_capture
from modules.stream_catalogue import STREAMS
from modules.telemetry_decoder import service

f1_packets = pytest.importorskip("f1.packets")


class Decoder:
    def __init__(self, process, client: ModuleClient, udp_port: int, output) -> None:
        self.process = process
        self.output = output  # the process's stdout and stderr
        self.client = client
        self.udp_port = udp_port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, *payloads: bytes) -> None:
        for payload in payloads:
            self.sock.sendto(payload, ("127.0.0.1", self.udp_port))

    def inlet(self, stream: str) -> pylsl.StreamInlet:
        source_id = f"{stream}@decoder:{self.udp_port}"
        found = wait_until(
            lambda: pylsl.resolve_byprop("source_id", source_id, timeout=0.5),
            timeout=20,
            message=f"stream {source_id}",
        )
        inlet = pylsl.StreamInlet(found[0], max_buflen=60, recover=False)
        inlet.open_stream(timeout=10)
        return inlet

    def status(self) -> dict:
        return self.client.request("STATUS")


@pytest.fixture
def decoder(spawn, tmp_path) -> Iterator[Decoder]:
    udp_port, tcp_port = free_port(socket.SOCK_DGRAM), free_port()
    # Output to a file, not a pipe nobody reads (a full pipe would block the process), and
    # with faulthandler on, so a process that does not exit can say where it is stuck.
    output = tmp_path / "decoder.out"
    with open(output, "wb") as sink:
        process = spawn(
            "modules.telemetry_decoder",
            "--port", str(tcp_port),
            "--udp-port", str(udp_port),
            "--log-port", str(free_port()),
            env={"PYTHONFAULTHANDLER": "1"}, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    client = ModuleClient("127.0.0.1", tcp_port, timeout=10).connect(retries=200)
    running = Decoder(process, client, udp_port, output)
    yield running
    client.request("CLOSE")
    client.close()
    running.sock.close()
    try:
        assert process.wait(timeout=20) == 0
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
        process.wait(timeout=10)
        pytest.fail(f"no exit 20 s after CLOSE; its output:\n{output.read_text()[-20000:]}")


def pull(inlet: pylsl.StreamInlet, count: int) -> list:
    samples: list = []

    def more() -> bool:
        sample, _ = inlet.pull_sample(timeout=0.2)
        if sample is not None:
            samples.append(sample)
        return len(samples) >= count

    wait_until(more, timeout=20, interval=0, message=f"{count} samples")
    return samples


def labelled(stream: str, sample: list) -> dict[str, float]:
    return dict(zip((c.label for c in STREAMS[stream].channels), sample, strict=True))


def test_lap_data_of_every_format_arrives_field_by_field(decoder: Decoder) -> None:
    inlet = decoder.inlet("raceplane.lap_data")
    rng = np.random.default_rng(5)
    sent = []
    for frame, fmt in enumerate(FORMATS, start=1):
        p = new_packet(fmt, PacketId.LAP_DATA)
        fill_header(p, session_uid=2**40 + fmt, session_time=frame / 60, frame_identifier=frame)
        randomise(p, rng)
        sent.append(p)
        decoder.send(p.tobytes())
    for p, sample in zip(sent, pull(inlet, len(sent)), strict=True):
        row = labelled("raceplane.lap_data", sample)
        assert row["header.session_uid_hi"] == 2**8
        assert row["header.session_uid_lo"] == p["header"]["packetFormat"]
        assert row["header.packet_format"] == p["header"]["packetFormat"]
        for car in range(22):
            for name, (ea, *minutes) in LAP_DATA_CONTRACT.items():
                expected = float(p["lapData"][ea][car])
                if minutes:
                    expected += 60_000 * float(p["lapData"][minutes[0]][car])
                assert row[f"car{car:02d}.{name}"] == expected


def test_telemetry_matches_f1_packets_reading_of_the_same_bytes(decoder: Decoder) -> None:
    """Format 2025 car telemetry: our stream against the f1-packets package's decode."""
    inlet = decoder.inlet("raceplane.car_telemetry")
    p = new_packet(2025, PacketId.CAR_TELEMETRY)
    fill_header(p, session_uid=12345, session_time=2.0, frame_identifier=120)
    randomise(p, np.random.default_rng(8))
    decoder.send(p.tobytes())
    row = labelled("raceplane.car_telemetry", pull(inlet, 1)[0])
    theirs = f1_packets.resolve(p.tobytes())
    for car, data in enumerate(theirs.car_telemetry_data):
        prefix = f"car{car:02d}."
        assert row[prefix + "speed_kph"] == data.speed
        assert row[prefix + "throttle"] == pytest.approx(data.throttle, rel=1e-7)
        assert row[prefix + "gear"] == data.gear
        assert row[prefix + "engine_rpm"] == data.engine_rpm
        assert row[prefix + "drs"] == data.drs
        assert row[prefix + "engine_temperature_c"] == data.engine_temperature
        for i, wheel in enumerate(("rl", "rr", "fl", "fr")):
            assert row[f"{prefix}brakes_temperature_c_{wheel}"] == data.brakes_temperature[i]
            assert row[f"{prefix}tyres_pressure_psi_{wheel}"] == pytest.approx(
                data.tyres_pressure[i], rel=1e-7
            )
            assert row[f"{prefix}surface_type_{wheel}"] == data.surface_type[i]
    assert row["suggested_gear"] == theirs.suggested_gear
    assert row["mfd_panel_index"] == theirs.mfd_panel_index


def test_events_session_and_notices_are_json(decoder: Decoder) -> None:
    events = decoder.inlet("raceplane.events")
    notices = decoder.inlet("raceplane.decoder")
    for fmt, frame in ((2024, 10), (2026, 11)):
        e = new_packet(fmt, PacketId.EVENT)
        fill_header(e, session_uid=99, session_time=1.0, frame_identifier=frame)
        set_event(
            e, "COLL", vehicle1Idx=3, vehicle2Idx=8, **({"severity": 2} if fmt == 2026 else {})
        )
        decoder.send(e.tobytes())
    first, second = (json.loads(s[0]) for s in pull(events, 2))
    assert first["header"]["packet_format"] == 2024 and first["header"]["session_uid"] == "99"
    assert (first["code"], first["vehicle1_idx"], first["vehicle2_idx"]) == ("COLL", 3, 8)
    assert "severity" not in first and second["severity"] == 2
    kinds = [json.loads(s[0])["kind"] for s in pull(notices, 2)]
    assert kinds == ["new_source", "session_started"]
    # The log says so too, as the README promises.
    port = decoder.sock.getsockname()[1]
    wait_until(
        lambda: (
            f"new sender 127.0.0.1:{port}" in decoder.output.read_text()
            and "new session 99 from source 0 (format 2024)" in decoder.output.read_text()
        ),
        timeout=20,
        message="new sender and new session in the decoder's log",
    )


def test_garbage_flood_keeps_it_up_counting_and_decoding(decoder: Decoder) -> None:
    """A bounded flood of every kind of garbage beside valid frames. Whatever the machine's
    speed, every datagram sent is accounted for exactly: read and rejected with its reason,
    read and decoded, or dropped by the kernel (a full receive buffer) and counted as such."""
    inlet = decoder.inlet("raceplane.lap_data")
    valid = new_packet(2025, PacketId.LAP_DATA)
    size = len(valid.tobytes())
    wrong_size = valid.tobytes()[:-7]
    unknown_id = bytearray(valid.tobytes())
    unknown_id[6] = 99
    garbage = [
        os.urandom(200),
        b"",
        b"\x01",
        wrong_size,
        valid.tobytes() + b"extra",
        bytes(unknown_id),
        struct.pack("<H", 1999) + bytes(size - 2),
        os.urandom(9000),
    ]
    flood_rounds = 4000
    # Datagrams the kernel accepted from us: one counter per sending thread.
    flooded, sent_valid = [0], [0]

    def flood() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            target = ("127.0.0.1", decoder.udp_port)
            for _ in range(flood_rounds):
                for payload in garbage:
                    with contextlib.suppress(OSError):  # refused by our own kernel: not sent
                        sock.sendto(payload, target)
                        flooded[0] += 1

    def send_frame(frame: int) -> None:
        fill_header(valid, session_uid=5, session_time=frame / 60, frame_identifier=frame)
        valid["lapData"]["currentLapTimeInMS"][0] = frame * 1000
        decoder.send(valid.tobytes())
        sent_valid[0] += 1

    # Frames before the flood: the decoder learns the frame step (1) from them, so every
    # frame the flood makes the kernel drop shows as a gap. (A frame lost before a step is
    # known cannot be told from a slower send rate.)
    for frame in (1, 2, 3):
        send_frame(frame)
        wait_until(lambda f=frame: decoder.status()["packets"].get("raceplane.lap_data") == f)
    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    frame = 3
    while flooder.is_alive():  # valid frames interleaved with the flood, as long as it lasts
        frame += 1
        send_frame(frame)
        flooder.join(timeout=1 / 60)
    # Valid frames after the flood: each one carries the kernel's drop count up to then, and
    # a lost tail shows as a frame gap. One more goes each time STATUS does not yet account
    # for every datagram sent.
    last = [frame]

    def every_datagram_accounted_for() -> dict | None:
        status = decoder.status()
        sent = flooded[0] + sent_valid[0]
        if status["received"] + status["kernel_drops"] == sent and (
            status["packets"].get("raceplane.lap_data", 0) + status["drops_detected"] == last[0]
        ):
            return status
        last[0] += 1
        send_frame(last[0])
        return None

    status = wait_until(
        every_datagram_accounted_for,
        timeout=60,
        interval=0.1,
        message="every datagram read (decoded or rejected) or counted as dropped",
    )
    assert decoder.process.poll() is None
    rejects = status["rejects"]
    decoded = status["packets"]["raceplane.lap_data"]
    assert sum(rejects.values()) + decoded == status["received"]
    assert set(rejects) <= {"too_short", "wrong_size", "unknown_packet_id", "unknown_format"}
    if status["kernel_drops"] == 0:  # nothing lost: every kind of garbage was read
        assert set(rejects) == {"too_short", "wrong_size", "unknown_packet_id", "unknown_format"}
        assert sum(rejects.values()) == flooded[0]
    samples = pull(inlet, decoded)
    times = [labelled("raceplane.lap_data", s)["car00.current_lap_time_ms"] for s in samples]
    assert times == sorted(times) and times[-1] == last[0] * 1000
    assert all(t % 1000 == 0 for t in times)


def test_datagrams_the_kernel_drops_are_counted(decoder: Decoder) -> None:
    """A decoder that cannot read (SIGSTOP) while datagrams keep coming: its receive buffer
    overflows, and STATUS counts every datagram the kernel dropped, none goes unreported."""
    packet = new_packet(2025, PacketId.LAP_DATA)
    buffer_bytes = decoder.status()["socket_rcvbuf_bytes"]
    count = 4 * buffer_bytes // len(packet.tobytes()) + 100  # far more than the buffer holds
    os.kill(decoder.process.pid, signal.SIGSTOP)
    try:
        for frame in range(1, count + 1):
            fill_header(packet, session_uid=6, session_time=frame / 60, frame_identifier=frame)
            decoder.send(packet.tobytes())
    finally:
        os.kill(decoder.process.pid, signal.SIGCONT)
    # A datagram read after the overflow carries the drop count up to then; the first ones
    # may still meet a full buffer, so one more goes each time STATUS is not complete.
    sent = [count]

    def every_datagram_accounted_for() -> dict | None:
        status = decoder.status()
        if status["received"] + status["kernel_drops"] == sent[0]:
            return status
        sent[0] += 1
        fill_header(packet, session_uid=6, session_time=sent[0] / 60, frame_identifier=sent[0])
        decoder.send(packet.tobytes())
        return None

    status = wait_until(
        every_datagram_accounted_for,
        interval=0.1,
        message="every datagram received or counted as dropped by the kernel",
    )
    assert status["kernel_drops"] > 0
    assert status["packets"]["raceplane.lap_data"] == status["received"]


def test_capture_then_replay_gives_the_same_streams(decoder: Decoder, spawn, tmp_path) -> None:
    path = tmp_path / "race.rpcap"
    with pytest.raises(ModuleError, match="not capturing"):
        decoder.client.request("CAPTURE_STOP")
    decoder.client.request("CAPTURE_START", {"path": str(path)})
    inlet = decoder.inlet("raceplane.car_status")
    rng = np.random.default_rng(11)
    payloads = []
    for frame in range(1, 21):
        p = new_packet(2026, PacketId.CAR_STATUS)
        fill_header(p, session_uid=31, session_time=frame / 20, frame_identifier=frame)
        randomise(p, rng)
        payloads.append(p.tobytes())
    decoder.send(*payloads, b"junk")
    live = pull(inlet, len(payloads))
    wait_until(lambda: decoder.status()["capture"]["datagrams"] == len(payloads) + 1)
    stopped = decoder.client.request("CAPTURE_STOP")
    assert stopped == {"path": str(path), "datagrams": len(payloads) + 1}
    captured = list(read_capture(path))
    assert [d.payload for d in captured] == [*payloads, b"junk"]
    assert all(a.time_s <= b.time_s for a, b in itertools.pairwise(captured))

    # The game simulator's replay of that file into a second decoder.
    udp_port, tcp_port = free_port(socket.SOCK_DGRAM), free_port()
    spawn("modules.telemetry_decoder", "--port", str(tcp_port), "--udp-port", str(udp_port),
          "--log-port", str(free_port()))  # fmt: skip
    with ModuleClient("127.0.0.1", tcp_port, timeout=10).connect(retries=200) as client:
        second = Decoder(None, client, udp_port, None)
        replayed_inlet = second.inlet("raceplane.car_status")
        replayer = spawn("modules.game_sim.replay", str(path), "--flat-out", "--no-ack",
                         "--target-port", str(udp_port))  # fmt: skip
        assert replayer.wait(timeout=30) == 0
        replayed = pull(replayed_inlet, len(payloads))
        wait_until(lambda: second.status()["rejects"] == {"too_short": 1}, message="the junk")
        client.request("CLOSE")
    assert np.array_equal(np.array(replayed), np.array(live))


def test_bad_commands_get_clear_errors(decoder: Decoder, tmp_path) -> None:
    with pytest.raises(ModuleError, match="no directory"):
        decoder.client.request("CAPTURE_START", {"path": str(tmp_path / "nope" / "x.rpcap")})
    decoder.client.request("CAPTURE_START", {"path": str(tmp_path / "a.rpcap")})
    with pytest.raises(ModuleError, match="already capturing"):
        decoder.client.request("CAPTURE_START", {"path": str(tmp_path / "b.rpcap")})
    status = decoder.status()
    assert status["udp"]["port"] == decoder.udp_port
    assert status["capture"]["path"].endswith("a.rpcap")
    assert status["socket_rcvbuf_bytes"] > 0


def test_close_withdraws_every_stream_and_frees_the_port() -> None:
    """The service in this process: close() ends the receive thread, destroys every outlet
    (their streams stop answering) and releases the UDP port, with no datagram to wake it."""
    udp_port = free_port(socket.SOCK_DGRAM)
    running = service.Decoder(logging.getLogger("test.decoder"), udp_port=udp_port)
    running.start()
    source_ids = [f"{s.name}@{running.producer}" for s in service.decoder_streams()]
    wait_until(
        lambda: pylsl.resolve_byprop("source_id", source_ids[-1], timeout=0.5),
        timeout=20, message="the decoder's last stream",
    )  # fmt: skip
    running.close()
    assert not running._thread.is_alive()
    for source_id in (source_ids[0], source_ids[-1]):
        wait_until(
            lambda source_id=source_id: not pylsl.resolve_byprop(
                "source_id", source_id, timeout=0.5
            ),
            timeout=20, message=f"{source_id} gone",
        )  # fmt: skip
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", udp_port))
    running.close()  # a second close is harmless

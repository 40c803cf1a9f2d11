"""The log server as a real process: records from our logger and from dareplane-utils' own
handler (run from its PyPI release in a throwaway venv), bad input, viewers, rotation."""

from __future__ import annotations

import json
import logging
import random
import socket
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from dareplane_utils.logging.framing import FrameDecoder, encode_frame, encode_payload
from dareplane_utils.logging.logfile import RotatingLineWriter
from dareplane_utils.logging.sender import JsonSocketHandler
from dareplane_utils.logging.server import LogRecordSocketReceiver
from dareplane_utils.testing import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
PEER = "dareplane-utils-0.0.24"


def start_server(spawn, logfile: Path, *args: str) -> int:
    port = free_port()
    spawn("dareplane_utils.logging.server", "--port", str(port), "--logfile", str(logfile), *args)
    wait_until(lambda: can_connect(port), message="log server listening")
    return port


def can_connect(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def read_records(*paths: Path) -> list[dict]:
    """Whole records only: a line still being written, or a file being rotated, is skipped."""
    records = []
    for path in paths:
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        records += [json.loads(line) for line in text.split("\n")[:-1]]
    return records


def messages(path: Path, name: str | None = None) -> list[str]:
    """Messages in the file (none while a rotation has just moved it away)."""
    return [r["message"] for r in read_records(path) if name is None or r["name"] == name]


def closed_by_peer(sock: socket.socket, timeout: float = 10.0) -> bool:
    """True once the other side has closed (reads drain until EOF or reset)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


def test_records_from_our_logger_in_another_process(spawn, tmp_path):
    logfile = tmp_path / "log.jsonl"
    port = start_server(spawn, logfile)
    code = textwrap.dedent(
        """
        from dareplane_utils.logging.logger import get_logger
        log = get_logger("lap_timer")
        log.info("lap %s of %d", "three", 3, extra={"car": 7, "lap_ms": 81234})
        try:
            {}["missing"]
        except KeyError:
            log.exception("lookup failed")
        log.debug("not at INFO level")
        log.warning("speed %d kph", "fast")  # logging prints its error; the record still goes
        """
    )
    env = {"RACEPLANE_LOG_HOST": "127.0.0.1", "RACEPLANE_LOG_PORT": str(port)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "INFO    lap_timer: lap three of 3" in done.stderr  # the human copy on stderr
    wait_until(lambda: len(messages(logfile, "lap_timer")) == 3, message="three records")
    lap, failure, mismatch = [r for r in read_records(logfile) if r["name"] == "lap_timer"]
    assert lap["message"] == "lap three of 3"
    assert lap["car"] == 7 and lap["lap_ms"] == 81234
    assert lap["levelname"] == "INFO" and lap["host"] == socket.gethostname()
    assert lap["process"] == failure["process"] == int(lap["process"]) != 0
    assert lap["timestamp"].endswith("+00:00")
    assert failure["levelname"] == "ERROR"
    assert failure["exc_info"].startswith("Traceback (most recent call last):")
    assert failure["exc_info"].rstrip().endswith("KeyError: 'missing'")
    assert mismatch["message"] == "'speed %d kph' % ('fast',)"
    assert mismatch["format_error"].startswith("TypeError")


@pytest.mark.timeout(900)  # may first build the peer venv: see dareplane_python
def test_records_from_dareplane_utils_own_handler(spawn, tmp_path, dareplane_python):
    logfile = tmp_path / "log.jsonl"
    port = start_server(spawn, logfile)
    code = textwrap.dedent(
        f"""
        import logging
        from dareplane_utils.logging.logger import default_dareplane_config, get_logger
        default_dareplane_config["handlers"]["socket"]["port"] = {port}
        log = get_logger("dp_module", add_console_handler=True)
        log.setLevel(logging.DEBUG)
        log.info("lap %s of %d", "three", 3)
        log.info("%(driver)s on lap %(lap)d", {{"driver": "VER", "lap": 12}})
        log.warning("100% throttle")
        log.info("speed %d kph", "fast")
        log.info("gap %s to %s", "1.2s")
        log.info("with extra", extra={{"car": 7}})
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("crash in %s", "sector 2")
        log.info("after the crash")
        for handler in log.handlers:
            handler.close()
        """
    )
    done = subprocess.run([dareplane_python, "-c", code], capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stderr
    wait_until(lambda: len(messages(logfile, "dp_module")) == 8, message="8 dareplane records")
    records = [r for r in read_records(logfile) if r["name"] == "dp_module"]
    by_message = {r["message"]: r for r in records}
    assert list(by_message)[:3] == ["lap three of 3", "VER on lap 12", "100% throttle"]
    bad_number = records[3]
    assert "speed %d kph" in bad_number["message"] and "fast" in bad_number["message"]
    assert bad_number["format_error"].startswith("TypeError")
    assert "not enough arguments" in records[4]["format_error"]
    assert records[5]["car"] == 7
    crash = by_message["crash in sector 2"]
    assert crash["levelname"] == "ERROR"
    assert "ZeroDivisionError: division by zero" in crash["exc_info"]
    assert "after the crash" in by_message
    assert all(r["timestamp"].endswith("+00:00") and r["host"] for r in records)
    assert {"msg", "args", "created", "exc_text"}.isdisjoint(by_message["after the crash"])


def frame(message: str, **extra) -> bytes:
    record = {"timestamp": "2026-01-01T00:00:00+00:00", "name": "good", "levelname": "INFO"}
    return encode_frame({**record, "message": message, "host": "h", **extra})


def test_bad_input_harms_nobody_else(spawn, tmp_path):
    logfile = tmp_path / "log.jsonl"
    port = start_server(spawn, logfile, "--max-record-bytes", "65536")
    address = ("127.0.0.1", port)
    good = socket.create_connection(address)
    good.sendall(b"".join(frame(f"good {i}") for i in range(100)))
    idle = [socket.create_connection(address) for _ in range(50)]
    rng = random.Random(3)
    bad_inputs = {
        "random bytes": bytes(rng.randrange(256) for _ in range(4096)),
        "4 GB length": struct.pack(">L", 0xFFFFFFFF) + b"{}",
        "invalid UTF-8": encode_payload(b'{"message": "\xff\xfe"}'),
        "invalid JSON": encode_payload(b'{"message": '),
        "not an object": encode_payload(b"[1, 2, 3]"),
        "over the limit": encode_payload(b"{" + b" " * 70_000 + b"}"),
    }
    for name, data in bad_inputs.items():
        with socket.create_connection(address) as bad:
            bad.sendall(data)
            assert closed_by_peer(bad), name
        good.sendall(frame(f"after {name}"))
    with socket.create_connection(address) as half:
        half.sendall(frame("never finished")[:30])
    # a raw LogRecord whose args do not match its format string
    good.sendall(encode_frame({"name": "dp", "msg": "lap %d of %d", "args": ["x"]}))
    good.sendall(b"".join(frame(f"good {i}") for i in range(100, 200)))
    wanted = (
        [f"good {i}" for i in range(100)]
        + [f"after {name}" for name in bad_inputs]
        + [f"good {i}" for i in range(100, 200)]
    )
    wait_until(lambda: messages(logfile, "good") == wanted, message="every good record")
    (mismatch,) = [r for r in read_records(logfile) if r["name"] == "dp"]
    assert "lap %d of %d" in mismatch["message"] and mismatch["format_error"]
    warnings = " | ".join(messages(logfile, "log_server"))
    for reason in ("over the limit", "4294967295", "not UTF-8", "not JSON", "list, not an object"):
        assert reason in warnings
    assert "closed mid-frame" in warnings
    for sock in [good, *idle]:
        sock.close()


def test_followers_get_backlog_then_live_records(spawn, tmp_path):
    logfile = tmp_path / "log.jsonl"
    port = start_server(spawn, logfile)
    with socket.create_connection(("127.0.0.1", port)) as sender:
        sender.sendall(b"".join(frame(f"early {i}") for i in range(10)))
        wait_until(lambda: len(messages(logfile, "good")) == 10, message="early records")
        with socket.create_connection(("127.0.0.1", port)) as follower:
            follower.sendall(encode_frame({"raceplane": "follow", "backlog": 3}))
            reader = follower.makefile("r")
            assert [json.loads(reader.readline())["message"] for _ in range(3)] == [
                "early 7",
                "early 8",
                "early 9",
            ]
            sender.sendall(frame("live one"))
            assert json.loads(reader.readline())["message"] == "live one"


def test_senders_that_ask_get_acknowledgements(spawn, tmp_path):
    logfile = tmp_path / "log.jsonl"
    port = start_server(spawn, logfile)
    with socket.create_connection(("127.0.0.1", port)) as sender:
        sender.sendall(encode_frame({"raceplane": "sender", "ack": True}))
        sender.sendall(b"".join(frame(f"r{i}") for i in range(50)))
        decoder, acked = FrameDecoder(), 0
        sender.settimeout(10)
        while acked < 50:
            for event in decoder.feed(sender.recv(4096)):
                acked = event.obj["ack"]
        assert acked == 50
        # acknowledged means written: the file holds all of them now
        assert messages(logfile, "good") == [f"r{i}" for i in range(50)]


def test_log_file_rotates_by_size(spawn, tmp_path):
    logfile = tmp_path / "log.jsonl"
    port = start_server(spawn, logfile, "--max-bytes", "4000", "--backups", "2")
    with socket.create_connection(("127.0.0.1", port)) as sender:
        for i in range(60):
            sender.sendall(frame(f"record {i:03d}", padding="x" * 100))
        rotated = [logfile, logfile.with_name("log.jsonl.1"), logfile.with_name("log.jsonl.2")]
        wait_until(lambda: "record 059" in "".join(messages(logfile)), message="the last record")
    assert not logfile.with_name("log.jsonl.3").exists()
    for path in rotated:
        assert path.stat().st_size <= 4000
    kept = sorted(r["message"] for r in read_records(*rotated) if r["name"] == "good")
    assert kept == [f"record {i:03d}" for i in range(60 - len(kept), 60)]  # the newest, whole
    assert len(kept) > 20


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "dareplane_utils.logging.server", "--port", str(port),
             "--logfile", str(tmp_path / "x.jsonl")],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_writer_ends_a_half_line_left_by_a_killed_server(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"whole": 1}\n{"half')
    writer = RotatingLineWriter(path)
    writer.write(b'{"next": 2}\n')
    writer.close()
    assert path.read_bytes().split(b"\n") == [b'{"whole": 1}', b'{"half', b'{"next": 2}', b""]


def test_receiver_in_process_by_its_public_name(tmp_path):
    receiver = LogRecordSocketReceiver(port=0, logfile=tmp_path / "log.jsonl")
    serving = threading.Thread(target=receiver.serve_until_stopped)
    serving.start()
    handler = JsonSocketHandler(*receiver.server_address)
    logger = logging.getLogger("in_process")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("lap %d", 1)
        wait_until(lambda: messages(tmp_path / "log.jsonl", "in_process") == ["lap 1"])
    finally:
        logger.removeHandler(handler)
        handler.close()
        receiver.abort = 1
        serving.join(10)
    assert not serving.is_alive()
    assert receiver.records_written >= 1


def test_extras_of_any_type_arrive(tmp_path):
    """orjson formats records; values it refuses (integers over 64 bits) go through json."""
    receiver = LogRecordSocketReceiver(port=0, logfile=tmp_path / "log.jsonl")
    serving = threading.Thread(target=receiver.serve_until_stopped)
    serving.start()
    handler = JsonSocketHandler(*receiver.server_address)
    logger = logging.getLogger("extras")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("big", extra={"uid": 2**70, "ms": 81_234})
        logger.warning("odd", extra={"where": Path("/tmp/x"), "keys": {3: "three"}})
        logger.warning("plain é", extra={"lap": 3, "nan": float("nan")})
        wait_until(lambda: len(messages(tmp_path / "log.jsonl", "extras")) == 3)
    finally:
        logger.removeHandler(handler)
        handler.close()
        receiver.abort = 1
        serving.join(10)
    big, odd, plain = [r for r in read_records(tmp_path / "log.jsonl") if r["name"] == "extras"]
    assert (big["message"], big["uid"], big["ms"]) == ("big", 2**70, 81_234)
    assert (odd["where"], odd["keys"]) == ("/tmp/x", {"3": "three"})
    assert (plain["message"], plain["lap"], plain["nan"]) == ("plain é", 3, None)
    assert plain["levelname"] == "WARNING" and plain["timestamp"].endswith("+00:00")


def test_a_flood_from_one_process_loses_nothing_of_anyone(spawn, tmp_path):
    logfile = tmp_path / "log.jsonl"
    port = start_server(spawn, logfile)
    flood = socket.create_connection(("127.0.0.1", port))
    burst = b"".join(frame(f"flood {i}", seq=i) for i in range(30_000))
    flooding = threading.Thread(target=flood.sendall, args=(burst,))
    flooding.start()
    with socket.create_connection(("127.0.0.1", port)) as other:
        for i in range(20):
            other.sendall(encode_frame({"name": "other", "msg": "lap %d", "args": [i]}))
        flooding.join(60)
        wait_until(lambda: len(messages(logfile, "good")) == 30_000, timeout=60, message="flood")
        assert messages(logfile, "other") == [f"lap {i}" for i in range(20)]
    flood.close()

"""DefaultServer over real sockets: Dareplane wire compatibility, JSON mode, bad input, load.

Every bad-input test runs an UpProbe: another connection sending UP in a loop. The test
asserts that the probe keeps getting answers while the bad input is being dealt with (never
how fast) and that none of its answers was wrong.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import selectors
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from dareplane_utils.default_server.server import DefaultServer
from dareplane_utils.testing import free_port, wait_until

HOST = "127.0.0.1"


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == logging.WARNING]


class Conn:
    """A raw client socket with the reads the tests need."""

    def __init__(self, port: int, hello: bool = False) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.buffer = b""
        self.banner = self.line()
        if hello:
            self.sock.sendall(b'HELLO|{"protocol": 2};')
            assert self.json()["cmd"] == "HELLO"

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {self.buffer!r}")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {self.buffer!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def json(self) -> dict:
        return json.loads(self.line())

    def at_eof(self) -> bool:
        """True once the server has closed this connection (after any data it sent)."""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return True
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


class UpProbe:
    """Another connection asking UP over and over; counts answers, keeps any wrong one."""

    def __init__(self, port: int) -> None:
        self.conn = Conn(port)
        self.answers = 0
        self.wrong: list[object] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.conn.send(b"UP;")
                reply = self.conn.exactly(1)
            except OSError as error:
                self.wrong.append(error)
                return
            if reply != b"1":
                self.wrong.append(reply)
            self.answers += 1

    def __enter__(self) -> UpProbe:
        self._thread.start()
        wait_until(lambda: self.answers > 0, message="first UP answer")
        return self

    def keeps_answering(self, more: int = 20) -> bool:
        """Wait for `more` further answers; only a server that answers gets past this."""
        target = self.answers + more
        wait_until(lambda: self.answers >= target or self.wrong, message="UP answers")
        return not self.wrong

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.conn.close()
        assert not self.wrong, self.wrong


class Commands:
    """The test module's command map; BLOCK holds until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.blocked = threading.Event()
        self.finished: list[str] = []
        self.module_stop_calls = 0

    def map(self) -> dict:
        return {
            "ECHO": lambda **kwargs: kwargs,
            "BLOCK": self.block,
            "REFUSE": self.refuse,
            "CRASH": self.crash,
            "NAN": lambda: float("nan"),
            "WORK": self.work,
        }

    def block(self, tag: str = "") -> str:
        self.blocked.set()
        self.gate.wait(30)
        self.finished.append(tag)
        return tag

    @staticmethod
    def refuse(lap: int = 3) -> None:
        raise ValueError(f"lap {lap} is not valid")

    @staticmethod
    def crash() -> None:
        raise RuntimeError("boom")

    @staticmethod
    def work() -> tuple[threading.Thread, threading.Event]:
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait, name="tracked-work")
        thread.start()
        return thread, stop


@pytest.fixture
def commands() -> Iterator[Commands]:
    commands = Commands()
    yield commands
    commands.gate.set()


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, RecordingHandler]]:
    logger = logging.getLogger(f"test_default_server.{os.urandom(4).hex()}")
    logger.propagate = False
    handler = RecordingHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield logger, handler


def start_server(commands: Commands, logger: logging.Logger, **options) -> DefaultServer:
    server = DefaultServer(
        free_port(), pcommand_map=commands.map(), name="test_server", logger=logger, **options
    )
    server.serve_in_thread()
    return server


@pytest.fixture
def server(commands, log) -> Iterator[DefaultServer]:
    server = start_server(commands, log[0])
    yield server
    commands.gate.set()
    server.shutdown(timeout=30)
    assert not server._thread.is_alive()


# ------------------------------------------------------------------ Dareplane compatibility


def test_banner_names_the_server(server):
    conn = Conn(server.port)
    assert conn.banner == b"Connected to test_server"


def test_legacy_up_and_get_pcomms_reply_like_dareplane(server):
    conn = Conn(server.port)
    conn.send(b"UP;")
    assert conn.exactly(1) == b"1"
    conn.send(b"GET_PCOMMS;")
    expected = b"ECHO|BLOCK|REFUSE|CRASH|NAN|WORK|STOP|CLOSE|GET_PCOMMS|UP"
    assert conn.exactly(len(expected)) == expected
    conn.send(b"UP;")
    assert conn.exactly(1) == b"1"


def test_several_commands_in_one_packet_and_one_command_over_many(server):
    conn = Conn(server.port)
    conn.send(b"UP;UP;\r\n;  UP|  ;")
    assert conn.exactly(3) == b"111"
    for piece in (b"U", b"P", b"|", b"{}", b";"):
        conn.send(piece)
    assert conn.exactly(1) == b"1"


def test_legacy_commands_run_without_reply(server, commands):
    conn = Conn(server.port)
    conn.send(b'BLOCK|{"tag": "legacy"};UP;')
    wait_until(commands.blocked.is_set, message="BLOCK running")
    commands.gate.set()
    # UP waits behind BLOCK on this connection; its "1" is the only byte that comes back.
    assert conn.exactly(1) == b"1"
    assert commands.finished == ["legacy"]


LEGACY_BAD_INPUT = [
    (b"NOPE;", "unknown command 'NOPE'"),
    (b"echo;", "unknown command 'echo'; did you mean ECHO?"),
    (b"ECHO|{bad;", "invalid JSON payload for ECHO"),
    (b"ECHO|[1, 2];", "must be a JSON object of keyword arguments, not a JSON array"),
    (b'ECHO|{"a": 1}|{"b": 2};', "more than one '|'"),
    (b"\xff\xfeUP;", "not valid UTF-8 (byte 0xff at offset 0)"),
    (b"REFUSE;", "lap 3 is not valid"),
]


@pytest.mark.parametrize(("wire", "warning"), LEGACY_BAD_INPUT)
def test_legacy_bad_input_is_a_logged_warning_and_no_reply(server, log, wire, warning):
    conn = Conn(server.port)
    with UpProbe(server.port) as probe:
        conn.send(wire + b"UP;")
        assert conn.exactly(1) == b"1"  # nothing came back before UP's answer
        assert probe.keeps_answering()
    assert any(warning in text for text in log[1].warnings()), log[1].warnings()


# ------------------------------------------------------------------ JSON mode


def test_hello_describes_the_module(server):
    conn = Conn(server.port)
    conn.send(b'HELLO|{"protocol": 2};')
    assert conn.json() == {
        "ok": True,
        "cmd": "HELLO",
        "result": {
            "name": "test_server",
            "pcomms": [
                *["ECHO", "BLOCK", "REFUSE", "CRASH", "NAN", "WORK"],
                *["STOP", "CLOSE", "GET_PCOMMS", "UP", "HELLO", "STATUS"],
            ],
            "protocol": 2,
        },
    }


def test_hello_with_unknown_protocol_is_refused_in_json(server):
    conn = Conn(server.port)
    conn.send(b'HELLO|{"protocol": 7};UP;')
    assert conn.json() == {
        "ok": False,
        "cmd": "HELLO",
        "error": "unsupported protocol 7: this server speaks 2",
    }
    assert conn.exactly(1) == b"1"  # still legacy


def test_every_command_gets_one_reply_line(server):
    conn = Conn(server.port, hello=True)
    conn.send(b'UP;ECHO|{"lap": 4, "driver": "Hamilton"};GET_PCOMMS;STOP;')
    assert conn.json() == {"ok": True, "cmd": "UP", "result": 1}
    assert conn.json() == {"ok": True, "cmd": "ECHO", "result": {"lap": 4, "driver": "Hamilton"}}
    assert conn.json()["result"][-2:] == ["HELLO", "STATUS"]
    assert conn.json() == {"ok": True, "cmd": "STOP", "result": None}


def test_replies_come_in_command_order_while_other_connections_are_served(server, commands):
    conn = Conn(server.port, hello=True)
    with UpProbe(server.port) as probe:
        conn.send(b'BLOCK|{"tag": "first"};UP;ECHO|{"i": 1};')
        wait_until(commands.blocked.is_set, message="BLOCK running")
        assert probe.keeps_answering()
        commands.gate.set()
        assert [conn.json()["cmd"] for _ in range(3)] == ["BLOCK", "UP", "ECHO"]


def test_commands_on_different_connections_run_at_the_same_time(server, commands):
    blocked, other = Conn(server.port, hello=True), Conn(server.port, hello=True)
    blocked.send(b"BLOCK;")
    wait_until(commands.blocked.is_set, message="BLOCK running")
    other.send(b'ECHO|{"x": 1};')
    assert other.json() == {"ok": True, "cmd": "ECHO", "result": {"x": 1}}
    commands.gate.set()
    assert blocked.json()["cmd"] == "BLOCK"


JSON_BAD_INPUT = [
    (b"NOPE;", "NOPE", "unknown command 'NOPE'; known: ECHO, BLOCK"),
    (b"status;", "status", "unknown command 'status'; did you mean STATUS? known: "),
    (b"ECHOO;", "ECHOO", "unknown command 'ECHOO'; did you mean ECHO? known: "),
    (b'ECHO|{"a": ;', "ECHO", "invalid JSON payload for ECHO: "),
    (
        b"ECHO|[1, 2];",
        "ECHO",
        "payload of ECHO must be a JSON object of keyword arguments, not a JSON array",
    ),
    (b'ECHO|{"a": 1}|{"b": 2};', "ECHO", "found more than one '|' in ECHO"),
    (b"UP\xc3\x28;", None, "message is not valid UTF-8 (byte 0xc3 at offset 2)"),
    (b"REFUSE;", "REFUSE", "lap 3 is not valid"),
    (b'REFUSE|{"lap": 9};', "REFUSE", "lap 9 is not valid"),
    (b"CRASH;", "CRASH", "RuntimeError: boom"),
    (b'ECHO|{"a": 1} ;ECHO|{"b": NaN};', "ECHO", "cannot be sent as JSON"),
    (b"NAN;", "NAN", "the result of NAN cannot be sent as JSON"),
    (b'ECHO|{"x": 1}extra;', "ECHO", "invalid JSON payload for ECHO"),
    (b'CRASH|{"unexpected": 1};', "CRASH", "TypeError: "),
]


@pytest.mark.parametrize(("wire", "cmd", "error"), JSON_BAD_INPUT)
def test_json_bad_input_gets_a_clear_error_line(server, wire, cmd, error):
    conn = Conn(server.port, hello=True)
    with UpProbe(server.port) as probe:
        conn.send(wire + b"UP;")
        replies = []
        while not replies or replies[-1]["cmd"] != "UP":
            replies.append(conn.json())
        assert probe.keeps_answering()
    failed = [r for r in replies if not r["ok"]]
    assert len(failed) == 1, replies
    assert failed[0]["cmd"] == cmd
    assert error in failed[0]["error"]
    assert replies[-1] == {"ok": True, "cmd": "UP", "result": 1}


def test_ten_megabytes_without_semicolon(server):
    conn = Conn(server.port, hello=True)
    with UpProbe(server.port) as probe:
        sender = threading.Thread(target=conn.send, args=(b"A" * (10 * 1024 * 1024),))
        sender.start()
        assert probe.keeps_answering()
        sender.join(60)
        conn.send(b";UP;")
        assert conn.json() == {
            "ok": False,
            "cmd": None,
            "error": "message longer than 1048576 bytes: dropped up to its ';'",
        }
        assert conn.json() == {"ok": True, "cmd": "UP", "result": 1}
        assert probe.keeps_answering()


def test_garbage_flood_does_not_hurt_other_connections(server):
    conn = Conn(server.port, hello=True)
    garbage = bytes(range(256)) * 4096  # 1 MiB with ';' and '|' all over it
    with UpProbe(server.port) as probe:
        conn.send(garbage + b";UP;")
        while (reply := conn.json())["cmd"] != "UP" or not reply["ok"]:
            assert reply["ok"] is False and reply["error"]
        assert probe.keeps_answering()


def test_a_flood_of_commands_is_answered_in_full_while_others_are_served(server):
    conn = Conn(server.port, hello=True)
    count = 20000
    with UpProbe(server.port) as probe:
        sender = threading.Thread(target=conn.send, args=(b"UP;" * count,))
        sender.start()
        assert probe.keeps_answering()
        lines = [conn.line() for _ in range(count)]
        sender.join(30)
    assert set(lines) == {b'{"ok": true, "cmd": "UP", "result": 1}'}


def test_a_client_that_connects_and_never_sends_is_closed_with_an_error(commands, log):
    server = start_server(commands, log[0], idle_timeout_s=0.3)
    try:
        silent, silent_json = Conn(server.port), Conn(server.port, hello=True)
        with UpProbe(server.port) as probe:
            # The probe talks all the time, so it is never idle; the silent ones are.
            assert silent.at_eof()
            assert silent.buffer == b"closing connection idle for more than 0.3 s\n"
            assert silent_json.at_eof()
            assert json.loads(silent_json.buffer) == {
                "ok": False,
                "cmd": None,
                "error": "closing connection idle for more than 0.3 s",
            }
            assert probe.keeps_answering()
    finally:
        server.shutdown(timeout=30)


def test_a_client_that_stops_reading_its_replies_is_closed(commands, log):
    server = start_server(commands, log[0], idle_timeout_s=0.3)
    try:
        greedy = Conn(server.port, hello=True)
        greedy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with UpProbe(server.port) as probe:
            # Far more replies than the socket buffers hold, and none of them read.
            sender = threading.Thread(target=_send_quietly, args=(greedy, b"UP;" * 400_000))
            sender.start()
            wait_until(
                lambda: any("read no reply" in text for text in log[1].warnings()),
                message="the greedy client dropped",
            )
            assert probe.keeps_answering()
            sender.join(30)
    finally:
        server.shutdown(timeout=30)


def test_close_does_not_wait_for_a_client_that_stops_reading(commands, log):
    server = start_server(commands, log[0])
    greedy = Conn(server.port, hello=True)
    sender = threading.Thread(target=_send_quietly, args=(greedy, b"UP;" * 400_000))
    sender.start()
    # 16 MB of replies cannot fit in the socket buffers: once the unread bytes stop growing,
    # the connection's thread is stuck sending replies nobody reads.
    seen: list[int] = []

    def stuck() -> bool:
        seen.append(_unread_bytes(greedy.sock))
        return len(seen) > 5 and seen[-1] > 0 and seen[-1] == seen[-5]

    wait_until(stuck, interval=0.05, message="server stuck sending")
    closer = Conn(server.port, hello=True)
    closer.send(b"CLOSE;")
    assert closer.json() == {"ok": True, "cmd": "CLOSE", "result": None}
    server._thread.join(30)
    assert not server._thread.is_alive()
    greedy.close()
    sender.join(30)


def _unread_bytes(sock: socket.socket) -> int:
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def _send_quietly(conn: Conn, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the server may hang up before all of it is sent
        conn.send(data)


def test_a_client_that_vanishes_mid_command(server, commands):
    conn = Conn(server.port, hello=True)
    with UpProbe(server.port) as probe:
        conn.send(b'BLOCK|{"tag": "orphan"};')
        wait_until(commands.blocked.is_set, message="BLOCK running")
        conn.close()
        assert probe.keeps_answering()
        commands.gate.set()
        wait_until(lambda: commands.finished == ["orphan"], message="BLOCK finished")
        # Its reply has nowhere to go; the connection is dropped, the probe's stays.
        wait_until(lambda: server.status()["connections"] == 1, message="orphan dropped")
        assert probe.keeps_answering()


def test_two_hundred_clients_at_once(server, commands):
    blocker = Conn(server.port, hello=True)
    blocker.send(b"BLOCK;")  # one command stays in flight the whole time
    wait_until(commands.blocked.is_set, message="BLOCK running")
    with UpProbe(server.port) as probe:
        selector = selectors.DefaultSelector()
        clients = []
        for index in range(200):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex((HOST, server.port))
            clients.append(sock)
            selector.register(sock, selectors.EVENT_WRITE, index)
        received = {index: b"" for index in range(200)}
        request = {i: b'HELLO|{"protocol": 2};ECHO|{"client": %d};' % i for i in range(200)}
        deadline = time.monotonic() + 60
        while any(data.count(b"\n") < 3 for data in received.values()):
            assert time.monotonic() < deadline, "200 clients not all answered"
            for key, mask in selector.select(timeout=1):
                sock, index = key.fileobj, key.data
                if mask & selectors.EVENT_WRITE:
                    sock.send(request[index])
                    selector.modify(sock, selectors.EVENT_READ, index)
                else:
                    received[index] += sock.recv(65536)
        assert probe.keeps_answering()
        wait_until(lambda: server.status()["connections"] == 202, message="all counted")
    for index, data in received.items():
        banner, hello, echo = data.split(b"\n")[:3]
        assert banner == b"Connected to test_server"
        assert json.loads(hello)["ok"] is True
        assert json.loads(echo) == {"ok": True, "cmd": "ECHO", "result": {"client": index}}
    for sock in clients:
        sock.close()
    commands.gate.set()
    assert blocker.json()["cmd"] == "BLOCK"


def test_connection_limit_refuses_with_a_reason(commands, log):
    server = start_server(commands, log[0], max_connections=2)
    try:
        first, second = Conn(server.port), Conn(server.port)
        third = socket.create_connection((HOST, server.port), timeout=10)
        data = b""
        while chunk := third.recv(1024):
            data += chunk
        assert data == b"Refused by test_server: too many connections (2)\n"
        first.send(b"UP;")
        assert first.exactly(1) == b"1"
        second.close()
        wait_until(lambda: server.status()["connections"] == 1, message="second gone")
        fourth = Conn(server.port)
        assert fourth.banner == b"Connected to test_server"
    finally:
        server.shutdown(timeout=30)


def test_status_describes_the_server(server):
    conn = Conn(server.port, hello=True)
    conn.send(b"WORK;STATUS;")
    assert conn.json()["result"] == {"thread": "WORK#1"}
    status = conn.json()["result"]
    assert status["name"] == "test_server"
    assert status["connections"] == 1
    assert status["threads"] == ["WORK#1"]
    assert status["processes"] == {}
    assert "ECHO" in status["pcomms"]


def test_stop_ends_tracked_threads_and_calls_the_modules_stop(log):
    calls = []
    stop_events = []

    def work():
        stop = threading.Event()
        stop_events.append(stop)
        thread = threading.Thread(target=stop.wait, name="tracked-work")
        thread.start()
        return thread, stop

    server = DefaultServer(
        free_port(),
        pcommand_map={"WORK": work, "STOP": lambda: calls.append("module stop") or "stopped"},
        name="test_server",
        logger=log[0],
    )
    server.serve_in_thread()
    try:
        conn = Conn(server.port, hello=True)
        conn.send(b"WORK;WORK;")
        threads = [conn.json()["result"]["thread"] for _ in range(2)]
        assert set(server.threads) == set(threads)
        conn.send(b"STOP;")
        assert conn.json() == {"ok": True, "cmd": "STOP", "result": "stopped"}
        assert calls == ["module stop"]
        assert all(stop.is_set() for stop in stop_events)
        assert server.threads == {}
        assert not [t for t in threading.enumerate() if t.name == "tracked-work"]
    finally:
        server.shutdown(timeout=30)


def test_close_replies_then_ends_all_work(commands, log):
    before = set(threading.enumerate())
    server = start_server(commands, log[0])
    conn = Conn(server.port, hello=True)
    conn.send(b"WORK;WORK;")
    conn.json(), conn.json()
    conn.send(b"CLOSE;")
    assert conn.json() == {"ok": True, "cmd": "CLOSE", "result": None}
    server._thread.join(30)
    assert not server._thread.is_alive()
    assert conn.at_eof()
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(OSError):
        socket.create_connection((HOST, server.port), timeout=2)


def test_a_dareplane_stop_event_stops_the_server(commands, log):
    stop = threading.Event()
    server = DefaultServer(free_port(), pcommand_map=commands.map(), logger=log[0])
    server.init_server(stop_event=stop)
    thread = threading.Thread(target=server.start_listening)
    thread.start()
    conn = Conn(server.port)
    conn.send(b"UP;")
    assert conn.exactly(1) == b"1"
    stop.set()
    thread.join(30)
    assert not thread.is_alive()


def test_a_busy_port_is_a_clear_error(log):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = DefaultServer(port, name="clash", logger=log[0])
        with pytest.raises(OSError, match=f"clash: cannot listen on 127.0.0.1:{port}"):
            server.init_server()


# ------------------------------------------------------------------ a Dareplane-style process


@pytest.fixture
def style_module(spawn, tmp_path) -> Iterator[tuple[subprocess.Popen, int, Path]]:
    port = free_port()
    ticks = tmp_path / "ticks.txt"
    ticks.touch()
    process = spawn("tests.dareplane_style_module", "--port", str(port), "--ticks", str(ticks))
    wait_until(lambda: _connectable(port), timeout=30, message="module listening")
    yield process, port, ticks


def _connectable(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
    except OSError:
        return False
    return True


def _ids(ticks: Path, kind: str) -> list[int]:
    return [
        int(line.split()[1]) for line in ticks.read_text().splitlines() if line.startswith(kind)
    ]


def _start_work(port: int, ticks: Path) -> tuple[int, list[int]]:
    """Start a worker thread and a process tree in the module; (thread id, process ids)."""
    conn = Conn(port, hello=True)
    conn.send(b"NOOP;START_THREAD;START_PROCESS;")
    assert conn.json() == {"ok": True, "cmd": "NOOP", "result": 0}
    assert conn.json()["result"]["thread"].startswith("START_THREAD#")
    assert conn.json()["result"]["pid"] > 0
    conn.close()
    thread_ids = wait_until(lambda: _ids(ticks, "thread"), message="thread started")
    pids = wait_until(lambda: len(_ids(ticks, "process")) == 2 and _ids(ticks, "process"))
    return thread_ids[0], pids


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_stop_ends_a_modules_thread_and_process_tree(style_module):
    process, port, ticks = style_module
    thread_id, pids = _start_work(port, ticks)
    module = psutil.Process(process.pid)
    assert thread_id in {t.id for t in module.threads()}
    assert all(_alive(pid) for pid in pids)
    conn = Conn(port, hello=True)
    conn.send(b"STOP;")
    assert conn.json() == {"ok": True, "cmd": "STOP", "result": None}
    # STOP replies once the thread is joined and the tree reaped; the OS may take a moment
    # longer to drop the thread's entry.
    wait_until(lambda: thread_id not in {t.id for t in module.threads()}, message="thread gone")
    assert not any(_alive(pid) for pid in pids)
    assert module.children(recursive=True) == []
    conn.send(b"UP;")
    assert conn.json()["result"] == 1


def test_close_leaves_no_thread_or_child_process(style_module):
    process, port, ticks = style_module
    _, pids = _start_work(port, ticks)
    conn = Conn(port, hello=True)
    conn.send(b"CLOSE;")
    assert conn.json() == {"ok": True, "cmd": "CLOSE", "result": None}
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert b"threads left after close: []" in output, output
    assert not any(_alive(pid) for pid in pids)


def test_sigterm_closes_like_close(style_module):
    process, port, ticks = style_module
    _, pids = _start_work(port, ticks)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert b"threads left after close: []" in output, output
    assert not any(_alive(pid) for pid in pids)


def test_dareplane_style_module_speaks_legacy(style_module):
    _, port, _ = style_module
    conn = Conn(port)
    assert conn.banner == b"Connected to dareplane_style"
    conn.send(b"GET_PCOMMS;")
    expected = b"NOOP|START_THREAD|START_PROCESS|STOP|CLOSE|GET_PCOMMS|UP"
    assert conn.exactly(len(expected)) == expected

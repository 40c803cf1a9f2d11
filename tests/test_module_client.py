"""ModuleClient against a real DefaultServer (and a silent Dareplane-like peer) over sockets."""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from dareplane_utils import DefaultServer, ModuleClient
from dareplane_utils.client.module_client import ModuleError
from dareplane_utils.testing import free_port, wait_until

HOST = "127.0.0.1"


class Module:
    """A small module: what it was asked, and a gate that holds SLOW until the test opens it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.gate = threading.Event()

    def commands(self) -> dict:
        return {
            "ECHO": lambda **kwargs: kwargs,
            "RECORD": self.record,
            "SLOW": self.slow,
            "REFUSE": self.refuse,
        }

    def record(self, **kwargs) -> int:
        self.calls.append(("RECORD", kwargs))
        return 0

    def slow(self, tag: str = "") -> str:
        self.gate.wait(30)
        return tag

    @staticmethod
    def refuse(lap: int) -> None:
        raise ValueError(f"lap {lap} does not exist")


def quiet_logger() -> logging.Logger:
    logger = logging.getLogger("test_module_client.server")
    logger.propagate = False
    logger.setLevel(logging.CRITICAL)
    return logger


@pytest.fixture
def module() -> Iterator[Module]:
    module = Module()
    yield module
    module.gate.set()


@pytest.fixture
def server(module) -> Iterator[DefaultServer]:
    server = DefaultServer(
        free_port(), pcommand_map=module.commands(), name="lap_timer", logger=quiet_logger()
    )
    server.serve_in_thread()
    yield server
    module.gate.set()
    server.shutdown(timeout=30)


def test_request_returns_the_result(server):
    with ModuleClient(HOST, server.port).connect() as client:
        assert client.server_name == "lap_timer"
        assert client.pcomms[:4] == ["ECHO", "RECORD", "SLOW", "REFUSE"]
        assert client.request("UP") == 1
        payload = {"driver": "Norris", "laps": [81234, 80999], "path": "a;b|c"}
        assert client.request("ECHO", payload) == payload


def test_refusal_raises_module_error_with_the_servers_text(server):
    with ModuleClient(HOST, server.port).connect() as client:
        with pytest.raises(ModuleError) as refused:
            client.request("REFUSE", {"lap": 99})
        assert refused.value.cmd == "REFUSE"
        assert refused.value.error == "lap 99 does not exist"
        with pytest.raises(ModuleError, match="unknown command 'FLY'"):
            client.request("FLY")
        assert client.request("UP") == 1


def test_timeout_then_the_late_reply_is_not_taken_for_the_next(server, module):
    with ModuleClient(HOST, server.port).connect() as client:
        with pytest.raises(TimeoutError, match=r"lap_timer at 127\.0\.0\.1"):
            client.request("SLOW", {"tag": "late"}, timeout=0.2)
        module.gate.set()
        assert client.request("ECHO", {"n": 2}) == {"n": 2}


def test_timeout_behind_unread_replies_keeps_replies_matched(server, module):
    with ModuleClient(HOST, server.port).connect() as client:
        module.gate.clear()
        client.send("SLOW", {"tag": "sent"})
        with pytest.raises(TimeoutError):
            client.request("ECHO", {"n": 1}, timeout=0.2)
        module.gate.set()
        assert client.request("ECHO", {"n": 2}) == {"n": 2}
        assert client.request("SLOW", {"tag": "asked"}) == "asked"


def test_send_is_fire_and_forget(server, module):
    with ModuleClient(HOST, server.port).connect() as client:
        client.send("RECORD", {"lap": 1})
        client.send("RECORD", {"lap": 2})
        assert client.request("ECHO", {"after": True}) == {"after": True}
        assert module.calls == [("RECORD", {"lap": 1}), ("RECORD", {"lap": 2})]


def test_connect_retries_until_the_module_is_up(module):
    port = free_port()
    connected: list[ModuleClient] = []
    failures: list[BaseException] = []

    def connect() -> None:
        try:
            connected.append(ModuleClient(HOST, port).connect(retries=500, interval=0.02))
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=connect)
    thread.start()
    server = DefaultServer(port, pcommand_map=module.commands(), logger=quiet_logger())
    server.serve_in_thread()
    try:
        thread.join(30)
        assert not failures
        with connected[0] as client:
            assert client.request("UP") == 1
    finally:
        server.shutdown(timeout=30)


def test_connect_without_a_server_says_where_it_tried():
    port = free_port()
    client = ModuleClient(HOST, port)
    with pytest.raises(ConnectionError, match=f"127.0.0.1:{port} after 3 attempt"):
        client.connect(retries=2, interval=0.01)


def test_legacy_mode_drives_a_dareplane_style_server(server, module):
    with ModuleClient(HOST, server.port, legacy=True).connect() as client:
        assert client.request("UP") == 1
        assert client.request("GET_PCOMMS") == [
            *["ECHO", "RECORD", "SLOW", "REFUSE"],
            *["STOP", "CLOSE", "GET_PCOMMS", "UP"],
        ]
        # Returns once the server has handled it (legacy mode has no reply to wait for).
        assert client.request("RECORD", {"lap": 7}) is None
        assert module.calls == [("RECORD", {"lap": 7})]
        client.send("RECORD", {"lap": 8})
        assert client.request("UP") == 1
        assert module.calls[-1] == ("RECORD", {"lap": 8})


def test_json_client_against_a_module_that_does_not_know_hello():
    """A Dareplane module sends its banner and ignores HELLO: the client says what to do."""
    listener = socket.create_server((HOST, 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []

    def dareplane_like() -> None:
        conn, _ = listener.accept()
        accepted.append(conn)
        conn.sendall(b"Connected to old_module\n")

    thread = threading.Thread(target=dareplane_like)
    thread.start()
    try:
        with pytest.raises(ConnectionError, match=r"did not answer HELLO.*legacy=True"):
            ModuleClient(HOST, port, timeout=0.3).connect()
    finally:
        thread.join(10)
        for conn in accepted:
            conn.close()
        listener.close()


def test_refused_connection_reports_the_servers_reason(module):
    server = DefaultServer(
        free_port(), pcommand_map=module.commands(), logger=quiet_logger(), max_connections=1
    )
    server.serve_in_thread()
    try:
        with (
            ModuleClient(HOST, server.port).connect(),
            pytest.raises(ConnectionError, match="too many connections"),
        ):
            ModuleClient(HOST, server.port).connect()
    finally:
        server.shutdown(timeout=30)


def test_close_command_and_then_a_clear_error(server):
    client = ModuleClient(HOST, server.port).connect()
    assert client.request("CLOSE") is None
    wait_until(lambda: not server._thread.is_alive(), message="server closed")
    with pytest.raises(ConnectionError, match="closed the connection"):
        client.request("UP")
    client.close()
    with pytest.raises(ConnectionError, match="not connected"):
        client.request("UP")


def test_one_client_shared_by_threads_gets_each_its_own_reply(server):
    errors: list[object] = []
    with ModuleClient(HOST, server.port).connect() as client:

        def worker(index: int) -> None:
            for round_ in range(50):
                payload = {"worker": index, "round": round_}
                reply = client.request("ECHO", payload)
                if reply != payload:
                    errors.append((payload, reply))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []


DAREPLANE_MODULE = """
import sys
from dareplane_utils.default_server.server import DefaultServer

def record(**kwargs):
    print("RECORD", sorted(kwargs.items()), flush=True)
    return 0

server = DefaultServer(port=int(sys.argv[1]), ip="127.0.0.1", pcommand_map={"RECORD": record})
server.init_server()
print("ready", flush=True)
server.start_listening()
"""


@pytest.mark.timeout(900)  # may first build the peer venv: see dareplane_python
def test_legacy_mode_drives_the_real_dareplane_utils_server(tmp_path, dareplane_python):
    port = free_port()
    process = subprocess.Popen(
        [str(dareplane_python), "-c", DAREPLANE_MODULE, str(port)],
        cwd=tmp_path,  # away from the repo, whose dareplane_utils would shadow the peer's
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        with ModuleClient(HOST, port, legacy=True).connect(retries=100, interval=0.05) as client:
            assert client.server_name == "default_server"
            assert client.request("UP") == 1
            assert client.request("GET_PCOMMS") == ["RECORD", "STOP", "CLOSE", "GET_PCOMMS", "UP"]
            assert client.request("RECORD", {"path": "a;b|c", "lap": 3}) is None
            assert process.stdout.readline().strip() == "RECORD [('lap', 3), ('path', 'a;b|c')]"
            client.request("CLOSE")
        assert process.wait(30) == 0
    finally:
        process.kill()
        process.wait()

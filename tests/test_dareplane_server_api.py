"""Dareplane's server methods on our DefaultServer, and Dareplane's spelling of module options:
what dareplane-utils' own suite does not exercise."""

from __future__ import annotations

import socket
import threading

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.default_server.functions import noop, parse_msg
from dareplane_utils.default_server.server import DefaultServer
from dareplane_utils.module_cli import module_parser, parse_module_args
from dareplane_utils.testing import free_port, wait_until


def work() -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    return thread, stop


def test_handle_msg_replies_to_current_conn_and_runs_commands():
    seen = []
    server = DefaultServer(port=0, pcommand_map={"ECHO": lambda **kw: seen.append(kw)})
    ours, theirs = socket.socketpair()
    with ours, theirs:
        server.current_conn = ours
        server.handle_msg(b'UP;ECHO|{"a": 1}')
        assert theirs.recv(16) == b"1"
        assert seen == [{"a": 1}]
        assert server.default_msg_interpretation(b"GET_PCOMMS") is True
        assert theirs.recv(100) == b"ECHO|STOP|CLOSE|GET_PCOMMS|UP"
        assert server.default_msg_interpretation(b"ECHO") is False


def test_msg_interpretation_tracks_work_and_close_threads_stops_it():
    server = DefaultServer(port=0, pcommand_map={"WORK": work})
    reply = server.msg_interpretation(b"WORK")
    (key,) = server.threads
    assert reply == {"thread": key}
    thread, _ = server.threads[key]
    assert server.close_threads() == []
    assert not thread.is_alive() and server.threads == {}
    assert parse_msg(b"WORK|[1]", server.pcommand_map) == (noop, (), {})


def test_process_connection_serves_current_conn_on_the_calling_thread():
    server = DefaultServer(port=0)
    ours, theirs = socket.socketpair()
    server.current_conn = ours
    serving = threading.Thread(target=server.process_connection)
    serving.start()
    theirs.sendall(b"UP;")
    assert theirs.recv(16) == b"1"
    theirs.close()  # the client leaves: process_connection returns
    serving.join(10)
    assert not serving.is_alive()
    ours.close()


def test_current_conn_in_a_command_is_the_callers_connection():
    server = DefaultServer(port=free_port())
    server.pcommand_map["WHO"] = lambda: server.current_conn.getpeername()[1]
    server.serve_in_thread()
    try:
        clients = [ModuleClient("127.0.0.1", server.port).connect() for _ in range(3)]
        for client in clients:
            assert client.request("WHO") == client._sock.getsockname()[1]
        for client in clients:
            client.close()
        # closing what current_conn handed out does not end the connection it came from
        with ModuleClient("127.0.0.1", server.port).connect() as client:
            wait_until(lambda: server.current_conn is not None)
            server.current_conn.close()
            assert client.request("UP") == 1
    finally:
        server.shutdown(10)


def test_dareplane_launcher_options_are_understood():
    parser = module_parser("example", 1)
    parser.add_argument("--udp-port", type=int, default=1)
    parser.add_argument("--flat-out", action="store_true")
    args = parse_module_args(
        parser, ["--ip=0.0.0.0", "--port=5", "--udp_port=7", "--flat_out=True"]
    )
    assert (args.host, args.port, args.udp_port, args.flat_out) == ("0.0.0.0", 5, 7, True)
    assert parse_module_args(parser, ["--flat_out=False"]).flat_out is False

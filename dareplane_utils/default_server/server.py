"""DefaultServer: the TCP command server every module runs, around the sans-IO protocol.

One thread accepts; every connection gets a thread of its own that reads, parses and runs
its commands one after the other, so each command gets its reply in order, and a slow
command holds up only its own connection: UP on any other connection still answers. This is
Dareplane's one-client loop, once per client. Callables called from different connections may
therefore run at the same time.

Work a command leaves running, a `(Thread, Event)` pair or a `subprocess.Popen`, is tracked:
STOP sets the event / terminates the process tree, CLOSE does the same and waits for all of it.

Dareplane's server API is here too (docs/DESIGN.md, "Dareplane compatibility"): `current_conn`,
the `on_connection_accepted/closed` hooks, `handle_msg`, `default_msg_interpretation`,
`msg_interpretation`, `process_connection`, `close_threads`, `close_processes`, and
`DefaultCallbackServer`, whose `callback_stack` payloads go out to the connected clients.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import json
import logging
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dareplane_utils.default_server.functions import stop_process
from dareplane_utils.default_server.protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    BadMessage,
    Command,
    CommandConnection,
    encode_command,
    json_error,
    parse_message,
)
from dareplane_utils.logging.logger import get_logger

# Dareplane's built-ins, in the order its GET_PCOMMS lists them after the module's commands.
DAREPLANE_BUILTINS = ("STOP", "CLOSE", "GET_PCOMMS", "UP")
BUILTINS = (*DAREPLANE_BUILTINS, "HELLO", "STATUS")
BUILT_IN_PCOMMS = list(DAREPLANE_BUILTINS)  # Dareplane's name

_RECV_BYTES = 65536
# How often the accept loop looks at a stop event set by someone else (Dareplane API).
_POLL_S = 0.25
# How long CLOSE lets connections deliver their last replies before cutting them off.
_CLOSE_GRACE_S = 2.0
_connection_thread = threading.local()


class UnknownMsgInterpretation(Exception):
    """Dareplane's exception for a command result it cannot track (Raceplane replies with any
    JSON-serialisable result, so it never raises this)."""


@dataclass(eq=False)
class _Client:
    sock: socket.socket | None  # None: handle_msg() with no connection to reply to
    peer: str
    protocol: CommandConnection
    # Replies of one received batch, sent together unless a command has to run first.
    out: bytearray = field(default_factory=bytearray)
    # What `current_conn` hands out: a dup of sock, so code that closes it (Dareplane's tests
    # and modules do) cannot pull the descriptor from under this connection's thread.
    shared: socket.socket | None = None


class DefaultServer:
    """Dareplane-compatible command server for many concurrent clients.

    `pcommand_map` maps command names to callables; a command's JSON object becomes keyword
    arguments. Call `init_server()` then `start_listening()` (blocks until CLOSE, SIGTERM or
    `shutdown()`), or `serve_in_thread()` to run it in the background.
    """

    # Dareplane's server is a dataclass: code reads these defaults off the class.
    port: int = 8080
    ip: str = "127.0.0.1"  # Dareplane's is 0.0.0.0; ours binds loopback unless told
    nlisten: int = 512
    name: str = "default_server"
    accept_timeout_s: float = _POLL_S
    delimiter: bytes = b";"
    thread_stopper: Callable[..., Any] | None = None
    proc_stopper: Callable[..., Any] | None = None
    msg_interpreter: Callable[..., Any] | None = None
    server_socket: socket.socket | None = None
    is_listening: bool = False
    logger: logging.Logger = logging.getLogger("default_server")

    def __init__(
        self,
        port: int = 8080,
        ip: str = "127.0.0.1",
        pcommand_map: Mapping[str, Callable[..., Any]] | None = None,
        name: str = "default_server",
        logger: logging.Logger | None = None,
        *,
        max_connections: int = 512,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        idle_timeout_s: float | None = 3600.0,
        stop_timeout_s: float = 10.0,
        nlisten: int = 512,
        accept_timeout_s: float = _POLL_S,
        delimiter: bytes = b";",
        thread_stopper: Callable[..., Any] | None = None,
        proc_stopper: Callable[..., Any] | None = None,
        msg_interpreter: Callable[..., Any] | None = None,
        current_conn: socket.socket | None = None,
        server_socket: socket.socket | None = None,
        threads: dict[str, tuple[threading.Thread, threading.Event]] | None = None,
        processes: dict[str, subprocess.Popen] | None = None,
        is_listening: bool = False,
    ) -> None:
        """Dareplane's keywords: `accept_timeout_s` (how often a stop event set by someone else
        is seen), `delimiter` (only b";", the protocol's), `thread_stopper(thread, logger=)` and
        `proc_stopper(process, logger=)` (replace the join / process-tree ending of STOP and
        CLOSE), `msg_interpreter(msg_bytes, pcommand_map, logger=)` (replaces calling the
        command's callable; it gets `NAME|{json}` bytes); `current_conn`, `server_socket`,
        `threads`, `processes`, `is_listening` (initial values of those attributes)."""
        if delimiter != b";":
            raise ValueError(f"the command protocol ends commands with b';', not {delimiter!r}")
        self.port = port
        self.ip = ip
        self.pcommand_map: dict[str, Callable[..., Any]] = dict(pcommand_map or {})
        self.name = name
        self.logger = logger or get_logger(name)
        self.max_connections = max_connections
        self.max_message_bytes = max_message_bytes
        self.idle_timeout_s = idle_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.nlisten = nlisten
        self.accept_timeout_s = accept_timeout_s
        self.delimiter = delimiter
        self.thread_stopper = thread_stopper
        self.proc_stopper = proc_stopper
        self.msg_interpreter = msg_interpreter
        self._latest: _Client | None = None
        self._assigned_conn: socket.socket | None = current_conn
        # Dareplane's names for the work commands left running; modules may look at them.
        self.threads: dict[str, tuple[threading.Thread, threading.Event]] = dict(threads or {})
        self.processes: dict[str, subprocess.Popen] = dict(processes or {})
        self.server_socket = server_socket
        self.listen_stop_event = threading.Event()
        self.is_listening = is_listening
        self._work_lock = threading.Lock()
        self._work_ids = itertools.count(1)
        self._clients: dict[_Client, threading.Thread] = {}
        self._clients_lock = threading.Lock()
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._commands_run = 0

    # ----------------------------------------------------------------- public API

    def init_server(self, stop_event: threading.Event | None = None) -> None:
        """Bind and listen. `stop_event`, if given, stops the server when set (Dareplane)."""
        if stop_event is not None:
            self.listen_stop_event = stop_event
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.ip, self.port))
        except OSError as error:
            sock.close()
            why = f"{self.name}: cannot listen on {self.ip}:{self.port}: {error.strerror}"
            raise OSError(error.errno, why) from error
        sock.listen(self.nlisten)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self.server_socket = sock
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self.logger.info(f"{self.name} listening on {self.ip}:{self.port}")

    def start_listening(self) -> None:
        """Serve until CLOSE, SIGTERM, `shutdown()` or the stop event; then stop all work."""
        if self.server_socket is None:
            self.init_server()
        restore = self._install_sigterm()
        self.is_listening = True
        try:
            self._accept_loop()
        except KeyboardInterrupt:
            self.logger.info("interrupted, closing")
        finally:
            self.is_listening = False
            self._close_everything()
            if restore is not None:
                signal.signal(signal.SIGTERM, restore)

    def serve_in_thread(self) -> threading.Thread:
        """Run `start_listening` in a background thread (tests, embedding); stop with shutdown()."""
        if self.server_socket is None:
            self.init_server()
        self._thread = threading.Thread(
            target=self.start_listening, name=f"{self.name}-server", daemon=True
        )
        self._thread.start()
        return self._thread

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop serving as CLOSE does; waits for it unless called from a command callable."""
        self.listen_stop_event.set()
        self._wake()
        thread = self._thread
        if (
            thread is not None
            and thread is not threading.current_thread()
            and not getattr(_connection_thread, "active", False)
        ):
            thread.join(timeout)

    def stop_work(self, wait: bool = False) -> list[str]:
        """End every tracked thread and process; returns what did not stop in time.

        Threads get their event set and are joined; process trees get SIGTERM, then SIGKILL.
        With `wait`, keep waiting for threads that ignore their event (CLOSE may not leave one).
        """
        with self._work_lock:
            events = [event for _, event in self.threads.values()]
        for event in events:  # every thread starts stopping while the processes are ended
            event.set()
        self.close_processes()
        return self.close_threads(wait)

    def close_threads(self, wait: bool = False) -> list[str]:
        """Set every tracked thread's stop event and join it (Dareplane's name).

        Returns the keys of threads still running after `stop_timeout_s` (they stay tracked);
        with `wait`, keeps waiting for them instead.
        """
        with self._work_lock:
            threads, self.threads = self.threads, {}
        for _, event in threads.values():
            event.set()
        leftover: list[str] = []
        for key, (thread, event) in threads.items():
            if self.thread_stopper is not None:
                self.thread_stopper(thread, logger=self.logger)
                stopped = not thread.is_alive()
            else:
                stopped = _join(thread, self.stop_timeout_s, wait, self.logger, key)
            if not stopped:
                leftover.append(key)
                with self._work_lock:
                    self.threads[key] = (thread, event)
        return leftover

    def close_processes(self) -> None:
        """End every tracked process and its descendants (Dareplane's name)."""
        with self._work_lock:
            processes, self.processes = self.processes, {}
        for key, process in processes.items():
            if self.proc_stopper is not None:
                self.proc_stopper(process, logger=self.logger)
            else:
                stop_process(process, self.logger, self.stop_timeout_s)
            self.logger.info(f"stopped process {key} (pid {process.pid})")

    def status(self) -> dict[str, Any]:
        """The default STATUS result."""
        self._prune_work()
        with self._work_lock:
            threads = sorted(self.threads)
            processes = {key: process.pid for key, process in self.processes.items()}
        return {
            "name": self.name,
            "uptime_s": round(time.monotonic() - self._started, 3),
            "connections": len(self._clients),
            "commands_run": self._commands_run,
            "threads": threads,
            "processes": processes,
            "pcomms": self._pcomms(json_mode=True),
        }

    # ----------------------------------------------------------------- Dareplane's API

    @property
    def current_conn(self) -> socket.socket | None:
        """The connection being served: in a command or hook, the caller's own; elsewhere the
        latest accepted (Dareplane serves one connection at a time). Closing it does not end
        the connection (it is a duplicate of the server's socket), sending on it does reach
        the client."""
        if self._assigned_conn is not None:
            return self._assigned_conn
        client = getattr(_connection_thread, "client", None) or self._latest
        if client is None or client.sock is None:
            return None
        with self._clients_lock:  # the connection's thread closes both under it
            if client.shared is None and client.sock.fileno() != -1:
                client.shared = client.sock.dup()
            return client.shared

    @current_conn.setter
    def current_conn(self, sock: socket.socket | None) -> None:
        self._assigned_conn = sock

    def on_connection_accepted(self) -> None:
        """Hook: a connection was accepted; called on its thread before the greeting."""

    def on_connection_closed(self) -> None:
        """Hook: a connection ended; called on its thread."""

    def handle_msg(self, msg: bytes) -> None:
        """Handle one or more commands (`;`-separated bytes) as if `current_conn` sent them;
        replies go to `current_conn` when there is one."""
        sock = self.current_conn
        client = _Client(sock, "handle_msg", CommandConnection(self.max_message_bytes))
        for message in client.protocol.feed(msg if msg.endswith(b";") else msg + b";"):
            self._handle(client, message)
        self._flush(client)

    def default_msg_interpretation(self, msg: bytes) -> bool:
        """Handle `msg` if it is one of Dareplane's built-ins (STOP, CLOSE, GET_PCOMMS, UP);
        returns whether it was."""
        message = parse_message(msg)
        if not isinstance(message, Command) or message.name not in DAREPLANE_BUILTINS:
            return False
        self.handle_msg(msg)
        return True

    def msg_interpretation(self, msg: bytes) -> Any:
        """Run the module command in `msg` (`NAME` or `NAME|{json}`) and track the work it
        leaves running; returns what the reply says about it."""
        message = parse_message(msg)
        if not isinstance(message, Command):
            raise ValueError(f"not a command: {msg!r}")
        protocol = CommandConnection(self.max_message_bytes)
        protocol.json_mode = True
        reply = json.loads(self._execute(protocol, message))
        if not reply["ok"]:
            raise ValueError(reply["error"])
        return reply["result"]

    def process_connection(self) -> None:
        """Serve `current_conn` on the calling thread until it ends or the server stops."""
        sock = self.current_conn
        if sock is None:
            raise RuntimeError("no current connection to process")
        client = getattr(_connection_thread, "client", None)
        if client is None or sock not in (client.sock, client.shared):
            client = _Client(sock, "process_connection", CommandConnection(self.max_message_bytes))
        self._read_commands(client)

    # ----------------------------------------------------------------- accepting

    def _accept_loop(self) -> None:
        assert self.server_socket is not None and self._wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.server_socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.listen_stop_event.is_set():
                ready = selector.select(self.accept_timeout_s)
                if any(key.fileobj is self.server_socket for key, _ in ready):
                    self._accept()

    def _accept(self) -> None:
        assert self.server_socket is not None
        while True:
            try:
                sock, address = self.server_socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                # e.g. out of file descriptors: refuse this one, keep serving the rest
                self.logger.error(f"accept failed: {error}")
                return
            peer = f"{address[0]}:{address[1]}"
            if len(self._clients) >= self.max_connections:
                self.logger.warning(f"refused {peer}: {self.max_connections} clients")
                _say_and_close(
                    sock, f"Refused by {self.name}: too many connections ({self.max_connections})\n"
                )
                continue
            sock.setblocking(True)
            if self.idle_timeout_s is not None:
                # Kernel timeouts rather than settimeout(): Python would poll() before every
                # recv and send, a syscall more per command. recv and send then fail with
                # EAGAIN (BlockingIOError) after idle_timeout_s without progress.
                seconds, fraction = divmod(self.idle_timeout_s, 1)
                timeval = struct.pack("ll", int(seconds), int(fraction * 1_000_000))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Keepalive finds peers that vanished without a FIN (half-open connections).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            client = _Client(sock, peer, CommandConnection(self.max_message_bytes))
            thread = threading.Thread(
                target=self._serve, args=(client,), name=f"{self.name}-{peer}", daemon=True
            )
            with self._clients_lock:
                self._clients[client] = thread
            thread.start()

    # ----------------------------------------------------------------- one connection

    def _serve(self, client: _Client) -> None:
        """A connection's thread: read, run each command in turn, reply; until it ends."""
        _connection_thread.active = True
        _connection_thread.client = client
        self._latest = client
        sock = client.sock
        assert sock is not None
        try:
            self._hook(self.on_connection_accepted)
            sock.sendall(f"Connected to {self.name}\n".encode())
            self._read_commands(client)
        except BlockingIOError:
            idle = self.idle_timeout_s
            self.logger.warning(f"{client.peer}: closing, it read no reply for {idle:g} s")
        except OSError as error:
            self.logger.debug(f"{client.peer}: connection error: {error}")
        except Exception:
            # A bug of ours must cost this connection only, and say what it was.
            self.logger.exception(f"{client.peer}: connection failed")
        finally:
            self._hook(self.on_connection_closed)
            with self._clients_lock:
                sock.close()
                if client.shared is not None:
                    client.shared.close()
                self._clients.pop(client, None)

    def _read_commands(self, client: _Client) -> None:
        stop = self.listen_stop_event
        sock = client.sock
        assert sock is not None
        while not stop.is_set():
            try:
                data = sock.recv(_RECV_BYTES)
            except BlockingIOError:
                self._say_idle(client)
                break
            if not data:
                break
            for message in client.protocol.feed(data):
                if stop.is_set():
                    break  # closing: commands after CLOSE are not run
                self._handle(client, message)
            self._flush(client)

    def _hook(self, hook: Callable[[], None]) -> None:
        try:
            hook()
        except Exception:
            self.logger.exception(f"{hook.__name__} failed")

    @staticmethod
    def _flush(client: _Client) -> None:
        if client.out and client.sock is not None:
            client.sock.sendall(client.out)
        client.out.clear()

    def _say_idle(self, client: _Client) -> None:
        message = f"closing connection idle for more than {self.idle_timeout_s:g} s"
        self.logger.warning(f"{client.peer}: {message}")
        goodbye = client.protocol.error(None, message) or f"{message}\n".encode()
        _say_and_close(client.sock, goodbye.decode())

    def _handle(self, client: _Client, message: BadMessage | Command) -> None:
        protocol = client.protocol
        if isinstance(message, BadMessage):
            self._refuse(client, message.name, message.error)
            return
        name = message.name
        if name == "UP":
            client.out += protocol.up_reply
        elif name == "GET_PCOMMS":
            client.out += protocol.reply("GET_PCOMMS", self._pcomms(protocol.json_mode))
        elif name == "HELLO":
            refusal = protocol.hello(message.kwargs)
            if refusal is not None:
                # Whoever says HELLO reads JSON, whatever mode the connection is in.
                self.logger.warning(f"HELLO from {client.peer}: {refusal}")
                client.out += json_error("HELLO", refusal)
                return
            result = {
                "name": self.name,
                "pcomms": self._pcomms(json_mode=True),
                "protocol": PROTOCOL_VERSION,
            }
            client.out += protocol.reply("HELLO", result)
        elif name == "STATUS" and name not in self.pcommand_map:
            client.out += protocol.reply("STATUS", self.status())
        elif name == "CLOSE":
            self.logger.info("CLOSE from %s", client.peer)
            client.out += protocol.reply("CLOSE", None)
            self.listen_stop_event.set()
            self._wake()
        elif name == "STOP" or name in self.pcommand_map:
            # Earlier replies go out now rather than wait for this command.
            self._flush(client)
            self.logger.info("Received: %s %s", name, message.kwargs or "")
            client.out += self._execute(protocol, message)
            with self._work_lock:
                self._commands_run += 1
        else:
            self._refuse(client, name, self._unknown(name))

    def _unknown(self, name: str) -> str:
        """The error for a command nobody answers, with the one the sender probably meant."""
        known = self._pcomms(json_mode=True)
        meant = [cmd for cmd in known if cmd.upper() == name.upper()] or difflib.get_close_matches(
            name.upper(), known, n=1
        )
        hint = f"did you mean {meant[0]}? " if meant else ""
        return f"unknown command {name!r}; {hint}known: {', '.join(known)}"

    def _refuse(self, client: _Client, cmd: str | None, error: str) -> None:
        self.logger.warning(f"bad command from {client.peer}: {error}")
        client.out += client.protocol.error(cmd, error)

    def _execute(self, protocol: CommandConnection, command: Command) -> bytes:
        callable_ = self.pcommand_map.get(command.name)
        try:
            if callable_ is None:
                result = None
            elif self.msg_interpreter is not None:
                raw = encode_command(command.name, command.kwargs or None)[:-1]
                result = self.msg_interpreter(raw, self.pcommand_map, logger=self.logger)
            else:
                result = callable_(**command.kwargs)
        except ValueError as error:
            self.logger.warning(f"{command.name} refused: {error}")
            return protocol.error(command.name, str(error))
        except Exception as error:
            self.logger.error(f"{command.name} raised: {traceback.format_exc().rstrip()}")
            return protocol.error(command.name, f"{type(error).__name__}: {error}")
        if command.name == "STOP":
            leftover = self.stop_work()
            if leftover:
                return protocol.error("STOP", f"still running after STOP: {', '.join(leftover)}")
        return protocol.reply(command.name, self._track(command.name, result))

    def _track(self, cmd: str, result: Any) -> Any:
        """Keep work a command left running; returns what the reply says about it."""
        if (
            isinstance(result, tuple)
            and len(result) == 2
            and isinstance(result[0], threading.Thread)
            and isinstance(result[1], threading.Event)
        ):
            key = f"{cmd}#{next(self._work_ids)}"
            with self._work_lock:
                self.threads[key] = result
            return {"thread": key}
        if isinstance(result, subprocess.Popen):
            key = f"{cmd}#{next(self._work_ids)}"
            with self._work_lock:
                self.processes[key] = result
            return {"process": key, "pid": result.pid}
        return result

    def _prune_work(self) -> None:
        with self._work_lock:
            for key in [k for k, (thread, _) in self.threads.items() if not thread.is_alive()]:
                del self.threads[key]
            for key in [k for k, p in self.processes.items() if p.poll() is not None]:
                del self.processes[key]

    # ----------------------------------------------------------------- plumbing

    def _pcomms(self, json_mode: bool) -> list[str]:
        builtins = BUILTINS if json_mode else DAREPLANE_BUILTINS
        names = list(self.pcommand_map)
        return names + [name for name in builtins if name not in self.pcommand_map]

    def _wake(self) -> None:
        if self._wake_w is not None:
            # Fails only when a wake-up is already pending or we are closing: fine either way.
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def _install_sigterm(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def on_sigterm(signum: int, frame: Any) -> None:
            self.logger.info("SIGTERM, closing")
            self.listen_stop_event.set()
            self._wake()

        return signal.signal(signal.SIGTERM, on_sigterm)

    def _close_everything(self) -> None:
        """After accepting ends: let running commands finish and reply, then stop all work."""
        if self.server_socket is not None:
            self.server_socket.close()
        with self._clients_lock:
            clients = dict(self._clients)
        for client in clients:
            # Ends a waiting recv at once; a thread running a command still sends its reply.
            with contextlib.suppress(OSError):
                client.sock.shutdown(socket.SHUT_RD)
        deadline = time.monotonic() + _CLOSE_GRACE_S
        for client, thread in clients.items():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                # Sending to a client that does not read, or running a long command: stop
                # the sending, and wait for the command (CLOSE leaves no thread behind).
                with contextlib.suppress(OSError):
                    client.sock.shutdown(socket.SHUT_WR)
                thread.join()
        leftover = self.stop_work(wait=True)
        assert not leftover
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self.logger.info("closed")


def _say_and_close(sock: socket.socket, text: str) -> None:
    """Best-effort last words to a client we are turning away; it may already be gone."""
    try:
        sock.setblocking(False)
        sock.send(text.encode())
    except OSError:
        pass
    sock.close()


def _join(
    thread: threading.Thread, timeout: float, wait: bool, logger: logging.Logger, key: str
) -> bool:
    if thread.ident is None:
        return True  # never started: nothing to wait for
    thread.join(timeout)
    while thread.is_alive() and wait:
        logger.warning(f"thread {key} ignores its stop event; still waiting for it")
        thread.join(timeout)
    if thread.is_alive():
        logger.error(f"thread {key} did not stop within {timeout:g} s")
        return False
    return True


class DefaultCallbackServer(DefaultServer):
    """A DefaultServer that also sends `callback_stack` payloads to its clients (Dareplane).

    Every connection gets a thread (tracked in `threads` as `callbacks#n`) that sends what is
    appended to `callback_stack` (a deque: append and popleft are atomic); each payload goes
    to one client. The thread ends with its connection; when the last connection ends, what
    is left on the stack is dropped (it was meant for clients that are gone).
    """

    def __init__(self, *args: Any, callback_stack: deque[str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.callback_stack: deque[str] = callback_stack if callback_stack is not None else deque()
        self._callback_keys: dict[int, str] = {}

    def on_connection_accepted(self) -> None:
        conn = self.current_conn
        assert conn is not None
        if not self._callback_keys:
            # payloads queued while no client was connected were meant for one that is gone
            self.callback_stack.clear()
        stop = threading.Event()
        thread = threading.Thread(
            target=process_callbacks, args=(self, conn, stop), name="callbacks", daemon=True
        )
        key = f"callbacks#{next(self._work_ids)}"
        with self._work_lock:
            self.threads[key] = (thread, stop)
        self._callback_keys[threading.get_ident()] = key
        thread.start()

    def on_connection_closed(self) -> None:
        key = self._callback_keys.pop(threading.get_ident(), None)
        with self._work_lock:
            work = self.threads.pop(key, None) if key is not None else None
        if work is not None:
            thread, stop = work
            stop.set()
            _join(thread, self.stop_timeout_s, False, self.logger, key or "callbacks")
        if not self._callback_keys:
            self.callback_stack.clear()


def process_callbacks(
    server: DefaultCallbackServer, conn: socket.socket, stop_event: threading.Event
) -> None:
    """Send `server.callback_stack` payloads to `conn` until `stop_event` is set or the
    connection fails (logged as "Callback connection lost"). At most once: a payload taken for
    a connection that then fails is not put back."""
    while not stop_event.is_set():
        try:
            payload = server.callback_stack.popleft()
        except IndexError:
            stop_event.wait(0.001)
            continue
        try:
            conn.sendall(payload.encode())
        except OSError as error:
            if not stop_event.is_set():
                server.logger.warning(f"Callback connection lost ({error}), stopping its thread")
            break

"""DefaultServer: the TCP command server every module runs, around the sans-IO protocol.

One thread accepts; every connection gets a thread of its own that reads, parses and runs
its commands one after the other, so each command gets its reply in order, and a slow
command holds up only its own connection: UP on any other connection still answers. This is
Dareplane's one-client loop, once per client. Callables called from different connections may
therefore run at the same time.

Work a command leaves running, a `(Thread, Event)` pair or a `subprocess.Popen`, is tracked:
STOP sets the event / terminates the process tree, CLOSE does the same and waits for all of it.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import logging
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

from dareplane_utils.default_server.protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    BadMessage,
    Command,
    CommandConnection,
    json_error,
)
from dareplane_utils.logging.logger import get_logger

# Dareplane's built-ins, in the order its GET_PCOMMS lists them after the module's commands.
DAREPLANE_BUILTINS = ("STOP", "CLOSE", "GET_PCOMMS", "UP")
BUILTINS = (*DAREPLANE_BUILTINS, "HELLO", "STATUS")

_RECV_BYTES = 65536
# How often the accept loop looks at a stop event set by someone else (Dareplane API).
_POLL_S = 0.25
# How long CLOSE lets connections deliver their last replies before cutting them off.
_CLOSE_GRACE_S = 2.0
_connection_thread = threading.local()


@dataclass(eq=False)
class _Client:
    sock: socket.socket
    peer: str
    protocol: CommandConnection
    # Replies of one received batch, sent together unless a command has to run first.
    out: bytearray = field(default_factory=bytearray)


class DefaultServer:
    """Dareplane-compatible command server for many concurrent clients.

    `pcommand_map` maps command names to callables; a command's JSON object becomes keyword
    arguments. Call `init_server()` then `start_listening()` (blocks until CLOSE, SIGTERM or
    `shutdown()`), or `serve_in_thread()` to run it in the background.
    """

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
    ) -> None:
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
        # Dareplane's names for the work commands left running; modules may look at them.
        self.threads: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.server_socket: socket.socket | None = None
        self.listen_stop_event = threading.Event()
        self.is_listening = False
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
            threads, self.threads = self.threads, {}
            processes, self.processes = self.processes, {}
        for _, event in threads.values():
            event.set()
        leftover: list[str] = []
        for key, process in processes.items():
            _terminate_tree(process, self.stop_timeout_s)
            self.logger.info(f"stopped process {key} (pid {process.pid})")
        for key, (thread, event) in threads.items():
            if not _join(thread, self.stop_timeout_s, wait, self.logger, key):
                leftover.append(key)
                with self._work_lock:
                    self.threads[key] = (thread, event)
        return leftover

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

    # ----------------------------------------------------------------- accepting

    def _accept_loop(self) -> None:
        assert self.server_socket is not None and self._wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.server_socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.listen_stop_event.is_set():
                if any(key.fileobj is self.server_socket for key, _ in selector.select(_POLL_S)):
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
        stop = self.listen_stop_event
        sock = client.sock
        try:
            sock.sendall(f"Connected to {self.name}\n".encode())
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
                if client.out:
                    sock.sendall(client.out)
                    client.out.clear()
        except BlockingIOError:
            idle = self.idle_timeout_s
            self.logger.warning(f"{client.peer}: closing, it read no reply for {idle:g} s")
        except OSError as error:
            self.logger.debug(f"{client.peer}: connection error: {error}")
        except Exception:
            # A bug of ours must cost this connection only, and say what it was.
            self.logger.exception(f"{client.peer}: connection failed")
        finally:
            client.sock.close()
            with self._clients_lock:
                self._clients.pop(client, None)

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
            if client.out:
                # Earlier replies go out now rather than wait for this command.
                client.sock.sendall(client.out)
                client.out.clear()
            self.logger.info("%s %s", name, message.kwargs or "")
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
            result = callable_(**command.kwargs) if callable_ is not None else None
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


def _terminate_tree(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM the process and all its descendants, SIGKILL what is left, reap the parent."""
    try:
        parent = psutil.Process(process.pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        family = []
    for signal_all in (psutil.Process.terminate, psutil.Process.kill):
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                signal_all(member)
        family = _wait_gone(family, timeout)
        if not family:
            break
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)


def _wait_gone(members: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every member has exited; returns those still running at the timeout.

    An exited grandchild stays a zombie until whoever inherits it reaps it, which may take
    long; for stopping, a zombie counts as gone.
    """
    deadline = time.monotonic() + timeout
    while True:
        members = [member for member in members if _running(member)]
        if not members or time.monotonic() >= deadline:
            return members
        time.sleep(0.01)


def _running(member: psutil.Process) -> bool:
    try:
        return member.is_running() and member.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False

"""ModuleClient: how the control room, the CLI and the tests talk to a module's DefaultServer.

JSON mode (default) says `HELLO|{"protocol": 2}` after the banner and then reads exactly one
reply line per command. Legacy mode speaks plain Dareplane, for modules that do not know
HELLO: only UP and GET_PCOMMS answer there, so other commands are followed by an `UP` whose
`1` shows the server has handled them (a Dareplane server handles one connection's commands in
order).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from dareplane_utils.default_server.protocol import PROTOCOL_VERSION, encode_command

# A reply line this long is a broken server, not a result.
_MAX_REPLY_BYTES = 256 * 1024 * 1024


class ModuleError(Exception):
    """The module refused a command (`ok: false`); `error` is the server's reason."""

    def __init__(self, cmd: str | None, error: str) -> None:
        super().__init__(f"{cmd}: {error}" if cmd else error)
        self.cmd = cmd
        self.error = error


class ModuleClient:
    """A connection to one module's command server.

    >>> with ModuleClient("127.0.0.1", 8103).connect(retries=50) as client:
    ...     client.request("STATUS")
    """

    def __init__(self, host: str, port: int, timeout: float = 5.0, legacy: bool = False) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.legacy = legacy
        self.server_name: str | None = None
        self.pcomms: list[str] = []
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        # Replies not read yet: owed to send(), to requests that timed out, and to the request
        # in progress, whose reply is the last of them.
        self._unread = 0
        self._lock = threading.Lock()

    def connect(self, retries: int = 0, interval: float = 0.1) -> ModuleClient:
        """Connect, retrying while the module is still starting; read its banner; say HELLO.

        On a client that was connected before, this starts a fresh connection.
        """
        self.close()
        self._buffer.clear()
        self._unread = 0
        attempt = 0
        while True:
            try:
                self._sock = socket.create_connection((self.host, self.port), self.timeout)
                break
            except OSError as error:
                if attempt >= retries:
                    raise ConnectionError(
                        f"cannot connect to module at {self.host}:{self.port} "
                        f"after {attempt + 1} attempt(s): {error}"
                    ) from error
                attempt += 1
                time.sleep(interval)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            banner = self._read_line(self.timeout).decode("utf-8", "replace")
            if not banner.startswith("Connected to "):
                raise ConnectionError(f"{self._where()} refused the connection: {banner}")
            self.server_name = banner.removeprefix("Connected to ")
            if not self.legacy:
                self._hello()
        except BaseException:
            self.close()
            raise
        return self

    def request(
        self, cmd: str, payload: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """Send a command and return its result; ModuleError if the module refused it.

        Legacy mode returns 1 for UP, the names for GET_PCOMMS and None for other commands
        (once the server has handled them).
        """
        wait = self.timeout if timeout is None else timeout
        with self._lock:
            if self.legacy:
                return self._legacy_request(cmd, payload, wait)
            self._send(encode_command(cmd, payload))
            self._unread += 1
            # Replies come in order: drop those owed to earlier commands, then read ours.
            # A timeout leaves the count right, so a late reply is dropped next time.
            while self._unread:
                line = self._read_line(wait)
                self._unread -= 1
        return self._decode(cmd, line)

    def send(self, cmd: str, payload: dict[str, Any] | None = None) -> None:
        """Fire and forget: send a command without waiting for its reply."""
        with self._lock:
            self._send(encode_command(cmd, payload))
            if not self.legacy:
                self._unread += 1

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ModuleClient:
        if self._sock is None:
            self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- internals

    def _hello(self) -> None:
        self._send(encode_command("HELLO", {"protocol": PROTOCOL_VERSION}))
        try:
            line = self._read_line(self.timeout)
        except TimeoutError as error:
            raise ConnectionError(
                f"{self._where()} did not answer HELLO within {self.timeout:g} s: "
                "a Dareplane module? connect with legacy=True"
            ) from error
        result = self._decode("HELLO", line)
        self.pcomms = list(result.get("pcomms", []))

    def _legacy_request(self, cmd: str, payload: dict[str, Any] | None, wait: float) -> Any:
        if cmd == "CLOSE":
            self._send(encode_command(cmd, payload))
            return None
        if cmd == "GET_PCOMMS":
            # Dareplane's list has no terminator, but it always ends with its built-in UP.
            self._send(encode_command(cmd, payload))
            reply = self._read_until(lambda data: data.endswith(b"UP"), wait)
            return reply.decode("utf-8", "replace").split("|")
        if cmd == "UP":
            self._send(b"UP;")
        else:
            self._send(encode_command(cmd, payload) + b"UP;")
        self._read_until(lambda data: data == b"1", wait)
        return 1 if cmd == "UP" else None

    def _decode(self, cmd: str, line: bytes) -> Any:
        try:
            reply = json.loads(line)
        except ValueError as error:
            raise ConnectionError(
                f"{self._where()} sent a reply to {cmd} that is not JSON: {line[:200]!r}"
            ) from error
        if not isinstance(reply, dict) or "ok" not in reply:
            raise ConnectionError(f"{self._where()} sent a malformed reply to {cmd}: {reply!r}")
        if not reply["ok"]:
            raise ModuleError(reply.get("cmd"), str(reply.get("error")))
        return reply.get("result")

    def _send(self, data: bytes) -> None:
        try:
            self._connected().sendall(data)
        except OSError as error:
            raise ConnectionError(f"{self._where()}: cannot send: {error}") from error

    def _read_line(self, wait: float) -> bytes:
        deadline = time.monotonic() + wait
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > _MAX_REPLY_BYTES:
                raise ConnectionError(
                    f"{self._where()} sent a reply line over {_MAX_REPLY_BYTES} B"
                )
            self._receive(deadline)

    def _read_until(self, complete: Callable[[bytes], bool], wait: float) -> bytes:
        """Legacy replies have no end marker: read until `complete(bytes)` says so."""
        deadline = time.monotonic() + wait
        while not complete(bytes(self._buffer)):
            self._receive(deadline)
        reply = bytes(self._buffer)
        self._buffer.clear()
        return reply

    def _receive(self, deadline: float) -> None:
        sock = self._connected()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{self._where()} did not reply in time")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise TimeoutError(f"{self._where()} did not reply in time") from None
        except OSError as error:
            raise ConnectionError(f"{self._where()}: {error}") from error
        if not chunk:
            raise ConnectionError(f"{self._where()} closed the connection")
        self._buffer += chunk

    def _connected(self) -> socket.socket:
        if self._sock is None:
            raise ConnectionError(f"not connected to {self._where()} (call connect() first)")
        return self._sock

    def _where(self) -> str:
        label = self.server_name or "module"
        return f"{label} at {self.host}:{self.port}"

"""Talking to a module over its command socket, as Dareplane's control room does.

`SocketCommunicator` is the plain byte pipe dp-control-room builds on: connect (with retries
while the module starts), send bytes, receive bytes. Raceplane's own client with framing,
replies and errors is `dareplane_utils.client.module_client.ModuleClient`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from abc import ABC, abstractmethod
from socket import SHUT_RDWR

# How long connect() waits for the module's `Connected to <name>` line.
BANNER_TIMEOUT_S = 1.0


class Communicator(ABC):
    """What a ModuleConnection talks through."""

    @abstractmethod
    def connect(self) -> None: ...

    @abstractmethod
    def disconnect(self) -> None: ...

    @abstractmethod
    def send(self, data: bytes) -> None: ...

    @abstractmethod
    def receive(self, size: int) -> bytes: ...


class SocketCommunicator(Communicator):
    def __init__(
        self,
        ip: str,
        port: int,
        name: str,
        retry_after_s: float = 1,
        max_connect_retries: int = 3,
        logger: logging.Logger | None = None,
    ):
        self.ip = ip
        self.port = port
        self.name = name
        self.retry_after_s = retry_after_s
        self.max_connect_retries = max_connect_retries
        self.logger = logger
        self.socket_c: socket.socket | None = None
        self.near_port = 0

    def connect(self) -> None:
        """Connect (see create_socket_client) and read the module's greeting line.

        The socket is left blocking; dp-control-room sets its own timeout afterwards.
        """
        self._debug(f"{self.name}: connecting to {self.ip}:{self.port}")
        sock = self.create_socket_client(self.ip, self.port, self.retry_after_s)
        self.socket_c = sock
        self.near_port = sock.getsockname()[1]
        sock.settimeout(BANNER_TIMEOUT_S)
        greeting = b""
        try:
            # A Dareplane server greets with one line; a module that does not greet costs
            # BANNER_TIMEOUT_S once (Dareplane's reads until that timeout every time).
            while not greeting.endswith(b"\n"):
                chunk = sock.recv(1024)
                if not chunk:
                    break
                greeting += chunk
            self._debug(f"{self.name}: connection returned: {greeting.decode(errors='replace')}")
        except TimeoutError:
            self._debug(f"{self.name}: no greeting within {BANNER_TIMEOUT_S:g} s")
        sock.settimeout(None)

    def create_socket_client(
        self, host_ip: str, port: int, retry_connection_after_s: float = 1
    ) -> socket.socket:
        """Try `max_connect_retries` times, `retry_connection_after_s` apart, while refused;
        ConnectionRefusedError after the last (at once when max_connect_retries is 0)."""
        for attempt in range(self.max_connect_retries):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.connect((host_ip, port))
                self._debug(f"{self.name}: connected to {host_ip}:{port}")
                return sock
            except ConnectionRefusedError:
                sock.close()
                self._debug(
                    f"{self.name}: {host_ip}:{port} refused (try {attempt + 1} of "
                    f"{self.max_connect_retries}); retrying in {retry_connection_after_s} s"
                )
                if attempt + 1 < self.max_connect_retries:
                    time.sleep(retry_connection_after_s)
        raise ConnectionRefusedError(
            f"{self.name}: connection to {host_ip}:{port} refused after "
            f"{self.max_connect_retries} tries"
        )

    def disconnect(self) -> None:
        if self.socket_c is None:
            return
        with contextlib.suppress(OSError):
            self.socket_c.shutdown(SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.socket_c.close()
        self.socket_c = None

    def send(self, data: bytes) -> None:
        if self.socket_c is not None:
            self.socket_c.sendall(data)

    def receive(self, size: int) -> bytes:
        if self.socket_c is not None:
            return self.socket_c.recv(size)
        return b""

    def _debug(self, message: str) -> None:
        if self.logger is not None:
            self.logger.debug(message)

"""A WebSocket client connection in the caller's thread, on websockets' Sans-IO protocol.

websockets' own sync client reads in a thread of its own and hands every message over through a
queue; at the live feed's rate that hand-over (a thread switch per message) cost more than
handling the message. Here one read of the socket gives every message it completes, in the
thread that handles them. Pings are answered and a close is acknowledged by the protocol.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

READ_BYTES = 1 << 18


class WebSocketClosed(ConnectionError):
    """The connection ended (or failed); the message says how."""


class WebSocket:
    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.sock = sock
        self.protocol = protocol
        self._pending: list[str | bytes] = []  # complete messages not yet returned
        self._opcode: Opcode | None = None  # of the fragmented message being put together
        self._fragments: list[bytes] = []

    @classmethod
    def connect(cls, url: str, headers: dict[str, str], timeout: float, max_size: int) -> WebSocket:
        """Open the connection (TLS for wss) and complete the opening handshake; InvalidURI,
        OSError, TimeoutError or websockets' InvalidHandshake (e.g. an HTTP error) if not."""
        uri = parse_uri(url)
        sock = socket.create_connection((uri.host, uri.port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if uri.secure:
                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=uri.host)
            protocol = ClientProtocol(uri, max_size=max_size)
            request = protocol.connect()
            for name, value in headers.items():
                request.headers[name] = value
            protocol.send_request(request)
            connection = cls(sock, protocol)
            connection._flush()
            deadline = time.monotonic() + timeout
            while protocol.state is State.CONNECTING:
                left = deadline - time.monotonic()
                if left <= 0 or not connection._read(left):
                    raise TimeoutError(f"no WebSocket handshake reply in {timeout:g} s")
            if protocol.handshake_exc is not None:
                raise protocol.handshake_exc
        except BaseException:
            sock.close()
            raise
        return connection

    def send(self, text: str) -> None:
        if self.protocol.state is not State.OPEN:
            raise WebSocketClosed(self._why())
        self.protocol.send_text(text.encode())
        self._flush()

    def recv(self, timeout: float) -> list[str | bytes]:
        """Every message that arrived within `timeout` ([] if none): text as str, binary as
        bytes. WebSocketClosed once the connection is over and every message was returned."""
        if not self._pending:
            if self.protocol.state is not State.OPEN:
                raise WebSocketClosed(self._why())
            self._read(timeout)
        messages, self._pending = self._pending, []
        return messages

    def close(self) -> None:
        """Say goodbye (a close frame) when still open, and end the TCP connection."""
        with contextlib.suppress(OSError):
            if self.protocol.state is State.OPEN:
                self.protocol.send_close()
                self._flush()
        self.sock.close()

    def _read(self, timeout: float) -> bool:
        """One read of the socket into the protocol; False if nothing came in `timeout`."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(READ_BYTES)
        except TimeoutError:
            return False
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Frame):  # else the handshake's Response, checked by connect
                self._frame(event)
        # Pongs, the answer to a close, or a close after a protocol error.
        self._flush()
        return True

    def _frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._opcode, self._fragments = frame.opcode, [frame.data]
        elif frame.opcode is Opcode.CONT and self._opcode is not None:
            self._fragments.append(frame.data)
        else:
            return  # ping, pong, close: the protocol has dealt with them
        if frame.fin:
            data = b"".join(self._fragments)
            if self._opcode is Opcode.TEXT:
                # The protocol has checked the UTF-8 already.
                self._pending.append(data.decode())
            else:
                self._pending.append(data)
            self._opcode, self._fragments = None, []

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.sock.sendall(chunk)
            else:  # the protocol's end of stream: our side is done
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_WR)

    def _why(self) -> str:
        protocol = self.protocol
        if protocol.parser_exc is not None:
            return f"connection failed: {protocol.parser_exc}"
        if protocol.state is State.CLOSED:
            return f"connection closed: {protocol.close_exc}"
        return f"connection {protocol.state.name.lower()}"

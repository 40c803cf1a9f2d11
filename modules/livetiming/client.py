"""The live timing connection: SignalR Core over a WebSocket, reconnecting until told to stop.

One connection: negotiate (HTTP POST `<hub>/negotiate?negotiateVersion=1`), open the WebSocket
`<hub>?id=<connectionToken>`, handshake, invoke `Subscribe` with the topic list. The reply to
Subscribe is every topic's state (`on_state`); then the server invokes `feed(topic, data,
timestamp)` for every change (`on_feed`). Either side pings every 15 s; a server silent for
`server_timeout_s` is taken for gone. Whatever ends a connection (server close, lost network,
a failed negotiate), the client connects again after a backoff that doubles up to a limit and
starts over at a connection that reached its Subscribe reply. The server ends every connection
after two hours: `rollover_s` before that the client warns, calls `on_rollover` and connects
afresh itself. The protocol proper is in signalr.py; this file is the sockets and the timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import InvalidHandshake, InvalidURI

from . import signalr
from .topics import TOPICS
from .websocket import WebSocket, WebSocketClosed

F1_HUB = "https://livetiming.formula1.com/signalrcore"
TOKEN_ENV = "RACEPLANE_F1_TOKEN"


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """The feed connection's options, shared by the module and `raceplane livetiming save`."""
    parser.add_argument("--url", default=F1_HUB, help="the SignalR Core hub")
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"access token for CarData.z and Position.z (env {TOKEN_ENV})",
    )
    parser.add_argument(
        "--rollover-min",
        type=float,
        default=115.0,
        help="connect afresh into a new file after this many minutes (the server ends at 120)",
    )
    parser.add_argument("--backoff-s", type=float, default=1.0, help="first reconnect delay")
    parser.add_argument("--backoff-max-s", type=float, default=30.0, help="longest reconnect delay")
    parser.add_argument(
        "--server-timeout-s", type=float, default=30.0, help="a silent server is gone after this"
    )
    parser.add_argument("--ping-interval-s", type=float, default=15.0)


class ConnectFailed(ConnectionError):
    """One connection attempt failed; the message says at which step."""


@dataclass
class ClientOptions:
    url: str = F1_HUB
    topics: tuple[str, ...] = TOPICS
    access_token: str | None = None
    connect_timeout_s: float = 10.0
    ping_interval_s: float = 15.0
    server_timeout_s: float = 30.0
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    # The server closes a connection after 2 h; connect afresh a little before that.
    rollover_s: float = 115 * 60.0
    # Stop when no feed data came for this long over all connections (0: never).
    idle_timeout_s: float = 0.0


@dataclass
class ClientStats:
    connections: int = 0
    failures: int = 0
    rollovers: int = 0
    feed_messages: int = 0
    state_replies: int = 0
    bad_messages: int = 0
    last_error: str = ""
    connected: bool = False
    connection_started: float | None = None  # time.monotonic() of the open connection
    errors: list[str] = field(default_factory=list)


OnState = Callable[[dict[str, Any]], None]
OnFeed = Callable[[str, Any, str], None]


def _http_url(url: str) -> str:
    scheme = {"ws": "http", "wss": "https"}.get(urllib.parse.urlsplit(url).scheme)
    return url if scheme is None else scheme + url[url.index(":") :]


def _ws_url(url: str, token: str) -> str:
    parts = urllib.parse.urlsplit(_http_url(url))
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = urllib.parse.urlencode({"id": token})
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path, query, ""))


class LiveTimingClient:
    def __init__(
        self,
        options: ClientOptions,
        on_state: OnState,
        on_feed: OnFeed,
        logger: logging.Logger,
        on_rollover: Callable[[], None] | None = None,
    ) -> None:
        self.options = options
        self.on_state = on_state
        self.on_feed = on_feed
        self.on_rollover = on_rollover or (lambda: None)
        self.logger = logger
        self.stats = ClientStats()
        self._stop = threading.Event()
        self._last_data = time.monotonic()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> str:
        """Connect and reconnect until `stop()` or the idle timeout; returns why it ended."""
        backoff = self.options.backoff_s
        self._last_data = time.monotonic()
        while not self._stop.is_set():
            try:
                subscribed, why = self._connection()
            except (ConnectFailed, OSError, InvalidHandshake) as error:
                subscribed, why = False, f"{type(error).__name__}: {error}"
            self.stats.connected = False
            self.stats.connection_started = None
            if why in ("stopped", "idle"):
                return why
            if why == "rollover":
                continue
            self.stats.failures += 1
            self.stats.last_error = why
            if subscribed:
                backoff = self.options.backoff_s
            self.logger.warning("live timing connection lost (%s); again in %.1f s", why, backoff)
            if self._idle() or self._stop.wait(backoff):
                return "idle" if self._idle() else "stopped"
            backoff = min(backoff * 2, self.options.backoff_max_s)
        return "stopped"

    def _idle(self) -> bool:
        limit = self.options.idle_timeout_s
        return limit > 0 and time.monotonic() - self._last_data > limit

    def _headers(self) -> dict[str, str]:
        token = self.options.access_token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def negotiate(self) -> str:
        """The connection token for the WebSocket; ConnectFailed with the server's reason."""
        url = _http_url(self.options.url).rstrip("/") + "/negotiate?negotiateVersion=1"
        request = urllib.request.Request(url, data=b"", method="POST", headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=self.options.connect_timeout_s) as reply:
                body = reply.read(1 << 20)
        except urllib.error.HTTPError as error:
            if error.code in (401, 403):
                what = (
                    "the feed refused the access token (expired or not an F1TV token?)"
                    if self.options.access_token
                    else "the feed wants an access token (--token or RACEPLANE_F1_TOKEN)"
                )
                raise ConnectFailed(
                    f"negotiate: HTTP {error.code} {error.reason}: {what}"
                ) from error
            raise ConnectFailed(f"negotiate: HTTP {error.code} {error.reason}") from error
        except (urllib.error.URLError, TimeoutError) as error:
            raise ConnectFailed(f"negotiate: {getattr(error, 'reason', error)}") from error
        try:
            answer = json.loads(body)
        except ValueError as error:
            raise ConnectFailed(f"negotiate: reply is not JSON: {body[:80]!r}") from error
        if not isinstance(answer, dict):
            raise ConnectFailed("negotiate: reply is not a JSON object")
        if answer.get("error"):
            raise ConnectFailed(f"negotiate: {answer['error']}")
        token = answer.get("connectionToken") or answer.get("connectionId")
        if not isinstance(token, str) or not token:
            raise ConnectFailed("negotiate: reply has no connectionToken")
        return token

    def _connection(self) -> tuple[bool, str]:
        """One connection from negotiate to its end: (reached the Subscribe reply, why ended)."""
        token = self.negotiate()
        try:
            socket = WebSocket.connect(
                _ws_url(self.options.url, token),
                self._headers(),
                self.options.connect_timeout_s,
                signalr.MAX_MESSAGE_CHARS * 4,
            )
        except InvalidURI as error:
            raise ConnectFailed(f"bad hub URL: {error}") from error
        try:
            return self._session(socket)
        finally:
            socket.close()

    def _session(self, socket: WebSocket) -> tuple[bool, str]:
        protocol = signalr.HubProtocol()
        opened = last_sent = last_received = time.monotonic()
        socket.send(protocol.handshake_request())
        subscribe_id: str | None = None
        subscribed = False
        self.stats.connections += 1
        self.stats.connection_started = opened
        while True:
            now = time.monotonic()
            if self._stop.is_set():
                self._close(socket, protocol)
                return subscribed, "stopped"
            if self._idle():
                self.logger.warning("no live timing data for %.0f s", self.options.idle_timeout_s)
                self._close(socket, protocol)
                return subscribed, "idle"
            if now - opened > self.options.rollover_s:
                self.logger.warning(
                    "live timing connection %.0f min old: the server ends it at 2 h; "
                    "rolling over to a new connection and file",
                    (now - opened) / 60,
                )
                self.stats.rollovers += 1
                self.on_rollover()
                self._close(socket, protocol)
                return subscribed, "rollover"
            if now - last_received > self.options.server_timeout_s:
                return subscribed, f"server silent for {self.options.server_timeout_s:.0f} s"
            if now - last_sent > self.options.ping_interval_s:
                socket.send(protocol.ping())
                last_sent = now
            try:
                texts = socket.recv(timeout=0.2)
            except WebSocketClosed as closed:
                # Also after a protocol error, when the peer may never end the TCP connection:
                # no more data can come anyway.
                return subscribed, str(closed)
            if not texts:
                continue
            last_received = time.monotonic()
            for event in (event for text in texts for event in protocol.feed(text)):
                match event:
                    case signalr.HandshakeDone():
                        subscribe_id, message = protocol.invoke(
                            "Subscribe", [list(self.options.topics)]
                        )
                        socket.send(message)
                        last_sent = time.monotonic()
                        self.stats.connected = True
                    case signalr.HandshakeFailed(error=error):
                        raise ConnectFailed(f"handshake refused: {error}")
                    case signalr.Completion(invocation_id=iid, result=result, error=error):
                        if iid != subscribe_id:
                            continue
                        if error is not None:
                            raise ConnectFailed(f"Subscribe refused: {error}")
                        subscribed = True
                        self.stats.state_replies += 1
                        self._last_data = time.monotonic()
                        self.on_state(result if isinstance(result, dict) else {})
                    case signalr.Invocation(target=target, arguments=arguments):
                        self._invocation(target, arguments)
                    case signalr.Close(error=error):
                        return subscribed, f"server closed: {error or 'no reason given'}"
                    case signalr.BadMessage(reason=reason, text=sample):
                        self._bad(f"{reason}: {sample!r}")
                    case signalr.Ping():
                        pass

    def _invocation(self, target: str, arguments: list[Any]) -> None:
        if target.lower() != "feed":
            return  # other hub methods carry nothing for us
        if (
            len(arguments) != 3
            or not isinstance(arguments[0], str)
            or not isinstance(arguments[2], str)
        ):
            self._bad(f"feed needs [topic, data, timestamp], got {str(arguments)[:80]}")
            return
        self.stats.feed_messages += 1
        self._last_data = time.monotonic()
        topic, data, timestamp = arguments
        self.on_feed(topic, data, timestamp)

    def _bad(self, what: str) -> None:
        self.stats.bad_messages += 1
        if len(self.stats.errors) < 20:
            self.stats.errors.append(what)
        self.logger.warning("live timing: bad message skipped: %s", what)

    def _close(self, socket: WebSocket, protocol: signalr.HubProtocol) -> None:
        with contextlib.suppress(OSError):
            socket.send(protocol.close())

"""A local SignalR Core server in the manner of the F1 live timing service, for the tests.

Real sockets: plain HTTP for OPTIONS/POST `/signalrcore/negotiate`, and a WebSocket (framed by
websockets' sans-IO `ServerProtocol`) for the hub. Each WebSocket connection runs a scenario,
`scenario(conn)`, in a thread of its own after the handshake: it waits for the client's
Subscribe, answers, feeds, and throws whatever fault the test wants (drop the TCP connection,
SignalR close, bad frames, raw garbage, silence).

`synthetic_race()` is a small race in the feed's own shapes, with the laps it must give.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from modules.livetiming.topics import encode_z, format_timestamp

RS = "\x1e"


class HubConnection:
    """The server side of one hub WebSocket."""

    def __init__(self, sock: socket.socket, protocol: ServerProtocol, request: Request) -> None:
        self.sock = sock
        self.protocol = protocol
        self.request = request
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.pings = 0  # SignalR pings
        self.pongs = 0  # WebSocket pongs (answers to send_ws_ping)
        self.subscriptions: list[list[Any]] = []  # the arguments of every Subscribe
        self.closed = threading.Event()
        self._lock = threading.Lock()
        self._buffer = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # ------------------------------------------------------------ sending

    def _flush(self) -> None:
        with self._lock:
            chunks = self.protocol.data_to_send()
            try:
                self.sock.sendall(b"".join(chunks))
                if b"" in chunks:  # the protocol's end of stream: the close handshake is done
                    self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self.closed.set()

    def send_text(self, text: str) -> None:
        with self._lock:
            self.protocol.send_text(text.encode())
        self._flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_text(json.dumps(message) + RS)

    def send_binary(self, data: bytes) -> None:
        with self._lock:
            self.protocol.send_binary(data)
        self._flush()

    def send_fragmented(self, text: str, parts: int) -> None:
        """One text message in `parts` WebSocket frames (a first frame, then continuations)."""
        data = text.encode()
        size = -(-len(data) // parts)
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        with self._lock:
            self.protocol.send_text(chunks[0], fin=len(chunks) == 1)
            for index, chunk in enumerate(chunks[1:], start=2):
                self.protocol.send_continuation(chunk, fin=index == len(chunks))
        self._flush()

    def send_ws_ping(self, data: bytes = b"ping") -> None:
        with self._lock:
            self.protocol.send_ping(data)
        self._flush()

    def send_raw(self, data: bytes) -> None:
        """Bytes straight onto the TCP stream, outside any WebSocket frame."""
        self.sock.sendall(data)

    def feed(self, topic: str, data: Any, timestamp: str) -> None:
        self.send({"type": 1, "target": "feed", "arguments": [topic, data, timestamp]})

    def close_hub(self, error: str | None = None, allow_reconnect: bool = True) -> None:
        message: dict[str, Any] = {"type": 7, "allowReconnect": allow_reconnect}
        if error:
            message["error"] = error
        self.send(message)

    def drop(self) -> None:
        """End the TCP connection without any goodbye."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.closed.set()

    # ------------------------------------------------------------ receiving

    def expect(self, kind: int, timeout: float = 10.0) -> dict[str, Any]:
        """The next message of this type (pings are counted, not queued)."""
        while True:
            message = self.inbox.get(timeout=timeout)
            if message.get("type") == kind:
                return message

    def wait_subscribe(self, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            message = self.expect(1, timeout)
            if message.get("target") == "Subscribe":
                self.subscriptions.append(message["arguments"])
                return message

    def _read(self) -> None:
        while not self.closed.is_set():
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                with self._lock:
                    self.protocol.receive_eof()
                break
            with self._lock:
                self.protocol.receive_data(data)
                frames = self.protocol.events_received()
            self._flush()
            for frame in frames:
                if frame.opcode == Opcode.TEXT:
                    self._text(frame.data.decode())
                elif frame.opcode == Opcode.PONG:
                    self.pongs += 1
                elif frame.opcode == Opcode.CLOSE:
                    self.closed.set()
        self.closed.set()

    def _text(self, text: str) -> None:
        self._buffer += text
        *messages, self._buffer = self._buffer.split(RS)
        for part in messages:
            message = json.loads(part)
            if message.get("type") == 6:
                self.pings += 1
            else:
                self.inbox.put(message)


Scenario = Callable[[HubConnection], None]


@dataclass
class Negotiation:
    method: str
    path: str
    headers: dict[str, str]


class LiveTimingServer:
    """Serves `scenarios[i]` to the i-th hub connection (the last one for any later ones).

    `negotiate_failures` negotiations fail with HTTP 500 first; `handshake_errors` handshakes
    are refused with a SignalR error; a negotiation with the access token `refused_token` gets
    HTTP 401 (as the feed answers an expired one).
    """

    def __init__(
        self,
        scenarios: list[Scenario],
        negotiate_failures: int = 0,
        handshake_errors: int = 0,
        refused_token: str | None = None,
    ) -> None:
        self.scenarios = scenarios
        self.refused_token = refused_token
        self.negotiate_failures = negotiate_failures
        self.handshake_errors = handshake_errors
        self.negotiations: list[Negotiation] = []
        self.connections: list[HubConnection] = []
        self.errors: list[BaseException] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/signalrcore"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> LiveTimingServer:
        self._accept.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        for conn in self.connections:
            conn.drop()
        for thread in self._threads:
            thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._connection, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _connection(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(None)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(65536)
                if not chunk:
                    sock.close()
                    return
                head += chunk
            request_line = head.split(b"\r\n", 1)[0].decode()
            method, path, _ = request_line.split(" ", 2)
            if method in ("POST", "OPTIONS"):
                self._negotiate(sock, method, path, head)
            else:
                self._hub(sock, head)
        except BaseException as error:  # a fault of the server is a fault of the test
            self.errors.append(error)
            sock.close()

    def _negotiate(self, sock: socket.socket, method: str, path: str, head: bytes) -> None:
        lines = head.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")[1:]
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
        self.negotiations.append(Negotiation(method, path, headers))
        status, body = "200 OK", b""
        if method == "POST":
            failed = sum(1 for n in self.negotiations if n.method == "POST") <= (
                self.negotiate_failures
            )
            refused = self.refused_token is not None and headers.get("authorization") == (
                f"Bearer {self.refused_token}"
            )
            if refused:
                status, body = "401 Unauthorized", b"token expired"
            elif failed:
                status, body = "500 Internal Server Error", b"try later"
            else:
                token = uuid.uuid4().hex
                body = json.dumps(
                    {
                        "negotiateVersion": 1,
                        "connectionId": token[:8],
                        "connectionToken": token,
                        "availableTransports": [
                            {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}
                        ],
                    }
                ).encode()
        # FastF1 reads the load balancer's cookie from this reply.
        sock.sendall(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Set-Cookie: AWSALBCORS=test-cookie; Path=/\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        sock.close()

    def _hub(self, sock: socket.socket, head: bytes) -> None:
        protocol = ServerProtocol(max_size=None)
        protocol.receive_data(head)
        request = protocol.events_received()[0]
        protocol.send_response(protocol.accept(request))
        sock.sendall(b"".join(protocol.data_to_send()))
        conn = HubConnection(sock, protocol, request)
        index = len(self.connections)
        self.connections.append(conn)
        # The SignalR handshake: the client's {"protocol": "json", "version": 1}.
        handshake = conn.inbox.get(timeout=10)
        if handshake.get("protocol") != "json":
            conn.send({"error": "only the json protocol"})
            conn.drop()
            return
        if index < self.handshake_errors:
            conn.send_text(json.dumps({"error": "handshake refused by the test"}) + RS)
            conn.drop()
            return
        conn.send_text("{}" + RS)
        self.scenarios[min(index, len(self.scenarios) - 1)](conn)


# ----------------------------------------------------------------------- scenarios


def serve(state: dict[str, Any], feed: list[tuple[str, Any, str]], then: str = "hold") -> Scenario:
    """Answer Subscribe with `state`, send `feed`, then hold the connection ("hold": answer
    pings until the client goes), drop it ("drop") or close the hub ("close")."""

    def scenario(conn: HubConnection) -> None:
        subscribe = conn.wait_subscribe()
        conn.send({"type": 3, "invocationId": subscribe["invocationId"], "result": state})
        for topic, data, timestamp in feed:
            conn.feed(topic, data, timestamp)
        if then == "drop":
            conn.drop()
        elif then == "close":
            conn.close_hub("server restarting")
        else:
            hold(conn)

    return scenario


def hold(conn: HubConnection) -> None:
    """Keep the connection, answering pings as the service does, until the client leaves."""
    seen = 0
    while not conn.closed.wait(0.05):
        if conn.pings > seen:
            seen = conn.pings
            conn.send({"type": 6})


# ----------------------------------------------------------------------- a synthetic race


@dataclass
class Race:
    """A race in the feed's shapes: the Subscribe state, the feed, and what it must give."""

    state: dict[str, Any]
    feed: list[tuple[str, Any, str]]
    # driver number -> [(lap, lap_time_ms, (s1, s2, s3))]
    laps: dict[str, list[tuple[int, int, tuple[int, int, int]]]] = field(default_factory=dict)
    final_order: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)


def _clock(ms: int) -> str:
    minutes, rest = divmod(ms, 60000)
    return f"{minutes}:{rest / 1000:06.3f}" if minutes else f"{rest / 1000:.3f}"


def synthetic_race(
    start: datetime | None = None, laps: int = 3, drivers: tuple[str, ...] = ("1", "44", "16")
) -> Race:
    """`drivers` race `laps` laps; each line crossing sends sector 3, LastLapTime and
    NumberOfLaps in one message, as the service does. Lap times differ per driver and lap."""
    t0 = start or datetime(2024, 3, 2, 15, 0, 0, tzinfo=UTC)
    names = {
        "1": ("Max", "VERSTAPPEN", "Red Bull Racing"),
        "44": ("Lewis", "HAMILTON", "Mercedes"),
        "16": ("Charles", "LECLERC", "Ferrari"),
        "4": ("Lando", "NORRIS", "McLaren"),
    }
    driver_list = {
        n: {
            "RacingNumber": n,
            "BroadcastName": f"{names[n][0][0]} {names[n][1]}",
            "FullName": f"{names[n][0]} {names[n][1]}",
            "Tla": names[n][1][:3],
            "Line": i + 1,
            "TeamName": names[n][2],
            "TeamColour": "3671C6",
            "FirstName": names[n][0],
            "LastName": names[n][1].title(),
        }
        for i, n in enumerate(drivers)
    }
    empty_line = {
        "Line": 0,
        "Position": "",
        "NumberOfLaps": 0,
        "LastLapTime": {"Value": ""},
        "Sectors": [{"Value": ""}, {"Value": ""}, {"Value": ""}],
        "InPit": False,
        "NumberOfPitStops": 0,
        "Retired": False,
        "GapToLeader": "",
        "IntervalToPositionAhead": {"Value": ""},
    }
    state = {
        "SessionInfo": {
            "Meeting": {
                "Key": 1229,
                "Name": "Bahrain Grand Prix",
                "Location": "Sakhir",
                "Circuit": {"Key": 63, "ShortName": "Sakhir"},
            },
            "Key": 9472,
            "Type": "Race",
            "Name": "Race",
            "StartDate": "2024-03-02T18:00:00",
            "Path": "2024/2024-03-02_Bahrain_Grand_Prix/2024-03-02_Race/",
        },
        "DriverList": driver_list,
        "LapCount": {"CurrentLap": 1, "TotalLaps": laps},
        "TimingData": {
            "Lines": {
                n: {**json.loads(json.dumps(empty_line)), "Line": i + 1, "Position": str(i + 1)}
                for i, n in enumerate(drivers)
            },
        },
        "TimingAppData": {
            "Lines": {
                n: {"GridPos": str(i + 1), "Stints": [{"Compound": "SOFT", "TotalLaps": 0}]}
                for i, n in enumerate(drivers)
            }
        },
        "TrackStatus": {"Status": "1", "Message": "AllClear"},
        "RaceControlMessages": {"Messages": []},
    }
    events: list[tuple[int, str, Any]] = []  # (ms since start, topic, data)
    # SessionData first: FastF1 takes the session's start from the first line naming
    # SessionStatus and Started, and reads it as a SessionData StatusSeries.
    events.append(
        (
            0,
            "SessionData",
            {"StatusSeries": {"0": {"Utc": format_timestamp(t0), "SessionStatus": "Started"}}},
        )
    )
    events.append((0, "SessionStatus", {"Status": "Started"}))
    race = Race(state, [], names={n: f"{names[n][0]} {names[n][1]}" for n in drivers})
    finish_ms: dict[str, int] = {}
    for d, number in enumerate(drivers):
        now = 0
        race.laps[number] = []
        for lap in range(1, laps + 1):
            s1 = 28_000 + 137 * d + 11 * lap
            s2 = 38_000 + 71 * d + 3 * lap
            s3 = 23_000 + 53 * d + 7 * lap
            total = s1 + s2 + s3
            sectors = (s1, s2, s3)
            base = now
            events.append(
                (
                    base + s1,
                    "TimingData",
                    {"Lines": {number: {"Sectors": {"0": {"Value": _clock(s1)}}}}},
                )
            )
            events.append(
                (
                    base + s1 + s2,
                    "TimingData",
                    {"Lines": {number: {"Sectors": {"1": {"Value": _clock(s2)}}}}},
                )
            )
            events.append(
                (
                    base + total,
                    "TimingData",
                    {
                        "Lines": {
                            number: {
                                "Sectors": {"2": {"Value": _clock(s3)}},
                                "LastLapTime": {"Value": _clock(total)},
                                "NumberOfLaps": lap,
                            }
                        }
                    },
                )
            )
            # The next lap's sectors are cleared a moment later.
            events.append(
                (
                    base + total + 200,
                    "TimingData",
                    {
                        "Lines": {
                            number: {
                                "Sectors": {
                                    "0": {"Value": ""},
                                    "1": {"Value": ""},
                                    "2": {"Value": ""},
                                }
                            }
                        }
                    },
                )
            )

            if lap == 2 and number == drivers[-1]:
                # A pit stop: in the pit lane across the line of lap 2, a new tyre.
                events.append(
                    (base + total - 5000, "TimingData", {"Lines": {number: {"InPit": True}}})
                )
                events.append(
                    (
                        base + total + 15000,
                        "TimingData",
                        {
                            "Lines": {
                                number: {"InPit": False, "PitOut": True, "NumberOfPitStops": 1}
                            }
                        },
                    )
                )
                events.append(
                    (
                        base + total + 1000,
                        "TimingAppData",
                        {
                            "Lines": {
                                number: {"Stints": {"1": {"Compound": "HARD", "TotalLaps": 0}}}
                            }
                        },
                    )
                )
            race.laps[number].append((lap, total, sectors))
            now += total
            events.append(
                (
                    base + s1,
                    "CarData.z",
                    encode_z(
                        {
                            "Entries": [
                                {
                                    "Utc": format_timestamp(t0 + timedelta(milliseconds=base + s1)),
                                    "Cars": {
                                        number: {
                                            "Channels": {
                                                "0": 11000,
                                                "2": 250 + d,
                                                "3": 7,
                                                "4": 100,
                                                "5": 0,
                                                "45": 12,
                                            }
                                        }
                                    },
                                }
                            ]
                        }
                    ),
                )
            )
            events.append(
                (
                    base + s1,
                    "Position.z",
                    encode_z(
                        {
                            "Position": [
                                {
                                    "Timestamp": format_timestamp(
                                        t0 + timedelta(milliseconds=base + s1)
                                    ),
                                    "Entries": {
                                        number: {
                                            "Status": "OnTrack",
                                            "X": 1000 + d,
                                            "Y": -500,
                                            "Z": 30,
                                        }
                                    },
                                }
                            ]
                        }
                    ),
                )
            )

        finish_ms[number] = now
    order = sorted(drivers, key=lambda n: finish_ms[n])
    race.final_order = order
    # Positions follow the order at each crossing of the line; good enough for a procession.
    for position, number in enumerate(order, start=1):
        events.append(
            (
                finish_ms[number] + 1,
                "TimingData",
                {"Lines": {number: {"Position": str(position), "Line": position}}},
            )
        )
    leader_done = min(finish_ms.values())
    events.append(
        (
            leader_done - 1,
            "RaceControlMessages",
            {
                "Messages": {
                    "0": {
                        "Utc": format_timestamp(t0 + timedelta(milliseconds=leader_done - 1)),
                        "Category": "Flag",
                        "Flag": "CHEQUERED",
                        "Message": "CHEQUERED FLAG",
                    }
                }
            },
        )
    )
    events.append((max(finish_ms.values()) + 2000, "SessionStatus", {"Status": "Finished"}))
    events.sort(key=lambda e: e[0])
    race.feed = [
        (topic, data, format_timestamp(t0 + timedelta(milliseconds=ms)))
        for ms, topic, data in events
    ]
    return race

"""The WebSocket hub: every client gets the session's messages, plus telemetry it asked for.

Protocol (`/ws`, JSON text frames):

    server -> client  {"type": "snapshot", "data": {...}}           first, the whole picture
                      {"type": "session"|"tower"|"standings"|"lap"|"event"|"drivers"|"log",
                       "data": ...}                                  as they happen
                      {"type": "telemetry", "t": lsl_time, "data": {"cars": {"3": {...}},
                       "positions": [...]}}                          at the client's rate
                      {"type": "error", "error": "why"}              a bad client message
    client -> server  {"type": "subscribe", "cars": [3, 7], "rate_hz": 20, "map": true}
                      {"type": "ping"}                               -> {"type": "pong"}

Messages are encoded once and queued per client; a client whose queue overflows (it stopped
reading) is closed with 1013, so one slow browser never holds the others back. Telemetry is
sampled, not queued: a client gets the newest frame at its rate, skipping frames it is too slow
for. Frames come pre-encoded from the poll thread without a lock, and clients with the same
subscription share one text; clients of one rate share one timer. The event loop never waits
for LSL work, and a client costs a queue put and a send per frame. Two figures in `status()`
say where time goes: how late the loop wakes (`loop_lag_ms`, a timer probe) and how long a
broadcast message takes from its LSL pull to its send (`pull_to_send_ms`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from .state import CARS, Message, TelemetryFrame

DEFAULT_RATE_HZ = 20.0
MAX_RATE_HZ = 60.0
MIN_RATE_HZ = 0.2
QUEUE_LIMIT = 2000  # messages a client may fall behind before it is dropped
TELEMETRY_BACKLOG = 8  # skip telemetry frames while this many messages wait to be sent
MAX_CLIENT_MESSAGE = 4096
LAG_PROBE_S = 0.05  # the probe's sleep; how late it wakes is how long the loop was busy
LAG_WINDOW = 1200  # probes kept: the last minute
SEND_WINDOW = 2000  # broadcast sends kept for the pull -> send figure


class SubscriptionError(ValueError):
    """A client message the hub cannot follow; the text goes back to the client."""


@dataclass
class Subscription:
    cars: tuple[int, ...] = ()
    rate_hz: float = DEFAULT_RATE_HZ
    map: bool = True


def parse_client_message(text: str) -> dict[str, Any]:
    """A client's message, checked; raises SubscriptionError saying what is wrong."""
    if len(text) > MAX_CLIENT_MESSAGE:
        raise SubscriptionError(f"message longer than {MAX_CLIENT_MESSAGE} characters")
    try:
        obj = json.loads(text)
    except ValueError as error:
        raise SubscriptionError(f"not JSON: {error}") from None
    if not isinstance(obj, dict) or obj.get("type") not in ("subscribe", "ping"):
        raise SubscriptionError('expected {"type": "subscribe", ...} or {"type": "ping"}')
    return obj


def parse_subscription(obj: dict[str, Any], current: Subscription) -> Subscription:
    cars = obj.get("cars", list(current.cars))
    if not isinstance(cars, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c < CARS for c in cars
    ):
        raise SubscriptionError(f"cars must be a list of car indices 0..{CARS - 1}")
    rate = obj.get("rate_hz", current.rate_hz)
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise SubscriptionError("rate_hz must be a number")
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise SubscriptionError(f"rate_hz must be within {MIN_RATE_HZ}..{MAX_RATE_HZ}")
    show_map = obj.get("map", current.map)
    if not isinstance(show_map, bool):
        raise SubscriptionError("map must be true or false")
    return Subscription(tuple(dict.fromkeys(cars)), float(rate), show_map)


@dataclass(eq=False)
class Client:
    websocket: WebSocket
    # (text, when its samples were pulled, for broadcasts)
    queue: asyncio.Queue[tuple[str, float | None]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT)
    )
    subscription: Subscription = field(default_factory=Subscription)
    dropped: bool = False
    last_seq: int = -1  # the telemetry frame it was last given


class Hub:
    def __init__(
        self,
        snapshot: Callable[[], dict[str, Any]],
        frame: Callable[[], TelemetryFrame | None],
        logger: logging.Logger,
    ) -> None:
        self.snapshot = snapshot
        self.frame = frame
        self.logger = logger
        self._texts_of: TelemetryFrame | None = None  # the frame `_texts` were made from
        self._texts: dict[tuple[tuple[int, ...], bool], str] = {}
        self.lags: deque[float] = deque(maxlen=LAG_WINDOW)
        self.send_delays: deque[float] = deque(maxlen=SEND_WINDOW)
        self.clients: set[Client] = set()
        self._groups: dict[float, set[Client]] = {}  # by rate_hz: the clients one ticker serves
        self._tickers: dict[float, asyncio.Task] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0
        self.dropped_clients = 0
        self._closing: set[asyncio.Task] = set()  # held so the loop does not lose them

    # ---- from other threads ----------------------------------------------------------------

    def publish(self, messages: list[Message]) -> None:
        """Broadcast (any thread, just after the pull): encoded here, queued in the event loop."""
        pulled = time.perf_counter()
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        items = [(_dumps(m.as_json()), pulled) for m in messages]
        with contextlib.suppress(RuntimeError):  # the loop closed between check and call
            loop.call_soon_threadsafe(self._fanout, items)

    def _fanout(self, items: list[tuple[str, float | None]]) -> None:
        for client in list(self.clients):
            for item in items:
                try:
                    client.queue.put_nowait(item)
                except asyncio.QueueFull:
                    self._drop(client)
                    break

    def _drop(self, client: Client) -> None:
        if client.dropped:
            return
        client.dropped = True
        self.dropped_clients += 1
        self.clients.discard(client)
        self._leave(client)
        self.logger.warning("WebSocket client fell %d messages behind; closing it", QUEUE_LIMIT)
        task = asyncio.ensure_future(_close(client.websocket, 1013, "too slow: fell behind"))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # ---- one connection --------------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        client = Client(websocket)
        client.queue.put_nowait((_encode("snapshot", self.snapshot()), None))
        self.clients.add(client)
        self._join(client, client.subscription)
        sender = asyncio.create_task(self._sender(client))
        try:
            await self._receiver(client)
        finally:
            self.clients.discard(client)
            self._leave(client)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def _receiver(self, client: Client) -> None:
        while True:
            try:
                message = await client.websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", "replace")
            try:
                obj = parse_client_message(text)
                if obj["type"] == "ping":
                    client.queue.put_nowait(('{"type":"pong"}', None))
                else:
                    self._join(client, parse_subscription(obj, client.subscription))
                    sub = client.subscription
                    reply = {"cars": list(sub.cars), "rate_hz": sub.rate_hz, "map": sub.map}
                    client.queue.put_nowait((_encode("subscribed", reply), None))
            except SubscriptionError as error:
                client.queue.put_nowait((_encode_error(str(error)), None))
            except asyncio.QueueFull:
                self._drop(client)
                return

    async def _sender(self, client: Client) -> None:
        try:
            while True:
                text, pulled = await client.queue.get()
                await client.websocket.send_text(text)
                self.sent += 1
                if pulled is not None:
                    self.send_delays.append(time.perf_counter() - pulled)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the receiver sees the disconnect and ends the connection

    # ---- telemetry ---------------------------------------------------------------------------

    def _join(self, client: Client, subscription: Subscription) -> None:
        """Clients are grouped by rate: one timer per rate serves them all."""
        self._leave(client)
        client.subscription = subscription
        client.last_seq = -1  # a new subscription gets the current frame at the next tick
        if client.dropped or (not subscription.cars and not subscription.map):
            return
        rate = subscription.rate_hz
        self._groups.setdefault(rate, set()).add(client)
        if rate not in self._tickers:
            self._tickers[rate] = asyncio.create_task(self._ticker(rate))

    def _leave(self, client: Client) -> None:
        group = self._groups.get(client.subscription.rate_hz)
        if group is not None:
            group.discard(client)  # an empty group's ticker ends at its next tick

    async def _ticker(self, rate: float) -> None:
        loop = asyncio.get_running_loop()
        group = self._groups[rate]
        next_at = loop.time()
        try:
            while group:
                next_at = max(next_at + 1.0 / rate, loop.time())
                await asyncio.sleep(next_at - loop.time())
                frame = self.frame()
                if frame is not None:
                    for client in list(group):
                        self._offer(client, frame)
        finally:
            self._groups.pop(rate, None)
            self._tickers.pop(rate, None)

    def _offer(self, client: Client, frame: TelemetryFrame) -> None:
        if frame.seq == client.last_seq or client.queue.qsize() >= TELEMETRY_BACKLOG:
            return
        client.last_seq = frame.seq
        try:
            client.queue.put_nowait((self._telemetry_text(frame, client.subscription), None))
        except asyncio.QueueFull:
            self._drop(client)

    def _telemetry_text(self, frame: TelemetryFrame, sub: Subscription) -> str:
        if frame is not self._texts_of:
            self._texts_of, self._texts = frame, {}
        key = (sub.cars, sub.map)
        text = self._texts.get(key)
        if text is None:
            text = self._texts[key] = frame.message(sub.cars, sub.map)
        return text

    async def probe_lag(self) -> None:
        """Runs in the loop for its lifetime: how late a timer fires is how long it was busy."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(LAG_PROBE_S)
            self.lags.append(max(0.0, loop.time() - start - LAG_PROBE_S))

    def status(self) -> dict[str, Any]:
        return {
            "clients": len(self.clients),
            "messages_sent": self.sent,
            "clients_dropped": self.dropped_clients,
            "loop_lag_ms": _percentiles_ms(self.lags),
            "pull_to_send_ms": _percentiles_ms(self.send_delays),
        }


def _dumps(obj: Any) -> str:
    """A message's text: orjson (an engineer picture, ~30 kB at 20 Hz, took json.dumps ~40 times
    as long), json for what orjson refuses (integers beyond 64 bits). The state sends no NaN
    (unknown is None); a stray one would be null here, which a browser parses, not NaN."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError included
        return json.dumps(obj, separators=(",", ":"))


def _encode(kind: str, data: Any) -> str:
    return _dumps({"type": kind, "data": data})


def _encode_error(error: str) -> str:
    return json.dumps({"type": "error", "error": error})


def _percentiles_ms(values: deque[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    at = lambda q: round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 2)  # noqa: E731
    return {"n": len(ordered), "p50": at(0.5), "p99": at(0.99), "max": at(1.0)}


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # already closed from the other side: nothing to do
        await websocket.close(code, reason)

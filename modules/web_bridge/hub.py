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
for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from .state import CARS, Message

DEFAULT_RATE_HZ = 20.0
MAX_RATE_HZ = 60.0
MIN_RATE_HZ = 0.2
QUEUE_LIMIT = 2000  # messages a client may fall behind before it is dropped
TELEMETRY_BACKLOG = 8  # skip telemetry frames while this many messages wait to be sent
MAX_CLIENT_MESSAGE = 4096


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
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    subscription: Subscription = field(default_factory=Subscription)
    dropped: bool = False


TelemetrySource = Callable[[list[int]], tuple[int, float | None, dict[str, Any]]]


class Hub:
    def __init__(
        self,
        snapshot: Callable[[], dict[str, Any]],
        telemetry: TelemetrySource,
        positions: Callable[[], list[dict[str, Any]]],
        logger: logging.Logger,
    ) -> None:
        self.snapshot = snapshot
        self.telemetry = telemetry
        self.positions = positions
        self.logger = logger
        self.clients: set[Client] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0
        self.dropped_clients = 0
        self._closing: set[asyncio.Task] = set()  # held so the loop does not lose them

    # ---- from other threads ----------------------------------------------------------------

    def publish(self, messages: list[Message]) -> None:
        """Broadcast (any thread): encoded here, queued in the event loop."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        texts = [json.dumps(m.as_json(), separators=(",", ":")) for m in messages]
        with contextlib.suppress(RuntimeError):  # the loop closed between check and call
            loop.call_soon_threadsafe(self._fanout, texts)

    def _fanout(self, texts: list[str]) -> None:
        for client in list(self.clients):
            for text in texts:
                try:
                    client.queue.put_nowait(text)
                except asyncio.QueueFull:
                    self._drop(client)
                    break

    def _drop(self, client: Client) -> None:
        if client.dropped:
            return
        client.dropped = True
        self.dropped_clients += 1
        self.clients.discard(client)
        self.logger.warning("WebSocket client fell %d messages behind; closing it", QUEUE_LIMIT)
        task = asyncio.ensure_future(_close(client.websocket, 1013, "too slow: fell behind"))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # ---- one connection --------------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        client = Client(websocket)
        client.queue.put_nowait(_encode("snapshot", self.snapshot()))
        self.clients.add(client)
        tasks = [
            asyncio.create_task(self._sender(client)),
            asyncio.create_task(self._ticker(client)),
        ]
        try:
            await self._receiver(client)
        finally:
            self.clients.discard(client)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

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
                    client.queue.put_nowait('{"type":"pong"}')
                else:
                    client.subscription = parse_subscription(obj, client.subscription)
                    sub = client.subscription
                    reply = {"cars": list(sub.cars), "rate_hz": sub.rate_hz, "map": sub.map}
                    client.queue.put_nowait(_encode("subscribed", reply))
            except SubscriptionError as error:
                client.queue.put_nowait(json.dumps({"type": "error", "error": str(error)}))
            except asyncio.QueueFull:
                self._drop(client)
                return

    async def _sender(self, client: Client) -> None:
        try:
            while True:
                text = await client.queue.get()
                await client.websocket.send_text(text)
                self.sent += 1
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the receiver sees the disconnect and ends the connection

    async def _ticker(self, client: Client) -> None:
        last_seq, last_sub = -1, client.subscription
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at = max(next_at + 1.0 / client.subscription.rate_hz, loop.time())
            await asyncio.sleep(next_at - loop.time())
            sub = client.subscription  # read after the sleep: it may have changed meanwhile
            if sub is not last_sub:
                last_seq, last_sub = -1, sub  # a new subscription gets the current frame at once
            if not sub.cars and not sub.map:
                continue
            seq, t, cars = self.telemetry(list(sub.cars))
            if seq == last_seq or client.queue.qsize() >= TELEMETRY_BACKLOG:
                continue
            last_seq = seq
            data: dict[str, Any] = {"cars": cars}
            if sub.map:
                data["positions"] = self.positions()
            text = json.dumps({"type": "telemetry", "t": t, "data": data}, separators=(",", ":"))
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                self._drop(client)
                return

    def status(self) -> dict[str, Any]:
        return {
            "clients": len(self.clients),
            "messages_sent": self.sent,
            "clients_dropped": self.dropped_clients,
        }


def _encode(kind: str, data: Any) -> str:
    return json.dumps({"type": kind, "data": data}, separators=(",", ":"))


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # already closed from the other side: nothing to do
        await websocket.close(code, reason)

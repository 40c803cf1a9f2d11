"""The web bridge reads every sample exactly once and shows the producer's JSON streams in the
producer's order, whatever the schedule: real processes (a feeder publishing on real LSL, the
bridge), the bridge paused with SIGSTOP while a burst larger than its rings is pushed, the
producer's samples of one step pushed in the wrong order."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import wait_until
from modules.web_bridge.devstack import DevStack
from modules.web_bridge.feeds import RING_SAMPLES

FED = ("raceplane.session", "raceplane.participants", "raceplane.events")
UID = "987654321"
BURST = 3 * RING_SAMPLES  # events pushed while the bridge is stopped: three rings' worth


def header(frame: int) -> dict[str, Any]:
    return {"session_uid": UID, "overall_frame_identifier": frame, "session_time_s": float(frame)}


def push(feeder, orders: list[dict[str, Any]]) -> None:
    assert feeder.stdin is not None and feeder.stdout is not None
    feeder.stdin.write("".join(json.dumps(order) + "\n" for order in orders))
    feeder.stdin.flush()
    for _ in orders:
        assert feeder.stdout.readline().startswith("pushed")


class Events:
    """A WebSocket client of the bridge collecting every `event` message, from a thread."""

    def __init__(self, url: str) -> None:
        self.ws = connect(url, open_timeout=10)
        self.events: list[dict[str, Any]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for text in self.ws:
                message = json.loads(text)
                if message["type"] == "event":
                    self.events.append(message["data"])
        except Exception:  # closed at the end of the test
            return

    def close(self) -> None:
        self.ws.close()
        self.thread.join(timeout=5)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[DevStack, Any, httpx.Client, str]]:
    with DevStack(tmp_path) as dev:
        feeder = dev.feeder(*FED)
        bridge = dev.bridge()
        http = httpx.Client(base_url=bridge.url, timeout=10)
        wait_until(
            lambda: set(FED) <= {s["name"] for s in http.get("/api/streams").json()},
            timeout=30,
            message="the bridge watching the feeder's streams",
        )
        yield dev, feeder, http, bridge
        http.close()


def test_a_paused_bridge_shows_every_event_of_a_burst_in_the_producers_order(stack) -> None:
    dev, feeder, _http, endpoint = stack
    client = Events(f"ws://127.0.0.1:{endpoint.http_port}/ws")
    bridge = dev.processes["web_bridge"]
    drivers = [{"name": f"Driver {i}", "team_name": "T", "race_number": i} for i in range(3)]
    orders = [
        # Stream B's sample of a step before stream A's: the event of frame 11 names car 2,
        # whom only the participants sample of frame 10, pushed after it, introduces.
        {
            "stream": "raceplane.events",
            "json": {"header": header(11), "code": "RTMT", "vehicle_idx": 2},
        },
        {
            "stream": "raceplane.participants",
            "json": {"header": header(10), "num_active_cars": 3, "participants": drivers},
        },
        *(
            {
                "stream": "raceplane.events",
                "json": {"header": header(frame), "code": "PENA", "vehicle_idx": 1},
            }
            for frame in range(12, 12 + BURST)
        ),
    ]
    os.kill(bridge.pid, signal.SIGSTOP)
    try:
        push(feeder, orders)
    finally:
        os.kill(bridge.pid, signal.SIGCONT)
    try:
        wait_until(
            lambda: len(client.events) >= BURST + 1,
            timeout=60,
            interval=0.1,
            message=f"{BURST + 1} events on the WebSocket",
        )
    finally:
        client.close()
    events = client.events
    assert events[0]["text"] == "Retired: Driver 2"
    assert [event["t"] for event in events] == [float(f) for f in range(11, 12 + BURST)]
    with ModuleClient("127.0.0.1", endpoint.port, timeout=10).connect() as command:
        status = command.request("STATUS")
    by_name = {s["name"]: s for s in status["streams"]}
    assert by_name["raceplane.events"]["samples"] == BURST + 1
    assert all(s["overrun"] == 0 for s in status["streams"])
    merge = status["merge"]
    assert merge["released"] == BURST + 2 and merge["held"] == 0
    assert merge["late"] == 0, merge["late_by_stream"]

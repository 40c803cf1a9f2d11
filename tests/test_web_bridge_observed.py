"""A stream only the observer endpoints read (issue 18, footprint): the bridge leaves it closed
until a request names it, serves it then, and closes it again once no request has named it for
--observe-keep-s. Real processes: the feeder's outlets, the bridge, LSL."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import wait_until
from modules.web_bridge.devstack import DevStack, Endpoint

DASHBOARD = "raceplane.car_telemetry"
OBSERVED = "raceplane.car_damage"  # no part of the dashboard reads it
KEEP_S = 3.0


class Stack:
    def __init__(self, bridge: Endpoint, feeder: subprocess.Popen) -> None:
        self.bridge = bridge
        self.feeder = feeder
        self.http = httpx.Client(base_url=bridge.url, timeout=15)

    def push(self, order: dict[str, Any]) -> float:
        self.feeder.stdin.write(json.dumps(order) + "\n")
        self.feeder.stdin.flush()
        return float(self.feeder.stdout.readline().split()[1])

    def watched(self) -> set[str]:
        return {s["name"] for s in self.http.get("/api/streams").json()}

    def status(self) -> dict[str, Any]:
        with ModuleClient("127.0.0.1", self.bridge.port).connect() as client:
            return client.request("STATUS")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with DevStack(tmp_path_factory.mktemp("observed")) as dev:
        dev.log_server()
        feeder = dev.feeder(DASHBOARD, OBSERVED)
        bridge = dev.bridge(None, None, "--observe-keep-s", str(KEEP_S))
        result = Stack(bridge, feeder)
        yield result
        result.http.close()


def test_an_observer_only_stream_opens_on_request_and_closes_when_unasked(stack: Stack) -> None:
    # Discovery has seen both; it watches the dashboard's and leaves the other closed.
    wait_until(
        lambda: DASHBOARD in stack.watched() and OBSERVED in stack.status()["observable"],
        timeout=30,
        message="the bridge sees both streams",
    )
    assert OBSERVED not in stack.watched()

    # A request names it: opened (no sample yet: the request answers with none)...
    first = stack.http.get("/api/channels", params={"stream": OBSERVED})
    assert first.status_code == 200, first.text
    assert OBSERVED in stack.watched()
    # ...and served as any watched stream from then on.
    pushed = stack.push({"stream": OBSERVED, "cars": {"4": {"front_left_wing_damage": 37}}})

    def damage() -> float | None:
        answer = stack.http.get("/api/channels", params={"stream": OBSERVED}).json()[OBSERVED]
        return answer["values"].get("car04.front_left_wing_damage")

    assert wait_until(lambda: damage() == 37, timeout=15, message="the damage row served")
    since = stack.http.get(
        f"/api/channels/{OBSERVED}/car04.front_left_wing_damage", params={"since": pushed - 1e-6}
    ).json()
    assert since["values"] == [37]

    # No request for KEEP_S: closed again (/api/streams does not count as one).
    wait_until(lambda: OBSERVED not in stack.watched(), timeout=KEEP_S + 30, message="closed again")
    assert DASHBOARD in stack.watched()
    assert OBSERVED in stack.status()["observable"]
    # An unknown stream is still unknown.
    assert stack.http.get("/api/channels", params={"stream": "raceplane.nope"}).status_code == 404

"""The pit-rejoin prediction through the real stack: the game simulator (a process) sends UDP
to the telemetry decoder (a process), whose LSL streams the engineer (a process) reads; this
test reads `raceplane.pit_rejoin` from LSL. Twenty stops, one per car, spread over the race;
for each, the prediction the engineer published as the car began its in-lap against where
the simulator's TRUTH says it rejoined (`rejoin_support`): at least 9 in 10 right, as the
issue asks (position within one and the gap within 1 s)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pylsl
import pytest

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until
from modules.web_bridge.devstack import DevStack, Endpoint
from tests.rejoin_support import judge, stops_of

RACE = {
    "track": "spielberg",
    "laps": 10,
    "cars": 20,
    "speed": 6,
    "rate": 10,
    "seed": 3,
    "pit_spread": True,  # every car stops once, neighbours on the grid laps apart
}

pytestmark = pytest.mark.timeout(400)  # a 10-lap race at 6x


class RejoinInlet:
    """Every `raceplane.pit_rejoin` sample, read here in a thread."""

    def __init__(self) -> None:
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        found = []
        while not found and not self._stop.is_set():
            found = pylsl.resolve_byprop("name", "raceplane.pit_rejoin", timeout=0.5)
        if not found:
            return
        inlet = pylsl.StreamInlet(found[0], max_buflen=120)
        while not self._stop.is_set():
            sample, _ = inlet.pull_sample(timeout=0.2)
            if sample is not None:
                self.samples.append(json.loads(sample[0]))

    def first(self, uid: str, car: int, lap: int) -> dict[str, Any] | None:
        """The prediction for `car` published first while it was on `lap`, with its time."""
        for sample in list(self.samples):
            mine = sample["cars"].get(str(car)) if sample["session_uid"] == uid else None
            if mine is not None and mine["lap"] == lap:
                return {**mine, "t": sample["session_time_s"]}
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture()
def stack(tmp_path: Any) -> Iterator[tuple[Endpoint, Endpoint]]:
    udp = free_port()
    with DevStack(tmp_path) as dev:
        dev.module("telemetry_decoder", "--udp-port", str(udp))
        engineer = dev.module("engineer")
        sim = dev.module("game_sim", "--target-port", str(udp))
        yield sim, engineer


def ask(endpoint: Endpoint, cmd: str, payload: dict | None = None) -> Any:
    with ModuleClient("127.0.0.1", endpoint.port).connect() as client:
        return client.request(cmd, payload)


def test_rejoin_predicted_a_lap_before_each_stop_matches_where_the_car_rejoined(
    stack: tuple[Endpoint, Endpoint],
) -> None:
    sim, engineer = stack
    inlet = RejoinInlet()
    try:
        wait_until(
            lambda: not ask(engineer, "STATUS")["missing"], timeout=60, message="engineer inputs"
        )
        ask(sim, "START", RACE)
        truth = wait_until(
            lambda: (t := ask(sim, "TRUTH"))["finished"] and t,
            timeout=300,
            interval=0.5,
            message="the race to finish",
        )
        uid = truth["session_uid"]
        stops = stops_of(truth)
        assert len(stops) == 20
        # The last stop's rejoin has been published once the engineer saw the race end.
        last_lap = max(r["in_lap"] for _, r in stops)
        wait_until(
            lambda: any(
                s["session_uid"] == uid and any(c["lap"] > last_lap for c in s["cars"].values())
                for s in list(inlet.samples)
            ),
            timeout=30,
            message="predictions up to the last stop",
        )
        judged = judge(truth, lambda car, lap: inlet.first(uid, car, lap))
        right = [j for j in judged if j.right]
        assert len(right) >= 0.9 * len(judged), judged
        # The loss was measured from this race's own stops, not left at the track default.
        status = ask(engineer, "STATUS")
        assert status["stops_measured"] >= 15, status
        picture = ask(engineer, "PICTURE")
        assert picture["pit_loss"]["source"] == "measured"
        print(f"\nrejoin predictions right: {len(right)} of {len(judged)}")
    finally:
        inlet.close()
